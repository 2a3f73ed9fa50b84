"""Attribute and metric names: the OpenTelemetry GenAI and HTTP semantic
conventions where they exist, ``docent.*`` for the rest (one place, so the
instrumentation, the activity store and the tests agree)."""

from __future__ import annotations

# GenAI semantic conventions (gen_ai.*).
OPERATION = "gen_ai.operation.name"  # chat | embeddings | retrieval | text_completion
SYSTEM = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
TEMPERATURE = "gen_ai.request.temperature"
TOP_P = "gen_ai.request.top_p"
TOP_K = "gen_ai.request.top_k"
MAX_TOKENS = "gen_ai.request.max_tokens"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TOKEN_TYPE = "gen_ai.token.type"  # input | output (on gen_ai.client.token.usage)
DATA_SOURCE = "gen_ai.data_source.id"
# Content: only when the user turns it on (see setup.record_content).
PROMPT = "gen_ai.prompt"
QUESTION = "docent.question"
COMPLETION = "gen_ai.completion"

# HTTP semantic conventions (the local service's server spans).
HTTP_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_STATUS = "http.response.status_code"
URL_PATH = "url.path"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
CLIENT_ADDRESS = "client.address"
ERROR_TYPE = "error.type"

# Docent's own.
#: Marks a span the activity store lists as one operation: answer | search |
#: index | request | embed. Its summary attributes below feed the charts.
KIND = "docent.operation"
LABEL = "docent.label"  # a short name for the operation (a file's name, a route); never content
TTFT_MS = "docent.time_to_first_token_ms"
TOKENS_PER_S = "docent.tokens_per_second"
RETRIEVAL_MS = "docent.retrieval_ms"
CHUNKS = "docent.chunks"
PAGES = "docent.pages"
OUTCOME = "docent.outcome"  # ok | failed (a file the user must fix) | error (Docent's fault) | declined | stopped | 5xx
CLIENT = "docent.client"  # the API key's name
MODE = "docent.search.mode"
K = "docent.search.k"
HITS = "docent.search.hits"
SOURCES = "docent.answer.sources"
REUSED = "docent.embeddings.reused"
CACHE = "docent.cache"  # which cache: passage_vectors | query_embedding | answer
#: Whether a look-up found its entry; on an answer span, whether the answer
#: came from the answer cache (absent when the cache was not consulted).
CACHE_HIT = "docent.cache.hit"
CACHE_STORED = "docent.cache.stored"

# Metric names.
M_TOKEN_USAGE = "gen_ai.client.token.usage"
M_TTFT = "gen_ai.server.time_to_first_token"
M_TPOT = "gen_ai.server.time_per_output_token"
M_DURATION = "gen_ai.client.operation.duration"
M_RETRIEVAL = "docent.retrieval.duration"
M_INGEST_CHUNKS = "docent.ingest.chunks"
M_INGEST_FILES = "docent.ingest.files"
M_INGEST_DURATION = "docent.ingest.file.duration"
M_QUEUE = "docent.queue.depth"
M_CACHE = "docent.cache.requests"
M_REQUESTS = "docent.api.requests"
