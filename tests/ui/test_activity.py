"""The Activity panel, the timing waterfall and the burn-rate banner, over real spans.

Spans are made the way Docent makes them (``telemetry.span`` under a
provider whose exporter is the data folder's ActivityRecorder), so the
panel reads exactly what a real answer or ingest leaves behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app import telemetry
from app.config import DataPaths, Settings
from app.core.stores.activity import ActivityRecorder
from app.telemetry import names, span
from app.ui.activity_panel import ActivityPanel
from app.ui.why_dialog import WhyDialog

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture()
def paths(tmp_path: Path):
    """A data folder traced into its own activity store (as the window does)."""
    data = DataPaths(tmp_path / "data")
    data.root.mkdir()
    telemetry.configure(telemetry.TraceOptions(recorder=ActivityRecorder(data.activity)))
    yield data
    telemetry.shutdown()


def an_answer(question_label: str = "question") -> str:
    """One answer's spans: retrieval, then a chat span with its first token; returns the trace id."""
    with span("answer", {names.KIND: "answer", names.LABEL: question_label, names.TTFT_MS: 1200.0,
                         names.TOKENS_PER_S: 18.5, names.RETRIEVAL_MS: 80.0}):
        trace_id = telemetry.current_trace_id()
        with span("retrieval", {names.OPERATION: "retrieval"}):
            with span("vector_search", {"db.system.name": "chroma"}):
                pass
        with span("chat tiny-model", {names.OPERATION: "chat", names.REQUEST_MODEL: "tiny-model"}) as chat:
            chat.add_event("first_token", {names.TTFT_MS: 1100.0})
    assert trace_id is not None
    return trace_id


def indexed(n: int, outcome: str = "ok") -> None:
    """``n`` indexed files' operations, with the given outcome."""
    for i in range(n):
        with span("index_file", {names.KIND: "index", names.LABEL: f"file-{i}.pdf", names.OUTCOME: outcome,
                                 names.CHUNKS: 12}):
            with span("chunk"):
                pass


def shown(qtbot, panel: ActivityPanel) -> None:
    """Show the panel and wait for its first read."""
    telemetry.force_flush()
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.show()


def test_an_empty_data_folder_says_so_in_each_chart(qtbot, paths: DataPaths) -> None:
    panel = ActivityPanel(paths, Settings)
    qtbot.addWidget(panel)
    shown(qtbot, panel)

    assert all(chart.is_empty() for chart in panel.charts.values())
    assert "No answers in this period." in panel.ttft_chart.summary()
    assert panel.no_operations_label.isVisibleTo(panel) and panel.operation_rows() == []
    assert [row.title.text() for row in panel.budget_rows][0].startswith("Answers start within 5 s")
    assert all(row.left.text() == "no data yet" for row in panel.budget_rows)


def test_answers_and_ingests_show_as_charts_and_operations(qtbot, paths: DataPaths) -> None:
    an_answer()
    indexed(3)
    indexed(1, outcome="failed")
    panel = ActivityPanel(paths, Settings)
    qtbot.addWidget(panel)
    shown(qtbot, panel)

    for chart in (panel.ttft_chart, panel.speed_chart, panel.retrieval_chart, panel.indexing_chart,
                  panel.failures_chart):
        assert not chart.is_empty(), chart.title
    assert "p50: latest 1.2 s" in panel.ttft_chart.summary()
    assert "failed files: 1" in panel.failures_chart.summary()
    rows = panel.operation_rows()
    assert len(rows) == 5
    assert any("answer · question" in r[0] for r in rows)
    assert sum(1 for r in rows if r[2] == "failed") == 1
    # A file the user must fix is not Docent's error: the indexing budget is untouched.
    assert panel.budget_rows[1].left.text() == "100 % left"


def test_an_operation_opens_as_a_nested_waterfall_with_a_headline(qtbot, paths: DataPaths) -> None:
    an_answer()
    panel = ActivityPanel(paths, Settings)
    qtbot.addWidget(panel)
    shown(qtbot, panel)

    view = panel.operations_view
    view.setCurrentItem(view.topLevelItem(0))
    qtbot.keyClick(view, Qt.Key.Key_Return)
    dialog = panel.waterfall
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.bar_names() == [("answer", 0), ("retrieval", 1), ("vector_search", 2), ("chat tiny-model", 1)]
    headline = dialog.headline_label.text()
    assert "retrieval" in headline and "reading the prompt" in headline and "writing" in headline
    chat = dialog.rows[3]
    assert [m[0] for m in chat.markers] == ["first_token"]

    # Selecting a bar lists its attributes, GenAI names included.
    dialog.view.select(3)
    pairs = dict(dialog.attribute_pairs())
    assert pairs[names.OPERATION] == "chat" and pairs[names.REQUEST_MODEL] == "tiny-model"
    assert any(k.startswith("event: first_token") for k in pairs)


