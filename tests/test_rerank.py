"""The reranker stage: a real cross-encoder reorders the search's best candidates,
and its scores reach the JSON output and the audit record.

The cross-encoder is built here, once per session, from the bundled MiniLM
weights with a one-label scoring head (sentence-transformers' own
``CrossEncoder``, saved with ``.save()``): an untrained head, so its order is
not a better one, but it is a real model whose order the tests can check
against an independent ``CrossEncoder.predict``.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest

from app import cli
from app.config import Settings, bundled_embedding_model
from app.core.library import Library
from app.core.answering.rerank import Reranker, reranker_problem
from app.core.answering.retrieval import Retriever
from app.errors import RerankerError

QUESTION = "How many storm warnings did the keepers record?"


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cross-encoder folder: MiniLM with a fresh one-score head."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(7)
    model = CrossEncoder(str(bundled_embedding_model()), num_labels=1, local_files_only=True)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("classifier.weight"):
                # The fresh head's scores differ in the third decimal; spread
                # them so the order is not decided by rounding between runs.
                param.mul_(40.0)
    folder = tmp_path_factory.mktemp("models") / "minilm-cross-encoder"
    model.save(str(folder))
    return folder


@pytest.fixture(scope="session")
def independent(cross_encoder_dir: Path):
    """The same folder loaded by sentence-transformers directly, apart from Docent."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(cross_encoder_dir), local_files_only=True)


@pytest.fixture(scope="session")
def rerank_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Docent's model cache for reranker exports (one per session)."""
    return tmp_path_factory.mktemp("rerank-onnx")


@pytest.fixture(scope="session")
def reranker(cross_encoder_dir: Path, rerank_cache: Path) -> Reranker:
    """Docent's reranker on that folder (exported to ONNX here, once), loaded once."""
    rr = Reranker(cross_encoder_dir, cache_root=rerank_cache)
    rr.load()
    return rr


@pytest.fixture()
def indexed(library, docs):
    library.indexer.ingest([docs["pdf"].parent])
    return library


def _ids(hits) -> list[str]:
    return [h.chunk.id for h in hits]


def test_without_a_reranker_the_results_are_plain_hybrid(indexed, reranker) -> None:
    assert indexed.settings.reranker_path is None and indexed.reranker is None
    plain = Retriever(indexed.catalog, indexed.vectors, indexed.embedder)
    with_reranker = Retriever(indexed.catalog, indexed.vectors, indexed.embedder, reranker=reranker)
    for mode in ("hybrid", "vector", "keyword"):
        expected = plain.search(QUESTION, k=5, mode=mode)
        for result in (indexed.retriever.search(QUESTION, k=5, mode=mode),
                       with_reranker.search(QUESTION, k=5, mode=mode, rerank=False)):
            assert _ids(result.hits) == _ids(expected.hits), mode
            assert [h.score for h in result.hits] == [h.score for h in expected.hits]
            assert all(h.rerank_score is None for h in result.hits)
            assert "rerank" in result.timings_ms and result.timings_ms["rerank"] is None


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_reranked_hits_follow_an_independent_cross_encoder(indexed, reranker, independent, mode) -> None:
    retriever = Retriever(indexed.catalog, indexed.vectors, indexed.embedder,
                          reranker=reranker, rerank_candidates=20)
    # The corpus has fewer than 20 chunks: the candidate pool is every hit of a deep plain search.
    pool = retriever.search(QUESTION, k=20, mode=mode, rerank=False).hits
    assert len(pool) >= 2  # keyword mode finds only the passages sharing words with the question
    k = min(5, len(pool) - 1)  # so that reranking can bring a passage in from below the cut
    scores = independent.predict([(QUESTION, h.chunk.text) for h in pool])
    by_id = {h.chunk.id: float(s) for h, s in zip(pool, scores)}
    expected = sorted(by_id, key=by_id.get, reverse=True)[:k]

    result = retriever.search(QUESTION, k=k, mode=mode)
    hits = result.hits
    assert _ids(hits) == expected
    for hit in hits:
        assert hit.rerank_score == pytest.approx(by_id[hit.chunk.id], abs=1e-4)
        assert hit.score == hit.rerank_score  # the order shown is the reranker's
    assert [h.rank for h in hits] == list(range(1, k + 1))
    assert result.timings_ms["rerank"] is not None and result.timings_ms["rerank"] >= 0
    # Relevance decisions still use the cosine similarity, untouched by reranking.
    plain = {h.chunk.id: h for h in pool}
    if mode != "keyword":
        assert all(h.similarity == pytest.approx(plain[h.chunk.id].similarity) for h in hits)
    json_hit = result.to_json()["hits"][0]
    assert json_hit["rerank_score"] == pytest.approx(hits[0].rerank_score, abs=1e-6)
    assert {"rank", "path", "page", "chunk_id", "score", "text"} <= set(json_hit)


