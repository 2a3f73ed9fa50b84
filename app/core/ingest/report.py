"""What an ingest run reports: where it is (as it goes) and what it did."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.core.documents.model import step_word


@dataclass
class Progress:
    """Where an ingest run is; sent to the progress callback after each step."""

    files_done: int
    files_total: int
    chunks_done: int
    current: str | None
    started: float
    pages_done: int = 0  # pages (slides, messages …) of the current file read so far
    pages_total: int = 0
    embedded: int = 0  # passages of the current file embedded so far
    to_embed: int = 0
    embed_started: float | None = None  # when the current file's embedding began

    def embedding(self, done: int, total: int) -> None:
        """Count the current file's passages embedded (the first call starts its clock)."""
        if self.embed_started is None or done < self.embedded:
            self.embed_started = time.monotonic()
        self.embedded, self.to_embed = done, total

    def next_file(self, current: str | None) -> None:
        """Start on another file: its own counts begin at nothing."""
        self.current = current
        self.pages_done = self.pages_total = self.embedded = self.to_embed = 0
        self.embed_started = None

    @property
    def eta_s(self) -> float | None:
        """Seconds left, estimated from the files done so far; for the last
        file (a mailbox of ten thousand messages, say), from how fast its own
        passages are being embedded."""
        now = time.monotonic()
        if (self.files_total - self.files_done == 1 and self.embed_started is not None
                and 0 < self.embedded < self.to_embed):
            return (now - self.embed_started) / self.embedded * (self.to_embed - self.embedded)
        if self.files_done == 0 or self.files_total == 0:
            return None
        return (now - self.started) / self.files_done * (self.files_total - self.files_done)

    def detail(self) -> str:
        """What is happening to the current file, for a progress line
        ("page 3/12", "message 4,220/10,000", "embedding 3,200/10,000 passages");
        "" when there is nothing more to say than its name."""
        if self.to_embed > 1:
            return f"embedding {self.embedded:,}/{self.to_embed:,} passages"
        if self.pages_total > 1:
            return f"{step_word(self.current)} {self.pages_done:,}/{self.pages_total:,}"
        return ""


@dataclass
class IngestReport:
    """What an ingest run did (the ``ingest --json`` shape)."""

    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    cancelled: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "chunks": self.chunks,
        }
