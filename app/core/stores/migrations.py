"""Schema migrations for Docent's SQLite files (catalog, chats).

Migrations are named functions, applied in order, each in its own
transaction and recorded in a ``migrations`` table, so a file is brought up
to date once and never migrated twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

Migration = Callable[[sqlite3.Connection], None]


def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one (``executescript`` would commit our transaction)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def apply(db: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    """Apply the migrations ``db`` has not had yet (autocommit connection)."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    done = {r[0] for r in db.execute("SELECT name FROM migrations")}
    for migration in migrations:
        if migration.__name__ in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            db.execute(
                "INSERT INTO migrations VALUES (?, ?)",
                (migration.__name__, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
