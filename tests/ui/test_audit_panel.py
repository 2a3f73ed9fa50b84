"""The audit panel follows a real audit log, checks its chain and exports it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from app.core.stores.audit import LOG_NAME, AuditLog  # noqa: E402
from app.ui.audit_panel import AuditPanel, local_time, summarize  # noqa: E402


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit"


def _fill(log: AuditLog) -> None:
    log.append("ingest", {"path": "/docs/report.pdf", "status": "indexed", "chunks": 12, "kind": "pdf"})
    log.append("ask", {"question": "What is the refund policy?", "k": 5, "mode": "hybrid"})
    log.append("answer", {"question": "What is the refund policy?", "declined": False,
                          "citations": [{"n": 1, "chunk_id": "a", "inferred": False},
                                        {"n": 2, "chunk_id": "b", "inferred": False}]})


def _panel(qtbot, folder: Path) -> AuditPanel:
    panel = AuditPanel(folder)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    return panel


def test_records_in_the_log_show_as_rows_with_a_verified_chain(qtbot, folder: Path) -> None:
    log = AuditLog(folder)
    _fill(log)

    panel = _panel(qtbot, folder)
    panel.refresh_now()

    assert panel.row_count() == 3
    assert panel.status_text() == "✔ Verified — 3 records"
    model = panel.table.model()
    assert [model.index(r, 2).data() for r in range(3)] == ["ingest", "ask", "answer"]
    assert model.index(0, 3).data() == "/docs/report.pdf (indexed, 12 chunks)"
    assert model.index(2, 3).data() == "“What is the refund policy?” — 2 citations"

    panel.select_row(2)
    details = json.loads(panel.details_text())
    assert details == log.records()[2]


def test_new_records_appear_live_without_a_manual_refresh(qtbot, folder: Path) -> None:
    log = AuditLog(folder)
    log.append("ingest", {"path": "/docs/a.txt", "status": "indexed", "chunks": 1})
    panel = _panel(qtbot, folder)
    assert panel.row_count() == 1

    log.append("remove", {"path": "/docs/a.txt", "chunks": 1})
    log.append("error", {"reason": "The model file is missing."})

    qtbot.waitUntil(lambda: panel.row_count() == 3, timeout=5000)
    qtbot.waitUntil(lambda: panel.status_text() == "✔ Verified — 3 records", timeout=8000)
    model = panel.table.model()
    assert model.index(2, 3).data() == "The model file is missing."
    # Newest at the bottom, and the view follows it.
    bar = panel.table.verticalScrollBar()
    assert bar.value() == bar.maximum()


def test_only_new_bytes_are_read_after_the_first_read(qtbot, folder: Path, monkeypatch) -> None:
    log = AuditLog(folder)
    _fill(log)
    panel = _panel(qtbot, folder)
    size_before = (folder / LOG_NAME).stat().st_size

    seeks: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, fh):
            self._fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

        def seek(self, pos, *args):
            seeks.append(pos)
            return self._fh.seek(pos, *args)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    def spying_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return Spy(fh) if str(path).endswith(LOG_NAME) and "r" in mode and "+" not in mode else fh

    log.append("ask", {"question": "And shipping?"})
    monkeypatch.setattr("builtins.open", spying_open)
    panel._refresh(verify=False)
    monkeypatch.undo()

    assert panel.row_count() == 4
    # The read started where the last one stopped, not at the top.
    assert seeks[-1] == size_before


def test_a_shrunk_log_is_read_again_from_the_start(qtbot, folder: Path) -> None:
    log = AuditLog(folder)
    _fill(log)
    panel = _panel(qtbot, folder)
    path = folder / LOG_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:1]))

    panel.refresh_now()

    assert panel.row_count() == 1
    assert panel.status_text().startswith("✖ Broken at record 2: the log was cut short")


def test_an_edited_record_breaks_the_chain_at_that_record(qtbot, folder: Path) -> None:
    log = AuditLog(folder)
    _fill(log)
    panel = _panel(qtbot, folder)
    assert panel.status_text() == "✔ Verified — 3 records"

    path = folder / LOG_NAME
    path.write_text(path.read_text(encoding="utf-8").replace("refund policy", "refund promise", 1),
                    encoding="utf-8")
    panel.refresh_now()

    assert panel.status_text().startswith("✖ Broken at record 2:")
    assert "edited" in panel.status_text()
    # The table shows the file as it is now.
    assert "refund promise" in panel.table.model().index(1, 3).data()


def test_tampering_is_noticed_live_and_verified_off_the_gui_thread(qtbot, folder: Path, monkeypatch) -> None:
    monkeypatch.setattr(AuditPanel, "async_verify_bytes", 0)
    monkeypatch.setattr(AuditPanel, "verify_interval_ms", 200)
    log = AuditLog(folder)
    _fill(log)
    panel = _panel(qtbot, folder)
    qtbot.waitUntil(lambda: panel.status_text() == "✔ Verified — 3 records", timeout=5000)

    path = folder / LOG_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    # Same length, nothing appended: only the chain check can notice.
    lines[0] = lines[0].replace(b'"chunks":12', b'"chunks":99')
    path.write_bytes(b"".join(lines))

    qtbot.waitUntil(lambda: panel.status_text().startswith("✖ Broken at record 1:"), timeout=8000)
    qtbot.waitUntil(lambda: "99 chunks" in panel.table.model().index(0, 3).data(), timeout=5000)


def test_an_unreadable_line_is_shown_not_hidden(qtbot, folder: Path) -> None:
    log = AuditLog(folder)
    _fill(log)
    path = folder / LOG_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"this is not json\n"
    path.write_bytes(b"".join(lines))

    panel = _panel(qtbot, folder)
    panel.refresh_now()

    assert panel.row_count() == 3
    assert panel.table.model().index(1, 2).data() == "(unreadable line)"
    panel.select_row(1)
    assert "this is not json" in panel.details_text()
    assert panel.status_text().startswith("✖ Broken at record 2:")


def test_export_writes_json_lines_that_round_trip(qtbot, folder: Path, tmp_path: Path) -> None:
    log = AuditLog(folder)
    _fill(log)
    panel = _panel(qtbot, folder)

    target = tmp_path / "export.jsonl"
    assert panel.export_to(target) == 3

    exported = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert exported == log.records()
    # Byte for byte, so the copy verifies like the original.
    assert target.read_bytes() == (folder / LOG_NAME).read_bytes()


def test_a_panel_opened_before_the_log_exists_picks_it_up(qtbot, folder: Path) -> None:
    panel = _panel(qtbot, folder)
    assert panel.row_count() == 0
    assert panel.status_text() == "✔ Verified — 0 records"

    log = AuditLog(folder)
    log.append("settings", {"temperature": 0.2, "top_k": 40})

    qtbot.waitUntil(lambda: panel.row_count() == 1, timeout=6000)
    assert panel.table.model().index(0, 3).data() == "temperature=0.2, top_k=40"


def test_summaries_and_times_read_plainly() -> None:
    assert summarize("answer", {"question": "Why?", "declined": True, "citations": []}) == "“Why?” — declined"
    assert summarize("answer", {"question": "Why?", "citations": [{"n": 1}]}) == "“Why?” — 1 citation"
    assert summarize("ingest", {"path": "/x.pdf", "status": "failed", "reason": "encrypted"}) == (
        "/x.pdf (failed, encrypted)"
    )
    assert summarize("audit_quarantine", {"reason": "the last line was cut off"}) == "the last line was cut off"
    assert local_time("not a time") == "not a time"
    assert len(local_time("2024-05-01T10:00:00.000Z")) == len("2024-05-01 10:00:00")
