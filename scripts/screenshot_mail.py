"""Render an e-mail's attachments in the library and a cited attachment in the viewer.

Indexes a message with two attached PDFs (and one attachment Docent does not
read) in a real window, asks a question whose answer is on page 2 of one of
them, opens that source, and writes docs/mail-attachment.png: the window
(library with the attachments under their message, the answer) beside the
viewer showing the attached PDF's page with the passage marked. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1800x1000x24" .venv/bin/python scripts/screenshot_mail.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

from app.core.library import Library  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.theme import apply_system_theme  # noqa: E402
from scripts.screenshot import settle, wait_for  # noqa: E402
from tests.test_mail_attachments import FEES, NOTES, message  # noqa: E402


def main(out: Path) -> None:
    app = QApplication(sys.argv)
    apply_system_theme(app)
    work = Path(tempfile.mkdtemp(prefix="docent-mail-"))
    folder = work / "Harbour mail"
    folder.mkdir()
    message(folder / "papers.eml", ("notes.pdf", NOTES), ("fees.pdf", FEES))
    window = MainWindow(Library(work / "data", purpose="the Docent window"))
    window.resize(1100, 760)
    window.show()
    wait_for(app, lambda: window.model_state == "ready")
    window._start_ingest([str(folder)])
    wait_for(app, lambda: not window.ingesting)
    window.library_pane.refresh()
    window.library_pane.tree.expandAll()
    window.ask("When do the inner harbour lock gates open?", None)
    wait_for(app, lambda: window._pending is None)
    cards = window.sources.cards()
    index = next(i for i, c in enumerate(cards) if c.get("attachment") == "notes.pdf")
    window.sources.click_card(index)
    viewer = window.viewer.viewer
    wait_for(app, lambda: viewer.current_page() == 2)
    window.viewer.resize(700, 760)
    settle(app, 1.5)

    left, right = window.grab(), window.viewer.grab()
    picture = QPixmap(left.width() + right.width() + 12, max(left.height(), right.height()))
    picture.fill(QColor("#d0d0d0"))
    painter = QPainter(picture)
    painter.drawPixmap(QPoint(0, 0), left)
    painter.drawPixmap(QPoint(left.width() + 12, 0), right)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(str(out))
    window.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(ROOT / "docs" / "mail-attachment.png")
