"""The live-sync trial of issue 4, as a new user would run it.

``docent watch`` runs on a folder while this script makes 200 file creations,
50 edits (some as editors' atomic saves), 20 renames (files and a folder)
and 30 deletions. Then it measures how long after the last change
``docent status --files --json`` and ``docent search --mode keyword`` (run
alongside the watcher) reflect exactly the files on disk: nothing missing,
nothing stale, no duplicate chunks.

Used by tests/test_sync_stress.py (which asserts the outcome, never the time)
and by ``make bench`` (which reports the time).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

WORDS = ("harbour ledger timber salt ferry lamp keeper storm cargo tide beacon anchor rope "
         "gull pier mast hull sail chart compass").split()


def docent(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "docent"
    return subprocess.run([str(exe), "--data-dir", str(data), *args], capture_output=True, text=True, timeout=120)


def body(tag: str, rng: random.Random) -> str:
    """A small note whose unique tag word makes it findable by keyword."""
    words = " ".join(rng.choice(WORDS) for _ in range(40))
    return f"# Note {tag}\n\nToken {tag}. {words}.\n"


def expected_state(folder: Path) -> dict[str, str]:
    """Path → unique tag of every note on disk now."""
    out = {}
    for path in folder.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        out[str(path)] = text.split("Token ", 1)[1].split(".", 1)[0]
    return out


def in_line(data: Path, folder: Path) -> tuple[bool, str]:
    """Whether the catalog, seen by read-only commands, equals the disk."""
    want = expected_state(folder)
    status = docent(data, "status", "--files", "--json")
    if status.returncode != 0:
        return False, status.stderr
    docs = json.loads(status.stdout)["documents"]
    indexed = {d["path"] for d in docs if d["status"] == "indexed"}
    if indexed != set(want):
        return False, f"missing {len(set(want) - indexed)}, stale {len(indexed - set(want))}"
    if any(d["status"] in ("pending", "indexing", "failed") for d in docs):
        return False, "work still pending"
    # Every tag is found once, in its own file (no stale text, no duplicates).
    queries = "\n".join(want.values()) + "\n"
    search = subprocess.run(
        [str(Path(sys.executable).parent / "docent"), "--data-dir", str(data), "search", "-",
         "--mode", "keyword", "-k", "3"], input=queries, capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in search.stdout.splitlines()]
    by_tag = {path_tag: path for path, path_tag in want.items()}
    for row in rows:
        hits = [h for h in row["hits"] if f"Token {row['query']}." in h["text"]]
        if len(hits) != 1 or hits[0]["path"] != by_tag[row["query"]]:
            return False, f"search for {row['query']} found {[h['path'] for h in hits]}"
    return True, "in line"


def run(work: Path, *, seed: int = 7, deadline_s: float = 300) -> dict[str, object]:
    """Run the trial in ``work``; returns the figures (and whether it converged)."""
    rng = random.Random(seed)
    folder, data = work / "library", work / "data"
    folder.mkdir(parents=True)
    (folder / "seed.md").write_text(body("seed0", rng), encoding="utf-8")
    exe = Path(sys.executable).parent / "docent"
    watcher = subprocess.Popen([str(exe), "--data-dir", str(data), "watch", str(folder)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until the watcher has reconciled and is watching.
        start = time.monotonic()
        while "Watching" not in (line := watcher.stderr.readline()):
            if watcher.poll() is not None or time.monotonic() - start > 120:
                raise RuntimeError(f"docent watch did not start: {line}")
        while not in_line(data, folder)[0]:
            time.sleep(0.2)

        counter = iter(range(10_000))
        tag = lambda: f"t{next(counter):05d}x"  # noqa: E731
        (folder / "projects").mkdir()
        files: list[Path] = []
        for i in range(200):  # creations
            sub = folder / "projects" if i % 4 == 0 else folder
            path = sub / f"note-{i:03d}.md"
            path.write_text(body(tag(), rng), encoding="utf-8")
            files.append(path)
        for i, path in enumerate(rng.sample(files, 50)):  # edits, every other one an atomic save
            text = body(tag(), rng)
            if i % 2:
                temp = path.parent / f".goutputstream-{i:04d}"
                temp.write_text(text, encoding="utf-8")
                os.replace(temp, path)
            else:
                path.write_text(text, encoding="utf-8")
        top = [p for p in files if p.parent == folder]
        for i, path in enumerate(rng.sample(top, 19)):  # file renames
            path.rename(path.with_name(f"renamed-{i:02d}.md"))
        shutil.move(str(folder / "projects"), str(folder / "archive"))  # a folder rename
        remaining = sorted(folder.rglob("*.md"))
        for path in rng.sample(remaining, 30):  # deletions
            path.unlink()
        last_change = time.monotonic()

        state = "never checked"
        while time.monotonic() - last_change < deadline_s:
            ok, state = in_line(data, folder)
            if ok:
                break
            time.sleep(0.25)
        converged_s = time.monotonic() - last_change
        ok, state = in_line(data, folder)
    finally:
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
    return {
        "files_on_disk": len(expected_state(folder)),
        "in_line": ok,
        "state": state,
        "seconds_after_last_change": round(converged_s, 2),
        "watch_exit_code": watcher.returncode,
    }


if __name__ == "__main__":
    import tempfile

    result = run(Path(tempfile.mkdtemp(prefix="docent-sync-")))
    print(json.dumps(result, indent=2))
