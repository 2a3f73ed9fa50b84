"""The service's Prometheus metrics (``GET /metrics``), one registry per service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# The *_created series double the output and no dashboard needs them.
disable_created_metrics()

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters, histograms and gauges of one running service."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("docent_requests", "HTTP requests answered, by route and status.",
                                ["route", "status"], registry=r)
        self.latency = Histogram("docent_request_seconds", "Time to answer a request, by route.",
                                 ["route"], buckets=_LATENCY, registry=r)
        self.first_token = Histogram("docent_time_to_first_token_seconds",
                                     "From a generation request's arrival to its first token.",
                                     buckets=_LATENCY, registry=r)
        self.tokens_per_second = Histogram("docent_generation_tokens_per_second",
                                           "Tokens written per second, after the first, per request.",
                                           buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320), registry=r)
        self.generated = Counter("docent_generated_tokens", "Tokens the chat model wrote.", registry=r)
        self.queue_depth = Gauge("docent_queue_depth", "Generation requests waiting for the model.", registry=r)
        self.batch_size = Histogram("docent_embedding_batch_size", "Texts encoded per embedding batch.",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.embedded = Counter("docent_embedded_texts", "Texts embedded for API clients.", registry=r)
        self.rate_limited = Counter("docent_rate_limited_requests", "Requests refused by a key's rate limit.",
                                    ["key"], registry=r)
        self.rejected = Counter("docent_overloaded_requests",
                                "Requests told to retry because the model queue (or the searches and "
                                "embeddings in progress) was full.", registry=r)
        self.ready = Gauge("docent_ready", "1 once the models are loaded and requests are answered.", registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
