"""Docent's metric instruments: the GenAI conventions' and its own."""

from __future__ import annotations

from opentelemetry.metrics import Meter

from app.telemetry import names

# The GenAI conventions' advisory bucket boundaries.
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
_FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Instruments:
    """Every instrument Docent records to (see the README's "Observability").

    Attributes:
        token_usage: ``gen_ai.client.token.usage`` (tokens, by ``gen_ai.token.type``).
        time_to_first_token: ``gen_ai.server.time_to_first_token`` (s).
        time_per_output_token: ``gen_ai.server.time_per_output_token`` (s).
        operation_duration: ``gen_ai.client.operation.duration`` (s), by operation.
        retrieval: ``docent.retrieval.duration`` (s).
        ingest_chunks: ``docent.ingest.chunks`` (chunks stored; its rate is chunks per second).
        ingest_files: ``docent.ingest.files`` (files, by ``docent.outcome``: ok, failed, error).
        ingest_duration: ``docent.ingest.file.duration`` (s per file read, embedded and stored).
        queue_depth: ``docent.queue.depth`` (requests waiting, by ``docent.queue``).
        cache: ``docent.cache.requests`` (by ``docent.cache`` and ``docent.cache.hit``).
        requests: ``docent.api.requests`` (the local API's, by route and status).
    """

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            names.M_TOKEN_USAGE, "{token}", "Tokens read (input) and written (output) per model call.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self.time_to_first_token = meter.create_histogram(
            names.M_TTFT, "s", "From a question (or request) to the model's first token.",
            explicit_bucket_boundaries_advisory=_TTFT_BUCKETS)
        self.time_per_output_token = meter.create_histogram(
            names.M_TPOT, "s", "Time per token written, after the first.",
            explicit_bucket_boundaries_advisory=_TPOT_BUCKETS)
        self.operation_duration = meter.create_histogram(
            names.M_DURATION, "s", "Duration of a model operation (chat, embeddings, retrieval).",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.retrieval = meter.create_histogram(
            names.M_RETRIEVAL, "s", "Time to find a question's passages (embedding, search, fusion, reranking).",
            explicit_bucket_boundaries_advisory=_FAST_BUCKETS)
        self.ingest_chunks = meter.create_counter(names.M_INGEST_CHUNKS, "{chunk}", "Chunks indexed.")
        self.ingest_files = meter.create_counter(
            names.M_INGEST_FILES, "{file}", "Files read, by outcome (ok, failed: the file's problem, "
            "error: Docent's).")
        self.ingest_duration = meter.create_histogram(
            names.M_INGEST_DURATION, "s", "Time to read, embed and store one file.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.queue_depth = meter.create_up_down_counter(
            names.M_QUEUE, "{request}", "Work waiting (generation: API requests for the model).")
        self.cache = meter.create_counter(
            names.M_CACHE, "{request}", "Cache look-ups, by cache and hit (passage vectors reused on ingest, "
            "answers given before, query vectors).")
        self.requests = meter.create_counter(names.M_REQUESTS, "{request}", "Local API requests, by route and status.")
