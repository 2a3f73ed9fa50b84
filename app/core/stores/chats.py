"""Conversations: questions, answers and a snapshot of what each answer saw.

They live in ``DATA_DIR/chats.sqlite3``, apart from the index, so rebuilding
the index never loses a conversation, and "Why this answer" still shows the
passages the model was given after the files have changed.

One :class:`ChatStore` holds one connection, shared by the window's GUI
thread and the model worker thread, so every use goes through one lock.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.core.documents.model import citation_place
from app.core.stores.migrations import run_script
from app.core.stores.sqlite import SqliteStore
from app.errors import StoreError

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60


@dataclass(frozen=True)
class Conversation:
    """A conversation's header (its turns are read separately)."""

    id: int
    title: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Turn:
    """One question and its answer.

    ``record`` is the answer snapshot: ``Answer.to_json()`` plus what the
    window adds (``retrieved``, ``stopped``); ``{}`` while the answer is pending.
    """

    id: int
    conversation_id: int
    question: str
    answer: str
    created_at: str
    record: dict[str, Any]


def _now() -> str:
    # Microseconds: updated_at is shown, and a coarser stamp would make
    # conversations touched in the same second look simultaneous.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def short_title(question: str, limit: int = TITLE_LENGTH) -> str:
    """``question`` on one line, cut to about ``limit`` characters at a word boundary."""
    text = " ".join(question.split())
    if not text:
        return DEFAULT_TITLE
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    # A single very long word has no boundary worth keeping: cut it mid-word.
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


# --- migrations: named functions, recorded as they are applied -------------


