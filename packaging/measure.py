"""Measure the built app: size, oldest glibc it needs, start-up time, self-test.

    .venv/bin/python packaging/measure.py [dist/Docent] [--out packaging/bundle.json] [--readme README.md]

Run after ``make package``, on a machine with Xvfb (``make package`` sets it
up). Start-up is timed from launch to the window on screen (polled with
xwininfo) and to the model being ready (the log line the window writes);
both under Xvfb with networking off when ``unshare -n`` is available. The
glibc floor is the newest ``GLIBC_x.y`` symbol version any ELF file in the
bundle asks for: the oldest Linux the bundle can start on. The results go
to ``--out`` and, with ``--readme``, to the README's bundle table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.readme import replace_section  # noqa: E402

_GLIBC = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?")


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def glibc_floor(folder: Path) -> tuple[str, str]:
    """The newest GLIBC symbol version the bundle needs, and the file that needs it."""
    best: tuple[int, ...] = (0,)
    who = ""
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        out = subprocess.run(["objdump", "-T", str(path)], capture_output=True).stdout
        for m in _GLIBC.finditer(out):
            version = tuple(int(x) for x in m.groups() if x is not None)
            if version > best:
                best, who = version, str(path.relative_to(folder))
    return ".".join(map(str, best)), who


def _net_off() -> list[str]:
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def selftest(exe: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        proc = subprocess.run([*_net_off(), str(exe), "--selftest"], capture_output=True, text=True,
                              env={"HOME": home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout=600)
    return {"exit": proc.returncode, "seconds": round(time.perf_counter() - started, 1),
            "report": proc.stdout.strip().splitlines()}


_WINDOW_SCRIPT = r"""
data="$1"; exe="$2"
"$exe" --data-dir "$data" >/dev/null 2>&1 &
pid=$!
start=$(date +%s.%N)
shown=""
for i in $(seq 1 600); do
  if xwininfo -root -tree 2>/dev/null | grep -q '"Docent": ("docent"'; then shown=$(date +%s.%N); break; fi
  sleep 0.05
done
for i in $(seq 1 600); do
  grep -q "Model ready" "$data/docent.log" 2>/dev/null && break
  sleep 0.1
done
echo "start $start"
echo "shown ${shown:-none}"
kill $pid; wait $pid 2>/dev/null
"""


def startup(exe: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        script = Path(tmp) / "window.sh"
        script.write_text(_WINDOW_SCRIPT, encoding="utf-8")
        env = {"HOME": tmp, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        proc = subprocess.run([*_net_off(), "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "bash", str(script),
                               str(data), str(exe)], capture_output=True, text=True, env=env, timeout=300)
        marks = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
        start = float(marks["start"])
        shown = None if marks.get("shown", "none") == "none" else round(float(marks["shown"]) - start, 2)
        ready = None
        log = data / "docent.log"
        if log.exists():
            for line in log.read_text(encoding="utf-8").splitlines():
                if "Model ready" in line:
                    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    ready = round(stamp - start, 2)
                    break
    return {"window_shown_s": shown, "model_ready_s": ready}


def table(result: dict) -> str:
    """The README's bundle table."""
    runs = result["startup_runs"]

    def series(key: str) -> str:
        values = [r[key] for r in runs if r[key] is not None]
        if not values:
            return "did not happen"
        return f"{sorted(values)[len(values) // 2]:.1f} s ({len(runs)} runs: {', '.join(f'{v:.2f}' for v in values)})"

    test = result["selftest"]
    return "\n".join([
        "| Bundle (`packaging/measure.py`, this machine) | |",
        "|---|---|",
        f"| Size of `dist/Docent/` | {result['size_mb']} MB, {result['files']} files |",
        f"| Oldest glibc | {result['glibc_floor']} (built on {result['built_on']}) |",
        f"| Window on screen after launch | {series('window_shown_s')} |",
        f"| Model ready (window usable for questions) | {series('model_ready_s')} |",
        f"| `docent --selftest`, no network | {'passed' if test['exit'] == 0 else 'FAILED'} in {test['seconds']} s |",
    ])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dist", nargs="?", type=Path, default=ROOT / "dist" / "Docent")
    parser.add_argument("--out", type=Path, default=ROOT / "packaging" / "bundle.json")
    parser.add_argument("--readme", type=Path, default=None, help="rewrite the bundle table in this README")
    args = parser.parse_args()
    exe = args.dist / "docent"
    if not exe.exists():
        print(f"No built app at {args.dist}: run `make package` first.", file=sys.stderr)
        return 2
    floor, who = glibc_floor(args.dist)
    with open("/etc/os-release", encoding="utf-8") as f:
        os_name = dict(line.rstrip().split("=", 1) for line in f if "=" in line).get("PRETTY_NAME", "").strip('"')
    result = {
        "size_mb": round(size_bytes(args.dist) / 1e6),
        "files": sum(1 for p in args.dist.rglob("*") if p.is_file()),
        "glibc_floor": floor,
        "glibc_floor_from": who,
        "built_on": f"{os_name}, glibc {os.confstr('CS_GNU_LIBC_VERSION').split()[-1]}",
        "selftest": selftest(exe),
        "startup_runs": [startup(exe) for _ in range(3)],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.readme:
        replace_section(args.readme, "bundle", table(result))
    print(table(result))
    return 0 if result["selftest"]["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
