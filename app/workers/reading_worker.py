"""The viewer's reader: a document's text, read off the GUI thread in the reader process.

``request`` is called from the GUI thread and returns at once with a ticket;
the text (with where the passage lies in it) or the reason it could not be
read comes back as a signal carrying that ticket. A newer request supersedes
an older one: a read still in progress is stopped (its reader process is
replaced), so a file that hangs its parser never holds up the next one.

The work runs on a daemon Python thread rather than a QThread: a read that
hangs must never hold up quitting the app, and a QThread cannot be abandoned.

An e-mail's attachment is shown as the file it is: ``extract`` has a second
reader process write it into a private folder this reader owns (removed
when it closes) and sends back the written file's path.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.documents.parsing import IsolatedParser
from app.core.documents.reading import ATTACHMENT_TARGET, attachment_request, read_for_viewing, reader
from app.core.passages import locate_passage
from app.errors import Cancelled, DocentError, ParseError, SkipFile


@dataclass(frozen=True)
class ReadRequest:
    """One document to read for the viewer, with the passage to find in it."""

    ticket: int
    path: str
    passage: str
    span: tuple[int, int] | None
    #: An attachment of ``path`` to extract instead of reading (its locator).
    part: str | None = None


class DocumentReader(QObject):
    """Reads documents for the viewer in an isolated reader process, one at a time."""

    read = Signal(int, str, object)  # ticket, text, (start, end) of the passage or None
    failed = Signal(int, str)  # ticket, why the file could not be read (a sentence part)
    extracted = Signal(int, str)  # ticket, the attachment's file, written for the viewer

    def __init__(
        self,
        parser_factory: Callable[[], IsolatedParser] = reader,
        parent: QObject | None = None,
    ) -> None:
        """
        Args:
            parser_factory: makes the reader process's parser (default: the
                viewer loader under ingest's limits; tests pass a faulty one).
        """
        super().__init__(parent)
        self._factory = parser_factory
        self._parser: IsolatedParser | None = None
        self._extractor: IsolatedParser | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._queue: queue.SimpleQueue[ReadRequest | None] = queue.SimpleQueue()
        self._latest = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def request(self, path: str, passage: str = "", span: tuple[int, int] | None = None) -> int:
        """Read ``path`` (and find ``passage`` in it); returns the ticket its signal will carry."""
        return self._put(path, passage, span, None)

    def _put(self, path: str, passage: str, span: tuple[int, int] | None, part: str | None) -> int:
        self._latest += 1
        ticket = self._latest
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="docent-viewer-reader", daemon=True)
            self._thread.start()
        self._queue.put(ReadRequest(ticket, path, passage, span, part))
        return ticket

    def extract(self, path: str, part: str) -> int:
        """Write the attachment ``part`` of the mail file ``path`` to a private file;
        returns the ticket its ``extracted`` (or ``failed``) signal will carry."""
        return self._put(path, "", None, part)

    def cancel(self) -> None:
        """Drop the request in hand: its result, if any, is never sent."""
        self._latest += 1

    def close(self) -> None:
        """Stop reading and end the reader process (it ends with the app anyway)."""
        self._closed = True
        self._latest += 1
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._closed:
                break
            if item.ticket != self._latest:
                continue  # superseded while it waited
            if not self._serve(item):
                break
        for parser in (self._parser, self._extractor):
            if parser is not None:
                parser.close()
        if self._folder is not None:
            self._folder.cleanup()

    def _serve(self, item: ReadRequest) -> bool:
        """Read (or extract) one request and send its result; False once this reader is gone."""
        try:
            if item.part is not None:
                return self._send(self.extracted, item.ticket, str(self._extract(item)))
            if self._parser is None:
                self._parser = self._factory()
            text = read_for_viewing(self._parser, Path(item.path),
                                    should_stop=lambda: item.ticket != self._latest)
            found = locate_passage(text, item.passage, item.span)
        except Cancelled:
            return True
        except (ParseError, SkipFile) as exc:
            return self._send(self.failed, item.ticket, exc.reason)
        except DocentError as exc:
            return self._send(self.failed, item.ticket, str(exc))
        except Exception as exc:  # noqa: BLE001 - the viewer shows it; the reader goes on
            return self._send(self.failed, item.ticket, f"an unexpected error ({type(exc).__name__}: {exc})")
        return self._send(self.read, item.ticket, text, found)

    def _extract(self, item: ReadRequest) -> Path:
        """Write the attachment ``item`` names to this reader's folder, in the attachment reader process."""
        assert item.part is not None
        if self._extractor is None:
            self._extractor = reader(target=ATTACHMENT_TARGET)
        if self._folder is None:
            # Private to this user (0700) and removed with the reader.
            self._folder = tempfile.TemporaryDirectory(prefix="docent-attachments-")
        request = attachment_request(Path(item.path), item.part, Path(self._folder.name))
        return self._extractor.load(request, should_stop=lambda: item.ticket != self._latest).path

    def _send(self, signal: Signal, ticket: int, *args: object) -> bool:
        if ticket != self._latest:
            return True
        try:
            signal.emit(ticket, *args)  # type: ignore[attr-defined]
        except RuntimeError:  # the viewer (and this object's C++ side) is gone
            return False
        return True