def _m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            touched INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX conversations_touched ON conversations(touched);
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            record TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX turns_conversation ON turns(conversation_id, id);
        """
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_initial]


class ChatStore(SqliteStore):
    """The conversation history, in its own SQLite file.

    Args:
        path: the ``chats.sqlite3`` file (created with its folder if missing).
    """

    what = "conversation history"
    MIGRATIONS = MIGRATIONS
    damaged_advice = "It may be damaged; move it aside to start with an empty history."

    def __init__(self, path: Path) -> None:
        super().__init__(path)

    @staticmethod
    def _touch(db: sqlite3.Connection, conversation_id: int) -> None:
        # ``touched`` is a counter, not a clock: "most recent first" must hold
        # even for two changes within one clock tick.
        db.execute(
            "UPDATE conversations SET updated_at = ?, "
            "touched = (SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations) WHERE id = ?",
            (_now(), conversation_id),
        )

    @staticmethod
    def _conversation(row: sqlite3.Row) -> Conversation:
        return Conversation(row["id"], row["title"], row["created_at"], row["updated_at"])

    @staticmethod
    def _turn(row: sqlite3.Row) -> Turn:
        try:
            record = json.loads(row["record"])
        except ValueError:
            record = {}  # a damaged snapshot must not hide the question and answer
        return Turn(
            row["id"], row["conversation_id"], row["question"], row["answer"], row["created_at"],
            record if isinstance(record, dict) else {},
        )

    @staticmethod
    def _dump(record: dict[str, Any]) -> str:
        # default=str: a stray Path or numpy float in a snapshot must not lose the answer.
        return json.dumps(record, ensure_ascii=False, default=str)

    # --- conversations ------------------------------------------------------

    def create(self, title: str = DEFAULT_TITLE) -> Conversation:
        """Start a new, empty conversation."""
        now = _now()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, touched) "
                "VALUES (?, ?, ?, (SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations))",
                (title.strip() or DEFAULT_TITLE, now, now),
            )
            new_id = int(cur.lastrowid or 0)
        return Conversation(new_id, title.strip() or DEFAULT_TITLE, now, now)

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation a new title (blank means "New chat")."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?",
                (" ".join(title.split()) or DEFAULT_TITLE, conversation_id),
            )
            if cur.rowcount == 0:
                raise StoreError("That conversation no longer exists; it may have been deleted.")

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its turns (nothing happens if it is gone already)."""
        with self._tx() as db:
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def conversations(self) -> list[Conversation]:
        """Every conversation, most recently updated first."""
        rows = self._query("SELECT * FROM conversations ORDER BY touched DESC, id DESC")
        return [self._conversation(r) for r in rows]

    def get(self, conversation_id: int) -> Conversation | None:
        """One conversation, or ``None`` if it does not exist."""
        rows = self._query("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return self._conversation(rows[0]) if rows else None

    # --- turns --------------------------------------------------------------

    def add_turn(
        self, conversation_id: int, question: str, answer: str, record: dict[str, Any]
    ) -> Turn:
        """Append a question and its answer (or ``""`` / ``{}`` while pending).

        The first question becomes the title of a conversation still called
        "New chat".
        """
        now = _now()
        with self._tx() as db:
            row = db.execute(
                "SELECT title FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise StoreError("That conversation no longer exists; it may have been deleted.")
            cur = db.execute(
                "INSERT INTO turns (conversation_id, question, answer, record, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (conversation_id, question, answer, self._dump(record), now),
            )
            turn_id = int(cur.lastrowid or 0)
            if row["title"] == DEFAULT_TITLE and question.strip():
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ?",
                    (short_title(question), conversation_id),
                )
            self._touch(db, conversation_id)
        return Turn(turn_id, conversation_id, question, answer, now, dict(record))

    def update_turn(self, turn_id: int, answer: str, record: dict[str, Any]) -> None:
        """Replace a turn's answer and snapshot (when it completes, or on Regenerate)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT conversation_id FROM turns WHERE id = ?", (turn_id,)
            ).fetchone()
            if row is None:
                raise StoreError("That answer no longer exists; its conversation may have been deleted.")
            db.execute(
                "UPDATE turns SET answer = ?, record = ? WHERE id = ?",
                (answer, self._dump(record), turn_id),
            )
            self._touch(db, row["conversation_id"])

    def delete_turn(self, turn_id: int) -> None:
        """Remove one question and its answer (nothing happens if it is gone already)."""
        with self._tx() as db:
            db.execute("DELETE FROM turns WHERE id = ?", (turn_id,))

    def turn(self, turn_id: int) -> Turn | None:
        """One turn, or ``None`` if it does not exist."""
        rows = self._query("SELECT * FROM turns WHERE id = ?", (turn_id,))
        return self._turn(rows[0]) if rows else None

    def turns(self, conversation_id: int) -> list[Turn]:
        """A conversation's turns, oldest first."""
        rows = self._query(
            "SELECT * FROM turns WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return [self._turn(r) for r in rows]

    def history(
        self, conversation_id: int, *, before_turn: int | None = None
    ) -> list[tuple[str, str]]:
        """(question, answer) pairs to give the model for a follow-up, oldest first.

        Declined answers and empty ones (pending, or stopped before any
        text) are left out: they carry nothing the model could build on.
        ``before_turn`` keeps only the turns before that one (for Regenerate).
        """
        pairs: list[tuple[str, str]] = []
        for turn in self.turns(conversation_id):
            if before_turn is not None and turn.id >= before_turn:
                break
            if turn.record.get("declined") or not turn.answer.strip():
                continue
            pairs.append((turn.question, turn.answer))
        return pairs

    # --- export -------------------------------------------------------------

    def export_markdown(self, conversation_id: int) -> str:
        """The conversation as a readable Markdown document, with its sources."""
        conversation = self.get(conversation_id)
        if conversation is None:
            raise StoreError("That conversation no longer exists; it may have been deleted.")
        parts = [f"# {conversation.title}", f"_Started {conversation.created_at[:16].replace('T', ' ')} UTC_"]
        for turn in self.turns(conversation_id):
            parts.append(f"## Q: {' '.join(turn.question.split())}")
            parts.append(turn.answer.strip() or "_(no answer)_")
            if turn.record.get("stopped"):
                parts.append("_(stopped before the answer was finished)_")
            citations = turn.record.get("citations") or []
            if citations and not turn.record.get("declined"):
                parts.append("**Sources**")
                parts.append("\n\n".join(_citation_markdown(c) for c in citations if isinstance(c, dict)))
        return "\n\n".join(parts) + "\n"


def _code_span(text: str) -> str:
    # A path holding a backtick needs a longer fence to stay one code span.
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _citation_markdown(citation: dict[str, Any]) -> str:
    line = f"- [{citation.get('n', '?')}] {citation_place(citation)}"
    if citation.get("inferred"):
        line += " (inferred)"
    path = str(citation.get("path") or "")
    if path:
        line += f"  \n  {_code_span(path)}"
    text = str(citation.get("text") or "").strip()
    if text:
        # Indented under the list item so the quote belongs to this citation.
        quote = "\n".join(f"  > {ln}".rstrip() for ln in re.split(r"\r?\n", text))
        line += "\n\n" + quote
    return line
