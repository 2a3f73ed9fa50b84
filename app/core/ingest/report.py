"""What an ingest run reports: where it is (as it goes) and what it did."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """Where an ingest run is; sent to the progress callback after each step."""

    files_done: int
    files_total: int
    chunks_done: int
    current: str | None
    started: float
    pages_done: int = 0
    pages_total: int = 0

    @property
    def eta_s(self) -> float | None:
        """Seconds left, estimated from the files done so far."""
        if self.files_done == 0 or self.files_total == 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.files_done * (self.files_total - self.files_done)


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
