"""Conversation history: real SQLite file, what the window and an export show."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from app.core.stores.chats import ChatStore, short_title
from app.errors import StoreError


@pytest.fixture()
def store(tmp_path: Path):
    s = ChatStore(tmp_path / "data" / "chats.sqlite3")
    yield s
    s.close()


def record(answer: str, *, declined: bool = False, citations: list[dict[str, Any]] | None = None,
           stopped: bool = False) -> dict[str, Any]:
    return {
        "question": "q", "answer": answer, "declined": declined, "sources": [],
        "citations": citations or [], "model": "SmolLM2.gguf",
        "timings_ms": {"retrieve": 1.0, "first_token": None, "total": 2.0},
        "retrieved": [], "stopped": stopped,
    }


def test_create_list_get_rename_delete(store: ChatStore) -> None:
    a = store.create()
    b = store.create("Budget questions")
    assert a.title == "New chat" and b.title == "Budget questions"
    assert [c.id for c in store.conversations()] == [b.id, a.id]
    store.rename(a.id, "  Pump   manual ")
    assert store.get(a.id).title == "Pump manual"  # type: ignore[union-attr]
    store.delete(b.id)
    assert store.get(b.id) is None
    assert [c.title for c in store.conversations()] == ["Pump manual"]
    store.delete(b.id)  # already gone: nothing happens


def test_rename_missing_conversation_says_so(store: ChatStore) -> None:
    with pytest.raises(StoreError, match="no longer exists"):
        store.rename(999, "x")


def test_first_question_becomes_the_title(store: ChatStore) -> None:
    c = store.create()
    question = "How often should the intake filter of the main water pump be replaced in winter?"
    store.add_turn(c.id, question, "Every month [1].", record("Every month [1]."))
    title = store.get(c.id).title  # type: ignore[union-attr]
    assert title == "How often should the intake filter of the main water pump…"
    assert len(title) <= 61
    store.add_turn(c.id, "And in summer?", "Twice a year.", record("Twice a year."))
    assert store.get(c.id).title == title  # type: ignore[union-attr]


def test_a_chosen_title_is_kept(store: ChatStore) -> None:
    c = store.create("Mine")
    store.add_turn(c.id, "What is this?", "A thing.", record("A thing."))
    assert store.get(c.id).title == "Mine"  # type: ignore[union-attr]


def test_short_title() -> None:
    assert short_title("  short\nquestion ") == "short question"
    assert short_title("x" * 100).endswith("…") and len(short_title("x" * 100)) == 61
    assert short_title("") == "New chat"


def test_adding_a_turn_moves_the_conversation_to_the_top(store: ChatStore) -> None:
    old = store.create()
    new = store.create()
    assert store.conversations()[0].id == new.id
    store.add_turn(old.id, "Question?", "Answer.", record("Answer."))
    assert [c.id for c in store.conversations()] == [old.id, new.id]
    assert store.get(old.id).updated_at >= store.get(old.id).created_at  # type: ignore[union-attr]


def test_turns_round_trip_the_record(store: ChatStore) -> None:
    c = store.create()
    rec = record("Boils at 100 °C [1].", citations=[{"n": 1, "path": "/d/a.pdf", "page": 2}])
    rec["retrieved"] = [{"chunk_id": "abc", "score": 0.5, "given": True, "text": "…"}]
    t1 = store.add_turn(c.id, "Boiling point?", "Boils at 100 °C [1].", rec)
    t2 = store.add_turn(c.id, "And ice?", "", {})
    turns = store.turns(c.id)
    assert [t.id for t in turns] == [t1.id, t2.id]
    assert turns[0].record == rec
    assert turns[0].question == "Boiling point?" and turns[0].answer == "Boils at 100 °C [1]."
    assert turns[1].record == {} and turns[1].answer == ""


def test_update_turn_replaces_answer_for_regenerate(store: ChatStore) -> None:
    c = store.create()
    t = store.add_turn(c.id, "Q?", "", {})
    store.update_turn(t.id, "Final [1].", record("Final [1]."))
    (turn,) = store.turns(c.id)
    assert turn.answer == "Final [1]." and turn.record["answer"] == "Final [1]."
    with pytest.raises(StoreError):
        store.update_turn(12345, "x", {})


def test_delete_turn(store: ChatStore) -> None:
    c = store.create()
    t1 = store.add_turn(c.id, "one", "1", record("1"))
    t2 = store.add_turn(c.id, "two", "2", record("2"))
    store.delete_turn(t1.id)
    assert [t.id for t in store.turns(c.id)] == [t2.id]


def test_deleting_a_conversation_deletes_its_turns(store: ChatStore, tmp_path: Path) -> None:
    c = store.create()
    store.add_turn(c.id, "one", "1", record("1"))
    store.delete(c.id)
    assert store.turns(c.id) == []
    db = sqlite3.connect(tmp_path / "data" / "chats.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0
    db.close()


def test_add_turn_to_missing_conversation(store: ChatStore) -> None:
    with pytest.raises(StoreError, match="no longer exists"):
        store.add_turn(42, "q", "a", {})


def test_history_skips_declined_and_empty_answers(store: ChatStore) -> None:
    c = store.create()
    store.add_turn(c.id, "What is X?", "X is a pump [1].", record("X is a pump [1]."))
    store.add_turn(c.id, "What is Y?", "I could not find this in your documents.",
                   record("I could not find this in your documents.", declined=True))
    store.add_turn(c.id, "Stopped one", "", record("", stopped=True))
    t4 = store.add_turn(c.id, "What does X cost?", "$5 [2].", record("$5 [2]."))
    store.add_turn(c.id, "Pending", "", {})
    assert store.history(c.id) == [("What is X?", "X is a pump [1]."), ("What does X cost?", "$5 [2].")]
    assert store.history(c.id, before_turn=t4.id) == [("What is X?", "X is a pump [1].")]


def test_survives_reopen_and_migrations_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    s = ChatStore(path)
    c = s.create()
    s.add_turn(c.id, "Kept?", "Yes.", record("Yes."))
    s.close()
    s.close()  # idempotent
    s = ChatStore(path)
    assert [t.answer for t in s.turns(c.id)] == ["Yes."]
    s.close()
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM migrations")] == ["_m001_initial"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_closed_store_says_so(tmp_path: Path) -> None:
    s = ChatStore(tmp_path / "c.sqlite3")
    s.close()
    with pytest.raises(StoreError, match="not open"):
        s.conversations()


def test_damaged_file_gives_a_human_error(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        ChatStore(path)


def test_two_threads_share_the_store(store: ChatStore) -> None:
    c = store.create()
    errors: list[BaseException] = []

    def work(tag: str) -> None:
        try:
            for i in range(40):
                t = store.add_turn(c.id, f"{tag} {i}", "", {})
                store.update_turn(t.id, f"answer {tag} {i}", record("a"))
                store.conversations()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("gui", "worker")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    turns = store.turns(c.id)
    assert len(turns) == 80 and all(t.answer.startswith("answer ") for t in turns)


def test_export_markdown(store: ChatStore) -> None:
    c = store.create()
    citations = [
        {"n": 1, "path": "/home/ann/docs/manual.pdf", "page": 4, "label": "iv", "heading": None,
         "chunk_id": "c1", "text": "Replace the filter\nevery month.", "inferred": False, "span": [0, 10]},
        {"n": 2, "path": "/home/ann/docs/notes.md", "page": None, "label": None,
         "heading": "Winter care", "chunk_id": "c2", "text": "Drain the pump.", "inferred": True,
         "span": [3, 9]},
    ]
    store.add_turn(c.id, "How do I look after the pump?", "Replace the filter [1] and drain it.",
                   record("…", citations=citations))
    store.add_turn(c.id, "What colour is it?", "I could not find this in your documents.",
                   record("I could not find this in your documents.", declined=True))
    store.add_turn(c.id, "Halted?", "Partial", record("Partial", stopped=True))
    md = store.export_markdown(c.id)
    assert md.startswith("# How do I look after the pump?\n")
    assert "## Q: How do I look after the pump?\n\nReplace the filter [1] and drain it." in md
    assert "- [1] manual.pdf, page 4 (printed iv)  \n  `/home/ann/docs/manual.pdf`" in md
    assert "  > Replace the filter\n  > every month." in md
    assert '- [2] notes.md, section "Winter care" (inferred)' in md
    assert "  > Drain the pump." in md
    assert "## Q: What colour is it?\n\nI could not find this in your documents." in md
    assert md.count("**Sources**") == 1
    assert "Partial\n\n_(stopped before the answer was finished)_" in md


def test_export_page_label_equal_to_page_is_not_repeated(store: ChatStore) -> None:
    c = store.create("T")
    cit = {"n": 1, "path": "/d/a.pdf", "page": 3, "label": "3", "text": "t", "inferred": False}
    store.add_turn(c.id, "q", "a [1]", record("a [1]", citations=[cit]))
    md = store.export_markdown(c.id)
    assert "- [1] a.pdf, page 3  \n" in md and "printed" not in md


def test_export_missing_conversation(store: ChatStore) -> None:
    with pytest.raises(StoreError):
        store.export_markdown(7)
