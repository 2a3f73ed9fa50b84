"""Turning observability on for a process, from the settings and the command line.

Spans always go to the data folder's activity store (local: the Activity
panel, ``docent stats``, the error budgets). They are exported only where
the user names a destination: ``--trace FILE`` or the settings' "file"
(``DataPaths.traces``, rotated), and ``--otlp URL`` or the settings' "otlp".
"""

from __future__ import annotations

from pathlib import Path

from app import telemetry
from app.config import DataPaths, Settings
from app.core.stores.activity import ActivityRecorder
from app.errors import UsageError


def trace_options(paths: DataPaths, settings: Settings, *, trace_file: Path | None = None,
                  otlp: str | None = None, record: bool = True) -> telemetry.TraceOptions:
    """Where spans go for this data folder: the activity store (unless
    ``record`` is off), plus the export the settings or the command line name."""
    file = trace_file
    if file is None and settings.trace_export == "file":
        file = paths.traces
    url = otlp or (settings.otlp_url if settings.trace_export == "otlp" else None)
    if url and not url.startswith(("http://", "https://")):
        raise UsageError(f"The OTLP endpoint {url!r} is not an http:// or https:// URL "
                         "(e.g. http://collector.example:4318).")
    return telemetry.TraceOptions(
        file=Path(file).expanduser() if file is not None else None, otlp=url or None,
        content=settings.trace_content,
        recorder=ActivityRecorder(paths.activity) if record else None)


def start(paths: DataPaths, settings: Settings, *, trace_file: Path | None = None,
          otlp: str | None = None, record: bool = True) -> telemetry.TraceOptions:
    """Configure this process's tracing for ``paths`` (see :func:`trace_options`)."""
    options = trace_options(paths, settings, trace_file=trace_file, otlp=otlp, record=record)
    telemetry.configure(options)
    return options
