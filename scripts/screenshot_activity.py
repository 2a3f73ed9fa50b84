"""Render the Activity panel and a real answer's timing waterfall.

Indexes the sample library and asks a few questions in a real window (so
every figure comes from real spans), then writes docs/activity.png and
docs/waterfall.png. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_activity.py
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

from app import telemetry  # noqa: E402
from app.core.library import Library  # noqa: E402
from app.ui.activity_panel import ActivityPanel  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.theme import apply_system_theme  # noqa: E402
from scripts.screenshot import settle, wait_for  # noqa: E402
from tests import corpus  # noqa: E402

QUESTIONS = (
    "How many storm warnings did the lighthouse keepers record?",
    "What temperature should sourdough bake at?",
    "When is swarm season for bees?",
    "What did the cooperative decide about the budget?",
    "How long should the dough rest?",
)


def main(out_dir: Path) -> None:
    app = QApplication(sys.argv)
    apply_system_theme(app)
    work = Path(tempfile.mkdtemp(prefix="docent-activity-"))
    folder = work / "Cooperative documents"
    corpus.make_library(folder)
    window = MainWindow(Library(work / "data", purpose="the Docent window"))
    window.resize(1500, 900)
    window.show()
    wait_for(app, lambda: window.model_state == "ready")
    window._start_ingest([str(folder)])
    wait_for(app, lambda: not window.ingesting)
    for question in QUESTIONS:
        window.ask(question, None)
        wait_for(app, lambda: window._pending is None)
    record = window.chat.turns[0].record
    telemetry.force_flush()

    out_dir.mkdir(parents=True, exist_ok=True)
    if "--window" in sys.argv:  # a check of the tab in the window's side pane (not for the README)
        window.show_activity()
        wait_for(app, lambda: window.activity_panel.snapshot is not None)
        settle(app, 0.3)
        window.grab().save("/tmp/activity-window.png")
    # The panel on its own, at a size where the charts read well.
    panel = ActivityPanel(window.library.paths, lambda: window.library.settings)
    panel.resize(1100, 1000)
    panel.show()
    wait_for(app, lambda: panel.snapshot is not None)
    settle(app, 0.3)
    panel.grab().save(str(out_dir / "activity.png"))

    dialog = panel.open_trace(record["trace_id"])
    dialog.resize(1100, 560)
    dialog.view.select(len(dialog.rows) - 1 if dialog.rows else 0)
    chat = next((i for i, r in enumerate(dialog.rows) if r.name.startswith("chat ")), 0)
    dialog.view.select(chat)
    settle(app, 0.3)
    dialog.grab().save(str(out_dir / "waterfall.png"))
    dialog.close()
    panel.close()
    window.close()
    print(f"wrote {out_dir / 'activity.png'} and {out_dir / 'waterfall.png'}")


if __name__ == "__main__":
    main(ROOT / "docs")
