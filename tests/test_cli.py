"""The ``docent`` command line, as a new user (or a script) would run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.stores.lock import WriterLock


def test_the_new_user_story(docent, docs, data_dir) -> None:
    folder = docs["pdf"].parent

    ingest = docent("ingest", str(folder), "--json")
    assert ingest.code == 0, ingest.err
    report = ingest.json()
    assert report["indexed"] == 5 and report["failed"] == [] and report["chunks"] > 0
    assert set(report) == {"indexed", "unchanged", "removed", "failed", "skipped", "chunks"}

    search = docent("search", "how many storm warnings were recorded", "--json")
    assert search.code == 0, search.err
    hits = search.json()["hits"]
    assert hits[0]["path"] == str(docs["pdf"]) and hits[0]["page"] == 3
    # The contract's keys, plus each stage's score and the e-mail attachment a
    # passage is in (null here; the contract allows extra keys).
    assert set(hits[0]) == {"rank", "path", "page", "chunk_id", "score", "text",
                            "vector_score", "keyword_score", "rerank_score", "attachment", "part"}
    assert hits[0]["attachment"] is None and hits[0]["part"] is None
    assert hits[0]["rerank_score"] is None  # no reranker configured
    assert {"embed", "vector", "keyword"} <= set(search.json()["timings_ms"])

    ask = docent("ask", "How many storm warnings did the keepers record?", "--max-tokens", "60")
    assert ask.code == 0, ask.err
    assert "Sources:" in ask.out
    assert "lighthouse-report.pdf, page 3" in ask.out

    status = docent("status", "--json")
    assert status.code == 0
    counts = status.json()
    assert counts["files"]["indexed"] == 5 and counts["chunks"] == report["chunks"]

    again = docent("ingest", str(folder), "--json").json()
    assert (again["indexed"], again["unchanged"], again["removed"]) == (0, 5, 0)

    assert docent("audit", "verify").code == 0
    log = data_dir / "audit" / "audit.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("indexed", "indexeD", 1)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken = docent("audit", "verify")
    assert broken.code == 1
    assert "record 2" in broken.out


def test_ask_json_has_the_contract_shape(docent, docs) -> None:
    docent("ingest", str(docs["pdf"].parent))
    result = docent("ask", "What did the revenue grow to?", "--json", "--max-tokens", "40")
    assert result.code == 0, result.err
    data = result.json()
    assert set(data) == {"question", "answer", "declined", "sources", "citations", "model", "timings_ms",
                         "quotes", "unsupported", "wording_unsupported", "usage", "cached_from"}
    assert set(data["timings_ms"]) >= {"retrieve", "first_token", "total"}
    # What the model read and wrote, in its own tokens (the API's usage counts).
    assert data["usage"]["prompt_tokens"] > 50 and 1 <= data["usage"]["completion_tokens"] <= 40
    assert data["sources"] and {"n", "path", "page", "chunk_id", "score", "text"} <= set(data["sources"][0])
    for c in data["citations"]:
        assert {"n", "path", "page", "chunk_id", "text", "inferred"} <= set(c)
        start, end = c["span"]
        assert 0 <= start < end


def test_batch_mode_answers_one_json_line_per_input_line(docent, docs) -> None:
    docent("ingest", str(docs["pdf"].parent))
    out = docent("search", "-", "-k", "2", stdin="ferry revenue\n\norchid humidity\n")
    assert out.code == 0, out.err
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["query"] for r in rows] == ["ferry revenue", "orchid humidity"]
    assert rows[1]["hits"][0]["path"] == str(docs["html"])
    asked = docent("ask", "-", "--max-tokens", "20",
                   stdin="What is the boiling point of mercury in kelvin?\nWhen is swarm season?\n")
    answers = [json.loads(line) for line in asked.out.splitlines()]
    assert len(answers) == 2 and answers[0]["declined"] is True


def test_a_second_writer_is_refused_while_readers_keep_working(docent, docs, data_dir) -> None:
    assert docent("ingest", str(docs["pdf"].parent)).code == 0
    with WriterLock(data_dir, "docent watch"):
        refused = docent("ingest", str(docs["pdf"].parent))
        assert refused.code == 3
        assert "docent watch" in refused.err and "Traceback" not in refused.err
        assert docent("status", "--json").json()["files"]["indexed"] == 5
        keyword = docent("search", "ferry", "--mode", "keyword", "--json")
        assert keyword.code == 0 and keyword.json()["hits"]
        assert docent("audit", "verify").code == 0
        assert docent("ask", "What is in the report?").code == 3


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["search", "x", "--mode", "fuzzy"], 2, "invalid choice"),
        (["ingest", "/no/such/folder"], 2, "does not exist"),
        (["ask", "hello", "--model", "/no/such/model.gguf"], 2, "does not exist"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_mistakes_get_a_sentence_not_a_traceback(docent, args, code, words) -> None:
    result = docent(*args)
    assert result.code == code
    assert words in result.err
    assert "Traceback" not in result.err


def test_a_model_file_that_is_not_a_gguf_is_explained(docent, docs, tmp_path) -> None:
    docent("ingest", str(docs["pdf"].parent))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model")
    result = docent("ask", "What did the revenue grow to?", "--model", str(bogus))
    assert result.code == 1
    assert "bogus.gguf" in result.err and "Traceback" not in result.err


def test_audit_show_lists_records(docent, docs) -> None:
    docent("ingest", str(docs["md"]))
    shown = docent("audit", "show", "--json")
    records = shown.json()
    assert [r["event"] for r in records] == ["ingest"]
    assert records[0]["data"]["path"] == str(docs["md"])
