"""The process's tracer and meter providers, and where their data goes."""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from prometheus_client import CollectorRegistry

from app import __version__, config
from app.telemetry.instruments import Instruments

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_SCOPE = "docent"
_RECORDER_DELAY_MS = 300  # the Activity panel sees an operation this soon after it ends
_OTLP_METRICS_S = 30
# A collector that is down must not hold a command's exit for long: each export
# (with its retries) gives up after this many seconds; the spans are dropped.
_OTLP_TIMEOUT_S = 3


@dataclass(frozen=True)
class TraceOptions:
    """Where this process's spans (and metrics) go.

    Attributes:
        file: a JSON-lines span file (rotated at config.TRACE_FILE_MB).
        otlp: an OTLP/HTTP endpoint (``http://collector:4318``), for spans and metrics.
        content: put questions, prompts and answers on spans (off: never).
        recorder: the local activity store's exporter (the Activity panel).
    """

    file: Path | None = None
    otlp: str | None = None
    content: bool = False
    recorder: SpanExporter | None = None

    @property
    def exports(self) -> bool:
        """Whether spans leave the process for a file or a collector."""
        return self.file is not None or bool(self.otlp)


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self.options = TraceOptions()
        # The OpenTelemetry metrics in Prometheus form, for the local API's
        # /metrics (one registry per process, re-filled on each configure).
        self.registry = CollectorRegistry()
        self.instruments = Instruments(NoOpMeterProvider().get_meter(_SCOPE))
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.at_exit = False


_state = _State()


def _otlp_endpoint(url: str, signal: str) -> str:
    """The OTLP/HTTP endpoint for ``signal`` (traces, metrics) under ``url``."""
    url = url.rstrip("/")
    for suffix in ("/v1/traces", "/v1/metrics"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return f"{url}/v1/{signal}"


def configure(options: TraceOptions) -> None:
    """Set this process's providers to ``options`` (replacing earlier ones,
    whose pending spans are flushed first)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _state.lock:
        shutdown()
        resource = Resource.create({"service.name": "docent", "service.version": __version__})
        provider = TracerProvider(resource=resource)
        if options.recorder is not None:
            provider.add_span_processor(BatchSpanProcessor(options.recorder, schedule_delay_millis=_RECORDER_DELAY_MS))
        if options.file is not None:
            from app.telemetry.jsonl import JsonLinesExporter

            provider.add_span_processor(BatchSpanProcessor(
                JsonLinesExporter(options.file, max_bytes=config.TRACE_FILE_MB << 20, keep=config.TRACE_FILES_KEPT)))
        readers: list[MetricReader] = [PrometheusMetricReader(registry=_state.registry)]
        if options.otlp:
            # Imported only when asked for: the exporter brings in requests.
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=_otlp_endpoint(options.otlp, "traces"), timeout=_OTLP_TIMEOUT_S)))
            readers.append(PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_otlp_endpoint(options.otlp, "metrics"), timeout=_OTLP_TIMEOUT_S),
                export_interval_millis=_OTLP_METRICS_S * 1000))
        meters = MeterProvider(resource=resource, metric_readers=readers)
        _state.tracer_provider, _state.meter_provider, _state.options = provider, meters, options
        _state.tracer = provider.get_tracer(_SCOPE, __version__)
        _state.instruments = Instruments(meters.get_meter(_SCOPE, __version__))
        if not _state.at_exit:
            atexit.register(shutdown)  # a command's last spans are written before it exits
            _state.at_exit = True


def shutdown() -> None:
    """Flush and stop the providers; spans are no-ops again until :func:`configure`."""
    with _state.lock:
        provider, meters = _state.tracer_provider, _state.meter_provider
        _state.tracer_provider = _state.meter_provider = None
        _state.tracer = trace.NoOpTracer()
        _state.instruments = Instruments(NoOpMeterProvider().get_meter(_SCOPE))
        _state.options = TraceOptions()
        for stop in (provider, meters):
            if stop is not None:
                stop.shutdown()


def force_flush(timeout_ms: int = 10_000) -> bool:
    """Hand every finished span to its exporters now (e.g. before reading the
    activity store, or a test reading the span file)."""
    provider = _state.tracer_provider
    return provider.force_flush(timeout_ms) if provider is not None else True


def is_configured() -> bool:
    """Whether spans are being recorded at all in this process."""
    return _state.tracer_provider is not None


def tracer() -> trace.Tracer:
    """Docent's tracer (a no-op one until :func:`configure`)."""
    return _state.tracer


def instruments() -> Instruments:
    """Docent's metric instruments (no-ops until :func:`configure`)."""
    return _state.instruments


def record_content() -> bool:
    """Whether questions, prompts and answers may be put on spans."""
    return _state.options.content


def options() -> TraceOptions:
    """What :func:`configure` was last given."""
    return _state.options


def metrics_registry() -> CollectorRegistry:
    """The OpenTelemetry metrics as a Prometheus registry (the local API's /metrics)."""
    return _state.registry


