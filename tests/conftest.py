"""Shared fixtures: real models, temporary data folders, real documents."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.config import bundled_chat_model, bundled_embedding_model  # noqa: E402
from tests import corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shipped_onnx() -> Path:
    """The bundled model's int8 export where set-up puts it (and the installed
    app ships it): made here if set-up has not, so no library exports again."""
    from app.core.models.embedder import ship_onnx_int8
    from app.resources import resources_dir

    root = resources_dir() / "models" / "onnx-int8"
    ship_onnx_int8(bundled_embedding_model(), root)
    return root


@pytest.fixture(scope="session")
def embedder(shipped_onnx: Path, tmp_path_factory: pytest.TempPathFactory):
    """The bundled all-MiniLM-L6-v2 on the default backend (ONNX int8, from
    the shipped export), loaded once per test session."""
    from app.config import Settings
    from app.core.models.embedder import make_embedder

    return make_embedder(bundled_embedding_model(), backend=Settings().embedding_backend,
                         cache_root=tmp_path_factory.mktemp("onnx-cache"), shipped=[shipped_onnx])


@pytest.fixture(scope="session")
def torch_embedder():
    """The bundled all-MiniLM-L6-v2 on the full-precision torch backend, loaded once."""
    from app.core.models.embedder import SentenceEmbedder

    return SentenceEmbedder(bundled_embedding_model())


@pytest.fixture(scope="session")
def hf_tokenizer():
    """The bundled model's tokenizer as transformers loads it: an independent count of its tokens."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(bundled_embedding_model()), local_files_only=True)


@pytest.fixture(scope="session")
def chat_model():
    """The bundled SmolLM2-135M-Instruct GGUF, loaded once."""
    from app.core.models.llm import LocalModel

    return LocalModel(bundled_chat_model(), n_ctx=2048)


@pytest.fixture()
def docs(tmp_path: Path) -> dict[str, Path]:
    """A folder of real documents: PDF (4 pages), DOCX, Markdown, text, HTML."""
    return corpus.make_library(tmp_path / "docs")


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture()
def library(data_dir: Path, embedder, chat_model):
    """A writable library sharing the session's loaded models."""
    from app.core.library import Library

    lib = Library(data_dir, purpose="tests")
    lib.use_embedder(embedder)
    lib.use_model(chat_model)
    yield lib
    lib.close()


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture()
def docent(data_dir: Path) -> Callable[..., CliResult]:
    """Run the real ``docent`` executable against the test's data folder."""

    def run(*args: str, stdin: str | None = None, timeout: float = 300) -> CliResult:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "docent"), "--data-dir", str(data_dir), *args],
            input=stdin, capture_output=True, text=True, timeout=timeout,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
