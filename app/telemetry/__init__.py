"""Docent's observability, on OpenTelemetry: spans, metrics, and where they go.

One tracer provider and one meter provider per process, set by
:func:`configure` (the window, each ``docent`` command and ``docent serve``
call it). Until then every span and measurement is a no-op, so the core can
be used as a library without any of this.

Nothing leaves the machine unless the user names a destination: by default
spans go only to the local activity store (the Activity panel and ``docent
stats``); ``--trace FILE`` / the settings add a rotated JSON-lines file, and
``--otlp URL`` an OTLP/HTTP collector. Questions and document text are put on
spans only when :func:`record_content` is on.

This package imports nothing of Docent but the settings' constants (it sits
below the core, which instruments itself with it).
"""

from app.telemetry.setup import (
    TraceOptions,
    configure,
    force_flush,
    instruments,
    is_configured,
    metrics_registry,
    record_content,
    shutdown,
    tracer,
)
from app.telemetry.spans import content, current_trace_id, past_span, span

__all__ = [
    "TraceOptions",
    "configure",
    "content",
    "current_trace_id",
    "force_flush",
    "instruments",
    "is_configured",
    "metrics_registry",
    "past_span",
    "record_content",
    "shutdown",
    "span",
    "tracer",
]
