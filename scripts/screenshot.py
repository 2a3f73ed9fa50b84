"""Render Docent's window with a small sample library and an answered question.

Run under Xvfb (``make screenshot``); writes docs/screenshot.png.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

from app.core.library import Library  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.theme import apply_system_theme  # noqa: E402
from tests import corpus  # noqa: E402

QUESTION = "How many storm warnings did the lighthouse keepers record?"


def wait_for(app: QApplication, condition, timeout_s: float = 120) -> None:  # noqa: ANN001
    """Run the event loop until ``condition()`` holds."""
    loop = QEventLoop()
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: condition() and loop.quit())
    timer.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    timer.stop()
    if not condition():
        raise SystemExit("screenshot: timed out waiting for the window")


def settle(app: QApplication, seconds: float) -> None:
    """Let background rendering finish (a screenshot, not a test)."""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def main(out: Path) -> None:
    app = QApplication(sys.argv)
    apply_system_theme(app)
    work = Path(tempfile.mkdtemp(prefix="docent-shot-"))
    folder = work / "Cooperative documents"
    corpus.make_library(folder)
    # One of each other kind Docent reads (slides, a workbook, mail, an
    # e-book, a scan read by OCR), as the sample library ships them.
    for name in ("harbour-board.pptx", "harbour-dues.xlsx", "slipway-closed.eml",
                 "lighthouse-keepers.epub", "notice-to-mariners-scan.pdf"):
        shutil.copy(ROOT / "resources" / "samples" / name, folder / name)
    window = MainWindow(Library(work / "data", purpose="the Docent window"))
    window.resize(1500, 900)
    window.show()
    wait_for(app, lambda: window.model_state == "ready")
    window._start_ingest([str(folder)])
    wait_for(app, lambda: not window.ingesting)
    window.chats.rename(window.conversation_id, "Lighthouse report")
    window.chat.set_title("Lighthouse report")
    window.ask(QUESTION, None)
    wait_for(app, lambda: window._pending is None)
    turn = window.chat.turns[-1]
    window.show_sources(turn.turn_id)
    window.library_pane.select_path(str(folder / "lighthouse-report.pdf"))
    settle(app, 0.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    cite = next((c for c in turn.record.get("citations", []) if c.get("page")), None)
    if cite is not None:
        window.open_passage(cite)
        wait_for(app, lambda: window.viewer.viewer.current_page() == cite["page"])
        settle(app, 2.0)  # QtPdf renders pages on a background thread
        window.viewer.grab().save(str(out.with_name("viewer.png")))
    window.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
