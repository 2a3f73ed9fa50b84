"""A team server for tests: a real library with the bundled models served over
loopback HTTP in this process, with an admin, an editor and a reader (the
last two may read only the notes folder), and the writer thread an editor's
changes run on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.library import Library
from app.service.engine import Service
from app.service.keeper import LibraryKeeper
from app.service.runner import ServerThread
from tests import corpus

GARDEN = ("# Garden notes\n\nThe tomatoes in the greenhouse ripened in late July. "
          "We planted twelve apple trees along the southern wall.\n")


@dataclass
class TeamServer:
    service: Service
    server: ServerThread
    keeper: LibraryKeeper
    lib: Library
    docs: Path
    notes: Path
    secrets: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.keeper.stop()
        self.service.close()
        self.lib.close()


def start_team(root: Path, embedder: object, chat_model: object, *, notes_as_file: bool = False) -> TeamServer:
    """Serve ``root/docs`` (the sample library) and ``root/notes`` (one note).

    Args:
        notes_as_file: add the note file itself to the library rather than
            its folder (so a folder made inside the notes later is not synced in).
    """
    corpus.make_library(root / "docs")
    notes = root / "notes"
    notes.mkdir()
    (notes / "garden.md").write_text(GARDEN, encoding="utf-8")
    lib = Library(root / "data", purpose="tests")
    lib.use_embedder(embedder)
    lib.use_model(chat_model)
    lib.indexer.ingest([root / "docs", notes / "garden.md" if notes_as_file else notes])
    service = Service(lib)
    secrets = {
        "boss": service.keys.create("boss", role="admin")[1],
        "ed": service.keys.create("ed", role="editor", scopes=(str(notes),))[1],
        "rita": service.keys.create("rita", role="reader", scopes=(str(notes),))[1],
    }
    service.load()
    assert service.state == "ready", service.problem
    keeper = service.keeper = LibraryKeeper(lib)
    keeper.start()
    return TeamServer(service, ServerThread(service).start(), keeper, lib, root / "docs", notes, secrets)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """True once ``condition()`` holds; False when ``timeout`` seconds pass first."""
    gave_up = threading.Event()
    timer = threading.Timer(timeout, gave_up.set)
    timer.start()
    try:
        while not gave_up.is_set():
            if condition():
                return True
            gave_up.wait(0.1)
        return False
    finally:
        timer.cancel()
