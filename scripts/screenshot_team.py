"""Render a desktop connected to a team library: docs/team-library.png.

Starts a real server on this machine's loopback address over the sample
library (an admin, and a reader who may read one folder), connects to it as
the reader the way File → Connect to team library… does, asks a question,
opens the first source's page, and grabs the window. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1800x1000x24" .venv/bin/python scripts/screenshot_team.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import enforce_offline  # noqa: E402

enforce_offline()

from app.core.library import Library  # noqa: E402
from app.core.team_client import TeamClient  # noqa: E402
from app.service.engine import Service  # noqa: E402
from app.service.keeper import LibraryKeeper  # noqa: E402
from app.service.runner import ServerThread  # noqa: E402
from app.ui.team_window import CONNECTED, TeamWindow  # noqa: E402
from app.ui.theme import apply_system_theme  # noqa: E402
from scripts.screenshot import settle, wait_for  # noqa: E402
from tests import corpus  # noqa: E402


def main(out: Path) -> None:
    app = QApplication(sys.argv)
    apply_system_theme(app)
    work = Path(tempfile.mkdtemp(prefix="docent-team-"))
    corpus.make_library(work / "Shared" / "Reports")
    notes = work / "Shared" / "Garden"
    notes.mkdir(parents=True)
    (notes / "garden.md").write_text(
        "# Garden notes\n\nThe tomatoes in the greenhouse ripened in late July. "
        "We planted twelve apple trees along the southern wall.\n", encoding="utf-8")
    lib = Library(work / "data", purpose="docent serve")
    lib.indexer.ingest([work / "Shared" / "Reports", notes])
    service = Service(lib)
    service.keys.create("ada", role="admin")
    _, secret = service.keys.create("rita", role="reader", scopes=(str(notes),))
    service.load()
    keeper = service.keeper = LibraryKeeper(lib)
    keeper.start()
    server = ServerThread(service).start()
    client = TeamClient(server.url, secret)
    window = TeamWindow(client, client.whoami(), poll_ms=500)
    window.show()
    wait_for(app, lambda: window.state == CONNECTED and bool(window.folder_paths()))
    window.library_tree.expandAll()
    window.question_edit.setPlainText("When did the tomatoes in the greenhouse ripen?")
    window.ask()
    wait_for(app, lambda: window._asking is None)
    window.sources_list.setCurrentRow(0)
    window.sources_list.itemClicked.emit(window.sources_list.item(0))
    wait_for(app, lambda: "twelve apple trees" in window.viewer.toPlainText())
    settle(app, 1.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    window.close()
    settle(app, 1.5)  # the window's worker threads end on their own event loops
    server.stop()
    keeper.stop()
    service.close()
    lib.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(ROOT / "docs" / "team-library.png")