def test_an_error_is_a_red_bar_and_pruned_spans_are_named(qtbot, paths: DataPaths) -> None:
    from app.ui.waterfall import WaterfallDialog

    with pytest.raises(RuntimeError):
        with span("index_file", {names.KIND: "index", names.LABEL: "broken.pdf"}):
            with span("store"):
                raise RuntimeError("disk full")
    panel = ActivityPanel(paths, Settings)
    qtbot.addWidget(panel)
    shown(qtbot, panel)
    assert panel.operation_rows()[0][2] == "error"
    dialog = panel.open_trace(panel.operations_view.topLevelItem(0).data(0, Qt.ItemDataRole.UserRole))
    qtbot.addWidget(dialog)
    assert all(r.error for r in dialog.rows)

    gone = WaterfallDialog(panel.snapshot.operations[0], [])
    qtbot.addWidget(gone)
    assert "pruned" in gone.note_label.text()


def test_why_this_answer_opens_the_answers_timing(qtbot, paths: DataPaths) -> None:
    trace_id = an_answer()
    telemetry.force_flush()
    why = WhyDialog({"question": "q", "answer": "a", "trace_id": trace_id}, paths=paths)
    qtbot.addWidget(why)
    assert why.timing_button.isEnabled()
    qtbot.mouseClick(why.timing_button, Qt.MouseButton.LeftButton)
    assert why.waterfall is not None
    qtbot.addWidget(why.waterfall)
    assert why.waterfall.bar_names()[0] == ("answer", 0)
    assert "reading the prompt" in why.waterfall.headline_label.text()

    older = WhyDialog({"question": "q", "answer": "a"}, paths=paths)
    qtbot.addWidget(older)
    assert not older.timing_button.isEnabled() and "No timing" in older.timing_button.toolTip()


def test_the_range_selector_reads_again(qtbot, paths: DataPaths) -> None:
    indexed(2)
    panel = ActivityPanel(paths, Settings)
    qtbot.addWidget(panel)
    shown(qtbot, panel)
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.set_range("week")
    assert panel.snapshot is not None and panel.snapshot.range_name == "week"
    assert len(panel.operation_rows()) == 2


# --- in the window ------------------------------------------------------------


def test_a_burst_of_failures_raises_the_burn_rate_banner(qtbot, open_window, tmp_path: Path) -> None:
    window = open_window(tmp_path / "data")
    # The window traces its own data folder: these spans land in its activity store.
    indexed(1, outcome="error")
    telemetry.force_flush()
    window.check_budgets()
    with qtbot.waitSignal(window.activity_panel.reader.budgets, timeout=10_000):
        pass
    assert "burning" not in window.banner.current_text()  # one failure is not an incident

    indexed(20, outcome="error")
    telemetry.force_flush()
    window.check_budgets()
    qtbot.waitUntil(lambda: "burning fast" in window.banner.current_text(), timeout=10_000)
    assert window.banner.current_text().startswith("Files index without an internal error")
    assert window.banner.action_button.text() == "Show activity"
    qtbot.mouseClick(window.banner.action_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.activity_panel


def test_a_real_answer_in_the_window_shows_in_activity_and_why(qtbot, open_window, tmp_path: Path) -> None:
    from tests.ui.test_main_window import ask, sample_library_window

    window = sample_library_window(qtbot, open_window, tmp_path)
    record = ask(qtbot, window, "What temperature should sourdough bake at?")
    assert record.get("trace_id")

    window.show_activity()
    qtbot.waitUntil(lambda: any("answer ·" in r[0] for r in window.activity_panel.operation_rows())
                    and any("index ·" in r[0] for r in window.activity_panel.operation_rows()), timeout=15_000)
    assert not window.activity_panel.ttft_chart.is_empty()
    assert not window.activity_panel.indexing_chart.is_empty()

    window.show_why(window.chat.turns[-1].turn_id)
    window.why_dialog.show_timing()
    waterfall = window.why_dialog.waterfall
    names_ = [n for n, _ in waterfall.bar_names()]
    assert names_[0] == "answer" and "retrieval" in names_ and any(n.startswith("chat ") for n in names_)
    assert "reading the prompt" in waterfall.headline_label.text()