def test_rerank_keeps_the_hits_past_top_n_in_their_order(indexed, reranker) -> None:
    hits = indexed.retriever.search(QUESTION, k=6).hits
    before = _ids(hits)
    out = reranker.rerank(QUESTION, hits, top_n=3)
    assert sorted(_ids(out[:3])) == sorted(before[:3]) and _ids(out[3:]) == before[3:]
    assert all(h.rerank_score is not None for h in out[:3]) and all(h.rerank_score is None for h in out[3:])
    assert [h.rerank_score for h in out[:3]] == sorted((h.rerank_score for h in out[:3]), reverse=True)


@pytest.mark.parametrize("kind", ["missing", "file", "embedding model", "no config"])
def test_a_folder_without_a_cross_encoder_is_explained(tmp_path: Path, kind: str) -> None:
    folder = {
        "missing": tmp_path / "nowhere",
        "file": tmp_path / "model.bin",
        "embedding model": bundled_embedding_model(),
        "no config": tmp_path / "empty",
    }[kind]
    if kind == "file":
        folder.write_bytes(b"not a model")
    if kind == "no config":
        folder.mkdir()
    with pytest.raises(RerankerError) as err:
        Reranker(folder)
    message = str(err.value)
    assert str(folder) in message
    assert "Settings → Answers → Reranker" in message and "CrossEncoder" in message
    if kind == "embedding model":
        assert "embedding model" in message
    assert reranker_problem(folder) == message


