"""Sync figures: reopening an unchanged library vs its full ingest, and the
live-sync trial (time until the library equals the disk after hundreds of
changes). Writes bench/sync.json.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

from app.core.library import Library  # noqa: E402
from app.core.ingest.sync import FolderSync  # noqa: E402
from bench import sync_stress  # noqa: E402


def make_files(folder: Path, n: int) -> None:
    rng = random.Random(1)
    words = sync_stress.WORDS
    for i in range(n):
        sub = folder / f"group-{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        text = " ".join(rng.choice(words) for _ in range(120))
        (sub / f"doc-{i:04d}.md").write_text(f"# Document {i}\n\n{text}\n", encoding="utf-8")


def resync(n_files: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="docent-resync-"))
    folder = work / "library"
    make_files(folder, n_files)
    with Library(work / "data", purpose="bench") as lib:
        lib.embedder  # noqa: B018 - load the model outside the timing
        lib.vectors  # noqa: B018
        t = time.perf_counter()
        lib.indexer.ingest([folder])
        full_s = time.perf_counter() - t
    # "Reopen": a new process-like open of the same data folder, then the
    # start-up reconciliation the window and `watch` run.
    with Library(work / "data", purpose="bench") as lib:
        lib.embedder  # noqa: B018
        lib.vectors  # noqa: B018
        reads: list[Path] = []
        parser = lib.indexer.parser
        original = parser.load
        parser.load = lambda path, **kw: reads.append(path) or original(path, **kw)  # type: ignore[method-assign]
        t = time.perf_counter()
        report = FolderSync(lib.indexer).reconcile()
        again_s = time.perf_counter() - t
    return {
        "files": n_files,
        "full_ingest_s": round(full_s, 2),
        "reopen_unchanged_s": round(again_s, 3),
        "ratio": round(again_s / full_s, 4),
        "files_read_on_reopen": len(reads),
        "unchanged": report.unchanged,
    }


def main(quick: bool = False) -> dict[str, object]:
    result = {"resync": resync(200 if quick else 1000)}
    if not quick:
        result["live_trial"] = sync_stress.run(Path(tempfile.mkdtemp(prefix="docent-sync-")))
    return result


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 files, no live trial")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "sync.json")
    args = ap.parse_args()
    out = main(args.quick)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
