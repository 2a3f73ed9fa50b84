"""Generation on an OpenAI-compatible inference server (a team's shared model).

The server is real: llama-cpp-python's own (``python -m llama_cpp.server``),
started here on the bundled GGUF, on a free loopback port. Docent retrieves,
prompts, guards, cites and audits as it does with the model in process; only
the completion runs there.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings, bundled_chat_model
from app.core.models.llm import Sampling
from app.core.models.remote_llm import RemoteModel, RenderedPrompt, check_url
from app.core.network import is_loopback_host
from app.errors import ModelError

#: What the server calls its model (``--model_alias``): the name answers and audit records carry.
SERVED = "smollm2-team"
#: How long the server may take to load the model and listen.
START_TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/models", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama-cpp-python server on the bundled model; its ``/v1`` base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_chat_model()),
             "--model_alias", SERVED, "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "4096", "--n_threads", "2"],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(url):
            # Bounded polling: each round waits on the process itself, so a
            # server that dies (a missing extra, a taken port) is seen at once.
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            else:
                pytest.fail(f"the llama-cpp-python server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the llama-cpp-python server did not listen within {START_TIMEOUT_S:.0f} s:\n"
                            f"{log.read_text()[-3000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture()
def remote_library(data_dir: Path, docs: dict[str, Path], embedder, server: str):
    """A writable library of the real documents that generates on ``server``."""
    from app.core.library import Library

    lib = Library(data_dir, settings=Settings(generation_url=server), purpose="tests")
    lib.use_embedder(embedder)
    lib.indexer.ingest([docs["pdf"].parent])
    yield lib
    lib.close()


# --- the address ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://127.9.0.1:8080/v1", "http://localhost:8080/v1",
                                 "https://[::1]:8443/v1/", "http://LOCALHOST.:1/v1"])
def test_loopback_addresses_are_accepted(url: str) -> None:
    assert check_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://10.1.2.3:8080/v1", "http://gpu-box.example:8080/v1",
                                 "http://[2001:db8::1]:8080/v1", "http://127.0.0.1.example.com/v1"])
def test_a_server_elsewhere_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ModelError, match="generation_allow_network") as refused:
        RemoteModel(url)
    assert url in str(refused.value)
    assert check_url(url, allow_network=True) == url
    assert not is_loopback_host(urllib.parse.urlsplit(url).hostname or "")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "127.0.0.1:8080/v1", "http:///v1"])
def test_an_address_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ModelError, match="not an http"):
        check_url(url)


def test_a_server_that_is_down_gets_a_sentence_naming_it(data_dir: Path) -> None:
    from app.core.library import Library

    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    with pytest.raises(ModelError, match="did not answer") as down:
        RemoteModel(url)
    message = str(down.value)
    assert url in message and "generation_url" in message
    # Through the library too: the answerer cannot be built, with the same sentence.
    lib = Library(data_dir, settings=Settings(generation_url=url), purpose="tests")
    try:
        with pytest.raises(ModelError, match="did not answer"):
            lib.model()
    finally:
        lib.close()


# --- the command line ------------------------------------------------------------


def test_generate_flags_set_this_runs_settings(tmp_path: Path) -> None:
    from app.cli.common import run_settings
    from app.cli.parser import build_parser

    for command in (["serve"], ["ask", "a question"]):
        args = build_parser().parse_args(["--data-dir", str(tmp_path), *command, "--generate",
                                          "http://10.0.0.5:8080/v1", "--generate-model", "qwen",
                                          "--generate-allow-network"])
        settings = run_settings(args)
        assert settings is not None
        assert (settings.generation_url, settings.generation_model, settings.generation_allow_network) == (
            "http://10.0.0.5:8080/v1", "qwen", True)
        assert not (tmp_path / "settings.json").exists(), "the saved settings are not changed"
    plain = build_parser().parse_args(["--data-dir", str(tmp_path), "serve"])
    assert run_settings(plain) is None


def test_changing_the_server_drops_the_model(data_dir: Path) -> None:
    from app.core.library import Library

    lib = Library(data_dir, purpose="tests")
    try:
        assert not lib.generates_remotely
        assert lib.apply_settings(Settings(generation_url="http://127.0.0.1:9/v1")), "a reload is needed"
        assert lib.generates_remotely
    finally:
        lib.close()


# --- a real server ----------------------------------------------------------------


@pytest.mark.slow
def test_the_remote_model_streams_and_counts_like_the_local_one(server: str, chat_model) -> None:
    model = RemoteModel(server)
    assert model.name == SERVED
    assert model.n_ctx == Settings().n_ctx  # llama-cpp-python does not report it: the settings' size
    messages = [{"role": "system", "content": "Answer in one sentence."},
                {"role": "user", "content": "What colour is a clear daytime sky?"}]
    prompt = model.render(messages)
    assert isinstance(prompt, RenderedPrompt) and prompt.messages == tuple(messages)
    # The server's tokenizer, not an estimate: the same counts as the model in process.
    assert model.count_tokens(prompt) == chat_model.count_tokens(chat_model.render(messages))
    assert model.count_tokens("Lighthouse keepers, naïve café") == chat_model.count_tokens(
        "Lighthouse keepers, naïve café")
    greedy = Sampling(max_tokens=24, temperature=0.0)
    pieces = list(model.stream(prompt, greedy))
    assert len(pieces) > 1, "the answer arrives piece by piece"
    assert model.finish_reason in ("stop", "length")
    # The server applies the same chat template to the messages: greedy decoding agrees.
    assert "".join(pieces) == "".join(chat_model.stream(chat_model.render(messages), greedy))
    # A plain string is completed as it is (the local API's /v1/completions).
    text = "".join(model.stream("The three primary colours are", Sampling(max_tokens=8, temperature=0.0)))
    assert text.strip() and model.finish_reason == "length"


@pytest.mark.slow
def test_a_question_is_answered_cited_and_audited_with_the_served_model(remote_library, docs) -> None:
    lib = remote_library
    pieces: list[str] = []
    answer = lib.answerer.ask("How many storm warnings did the lighthouse keepers record?",
                              sampling=Sampling(max_tokens=60, temperature=0.0), on_token=pieces.append)
    assert len(pieces) > 1, "the answer streams token by token"
    assert not answer.declined and answer.citations
    cited = {(Path(c.source.hit.chunk.path), c.source.hit.chunk.page) for c in answer.citations}
    assert (docs["pdf"], 3) in cited
    assert answer.to_json()["model"] == SERVED
    assert answer.usage["prompt_tokens"] > 0 and answer.usage["completion_tokens"] > 0
    done = lib.audit.records()[-1]
    assert done["event"] == "answer" and done["data"]["model"] == SERVED
    assert lib.audit.verify().ok
    # The answer cache tells this server's answers from the local model's.
    salt = lib.cache_salt()
    assert salt["generation_url"] == lib.settings.generation_url and salt["generation_model"] == SERVED
    assert "model_file" not in salt


@pytest.mark.slow
def test_stop_cancels_mid_stream_and_the_next_question_is_answered(remote_library) -> None:
    lib = remote_library
    pieces: list[str] = []
    stopped = lib.answerer.ask("Describe the cooperative's finances and outlook in detail.",
                               sampling=Sampling(max_tokens=200), on_token=pieces.append,
                               should_stop=lambda: len(pieces) >= 3)
    assert stopped.stopped
    assert len(pieces) <= 4, "Stop takes effect within a piece"
    assert lib.model().finish_reason == "cancelled"
    again = lib.answerer.ask("What does the outlook plan to open?", sampling=Sampling(max_tokens=30))
    assert again.answer and not again.stopped


@pytest.mark.slow
def test_docent_ask_generates_on_the_server(remote_library, docent, server: str) -> None:
    remote_library.close()  # the command takes the data folder's lock
    result = docent("ask", "How many storm warnings did the keepers record?", "--json", "--max-tokens", "40",
                    "--generate", server)
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["model"] == SERVED and answer["citations"]
    refused = docent("ask", "Anything?", "--generate", "http://10.9.8.7:8080/v1")
    assert refused.code != 0 and "http://10.9.8.7:8080/v1" in refused.err
