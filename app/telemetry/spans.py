"""Making spans: the current operation's children, past work, content on request."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from app.telemetry import setup


@contextmanager
def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None, *,
    kind: SpanKind = SpanKind.INTERNAL, start_ns: int | None = None,
) -> Iterator[Span]:
    """A span around the ``with`` block, a child of the current one.

    An exception leaving the block is recorded on the span (status error)
    and re-raised.
    """
    with setup.tracer().start_as_current_span(
        name, attributes=attributes, kind=kind, start_time=start_ns,
        record_exception=True, set_status_on_exception=True,
    ) as current:
        yield current


def past_span(
    name: str, start_ns: int, end_ns: int, attributes: Mapping[str, AttributeValue] | None = None,
    *, error: str | None = None,
) -> None:
    """Record work that already happened (e.g. in a reader process) as a child
    of the current span, with its own start and end times."""
    s = setup.tracer().start_span(name, attributes=attributes, start_time=start_ns)
    if error is not None:
        s.set_status(Status(StatusCode.ERROR, error))
    s.end(end_time=max(end_ns, start_ns))


def content(target: Span, key: str, text: str | None) -> None:
    """Put ``text`` (a question, a prompt, an answer) on ``target``, only when
    the user turned content recording on."""
    if text is not None and setup.record_content():
        target.set_attribute(key, text)


def current_trace_id() -> str | None:
    """The current trace's id (32 hex digits), or None when nothing is traced."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def set_attributes(target: Span, values: Mapping[str, Any]) -> None:
    """Set the attributes that have a value (None is left out)."""
    for key, value in values.items():
        if value is not None:
            target.set_attribute(key, value)