def test_a_bad_reranker_setting_stops_search_with_that_message(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "no-such-model"
    with Library(data_dir, settings=Settings(reranker_path=str(bad)), purpose="tests") as lib:
        with pytest.raises(RerankerError, match="no-such-model"):
            lib.retriever  # noqa: B018


def test_changing_the_setting_rebuilds_the_reranker(library, cross_encoder_dir: Path) -> None:
    assert library.retriever.reranker is None
    library.apply_settings(dataclasses.replace(library.settings, reranker_path=str(cross_encoder_dir),
                                               rerank_candidates=12))
    assert library.retriever.reranker is not None
    assert library.retriever.reranker.folder == cross_encoder_dir
    assert library.retriever.rerank_candidates == 12
    assert library.answerer.retriever is library.retriever
    library.apply_settings(dataclasses.replace(library.settings, reranker_path=None))
    assert library.retriever.reranker is None


def test_the_answer_audit_record_carries_the_rerank_scores(indexed, reranker, cross_encoder_dir) -> None:
    indexed.apply_settings(dataclasses.replace(indexed.settings, reranker_path=str(cross_encoder_dir)))
    indexed.use_reranker(reranker)
    answer = indexed.answerer.ask(QUESTION, k=3, sampling=indexed.sampling(24))
    record = [r for r in indexed.audit.records() if r["event"] == "answer"][-1]["data"]
    retrieved = record["retrieved"]
    assert [r["chunk_id"] for r in retrieved] == _ids(answer.retrieved)
    assert all(r["rerank_score"] is not None for r in retrieved)
    assert [r["rerank_score"] for r in retrieved] == [h.rerank_score for h in answer.retrieved]
    assert [r["score"] for r in retrieved] == [r["rerank_score"] for r in retrieved]


def _cli(data_dir: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.run(["--data-dir", str(data_dir), *args], out=out)
    return code, out.getvalue()


def test_search_and_ask_json_show_rerank_scores(
    data_dir: Path, docs, embedder, cross_encoder_dir: Path, docent
) -> None:
    with Library(data_dir, purpose="tests") as lib:
        lib.use_embedder(embedder)
        lib.indexer.ingest([docs["pdf"].parent])
        lib.apply_settings(dataclasses.replace(lib.settings, reranker_path=str(cross_encoder_dir)))

    # The real executable, as a script would run it.
    search = docent("search", QUESTION, "-k", "3", "--json")
    assert search.code == 0, search.err
    data = search.json()
    assert set(data) == {"query", "mode", "hits", "timings_ms"}
    assert data["timings_ms"]["rerank"] is not None
    hits = data["hits"]
    assert len(hits) == 3 and all(h["rerank_score"] is not None for h in hits)
    assert [h["score"] for h in hits] == [h["rerank_score"] for h in hits]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    code, out = _cli(data_dir, "search", QUESTION, "-k", "3", "--json", "--no-rerank")
    plain = json.loads(out)
    assert code == 0 and plain["timings_ms"]["rerank"] is None
    assert all(h["rerank_score"] is None for h in plain["hits"])

    code, out = _cli(data_dir, "ask", QUESTION, "-k", "3", "--json", "--max-tokens", "24")
    assert code == 0
    asked = json.loads(out)
    assert set(asked) >= {"question", "answer", "declined", "sources", "citations", "model", "timings_ms"}
    code, out = _cli(data_dir, "audit", "show", "--json")
    answer_record = [r for r in json.loads(out) if r["event"] == "answer"][-1]["data"]
    rerank_by_id = {r["chunk_id"]: r["rerank_score"] for r in answer_record["retrieved"]}
    assert all(v is not None for v in rerank_by_id.values())
    # The sources' scores in `ask --json` are the reranker's.
    for source in asked["sources"]:
        assert source["score"] == pytest.approx(rerank_by_id[source["chunk_id"]], abs=1e-6)

    code, out = _cli(data_dir, "ask", QUESTION, "-k", "3", "--json", "--max-tokens", "8", "--no-rerank")
    assert code == 0
    code, out = _cli(data_dir, "audit", "show", "--json")
    answer_record = [r for r in json.loads(out) if r["event"] == "answer"][-1]["data"]
    assert all(r["rerank_score"] is None for r in answer_record["retrieved"])


def test_a_bad_reranker_folder_is_a_sentence_on_the_command_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir(parents=True)
    Settings(reranker_path=str(tmp_path / "gone")).save(data_dir / "settings.json")
    code, _out = _cli(data_dir, "search", "anything", "--mode", "keyword")
    assert code == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "gone") in err and "Settings → Answers → Reranker" in err
    assert "Traceback" not in err
    code, _out = _cli(data_dir, "search", "anything", "--mode", "keyword", "--no-rerank")
    assert code == 0


def test_without_torch_a_folder_without_an_onnx_export_is_refused_with_the_reason(
        cross_encoder_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """The installed app leaves torch out, which makes the ONNX export: Settings (and a
    search) say why there is no reranking instead of failing later."""
    import app.core.answering.rerank as rerank

    monkeypatch.setattr(rerank, "torch_available", lambda: False)
    problem = reranker_problem(cross_encoder_dir, tmp_path / "empty-cache")
    assert problem is not None and "onnx/model.onnx" in problem and "PyTorch" in problem
    assert "without reranking" in problem
    with pytest.raises(RerankerError, match="onnx/model.onnx"):
        Reranker(cross_encoder_dir, cache_root=tmp_path / "empty-cache")


def test_the_reranker_runs_on_onnx_and_scores_as_the_torch_model_does(
        reranker, cross_encoder_dir: Path, independent) -> None:
    assert reranker.backend == "onnx"
    texts = ["The keepers recorded 17 storm warnings.", "Bake the loaf at 240 degrees.", "Bees swarm in May."]
    expected = independent.predict([(QUESTION, t) for t in texts])
    assert reranker.score(QUESTION, texts) == pytest.approx([float(x) for x in expected], abs=1e-5)
    torch_backend = Reranker(cross_encoder_dir, backend="torch")  # still selectable
    assert torch_backend.score(QUESTION, texts) == pytest.approx([float(x) for x in expected], abs=1e-6)


def test_a_published_onnx_export_reranks_with_torch_unimportable(
        reranker, cross_encoder_dir: Path, independent, tmp_path: Path) -> None:
    """A cross-encoder folder that ships onnx/model.onnx (Hugging Face's layout) is run as it
    is, in a process where importing torch fails: the installed app's situation."""
    import shutil
    import subprocess
    import sys

    published = tmp_path / "published-cross-encoder"
    shutil.copytree(cross_encoder_dir, published)
    (published / "onnx").mkdir()
    shutil.copy(reranker._model.model_file, published / "onnx" / "model.onnx")
    (published / "model.safetensors").unlink()  # nothing for torch to load, were it there
    texts = ["The keepers recorded 17 storm warnings.", "Bees swarm in May."]
    script = (
        "import json, sys\n"
        "sys.modules['torch'] = None  # import torch now raises ImportError\n"
        "from app.core.answering.rerank import Reranker\n"
        f"rr = Reranker({str(published)!r})\n"
        f"print(json.dumps(rr.score({QUESTION!r}, {texts!r})))\n"
        "assert 'sentence_transformers' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    expected = independent.predict([(QUESTION, t) for t in texts])
    assert scores == pytest.approx([float(x) for x in expected], abs=1e-5)
