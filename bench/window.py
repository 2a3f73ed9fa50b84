"""Window responsiveness: start-up to a usable window, and the longest
event-loop stall while ingesting and while an answer is generated.

Writes bench/window.json. Figures, not assertions: this machine is shared.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.config import enforce_offline  # noqa: E402

enforce_offline()

from tools.stall import StallMeter  # noqa: E402
from tests import corpus  # noqa: E402


def wait_for(condition, timeout_s: float = 600) -> None:  # noqa: ANN001
    loop = QEventLoop()
    timer = QTimer(interval=20)
    timer.timeout.connect(lambda: condition() and loop.quit())
    timer.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    timer.stop()


def make_corpus(folder: Path, n_notes: int = 60) -> None:
    corpus.make_library(folder)
    long_pages = [f"Section {i}. " + " ".join(f"Clause {i}.{j} sets out obligation {j} of the tenant." for j in range(40))
                  for i in range(60)]
    corpus.make_pdf(folder / "lease.pdf", long_pages)
    for i in range(n_notes):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Meeting {i}\n\n" + " ".join(f"Item {i}.{j}: budget line {j} was approved." for j in range(60)),
            encoding="utf-8")


def main() -> dict:
    t0 = time.perf_counter()
    app = QApplication(sys.argv)
    from app.core.library import Library
    from app.ui.main_window import MainWindow

    work = Path(tempfile.mkdtemp(prefix="docent-bench-"))
    window = MainWindow(Library(work / "data", purpose="the Docent window"))
    window.show()
    app.processEvents()
    visible_s = time.perf_counter() - t0
    wait_for(lambda: window.model_state in ("ready", "error"))
    models_s = time.perf_counter() - t0

    folder = work / "docs"
    make_corpus(folder)
    meter = StallMeter()
    meter.start()
    started = time.perf_counter()
    window._start_ingest([str(folder)])
    wait_for(lambda: not window.ingesting)
    ingest_s = time.perf_counter() - started
    ingest_stall = meter.stop()

    meter.start()
    started = time.perf_counter()
    window.ask("Summarise the tenant's obligations in the lease.", None)
    wait_for(lambda: window._pending is None)
    answer_s = time.perf_counter() - started
    answer_stall = meter.stop()
    tokens = len(window.chat.turns[-1].answer.split())
    window.close()
    return {
        "window_visible_s": round(visible_s, 3),
        "models_ready_s": round(models_s, 3),
        "ingest_s": round(ingest_s, 2),
        "ingest_files": window.last_report["indexed"] if window.last_report else None,
        "longest_stall_ingest_ms": round(ingest_stall, 1),
        "answer_s": round(answer_s, 2),
        "answer_words": tokens,
        "longest_stall_answer_ms": round(answer_stall, 1),
    }


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="(the same run; it is short)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "window.json")
    out = ap.parse_args().out
    result = main()
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for key, value in result.items():
        print(f"{key:28} {value}")
