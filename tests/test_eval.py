"""``docent eval``: a question set over real documents, scored through the app's own code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core import evaluate as ev
from app.errors import UsageError
from tests import corpus
from tools import readme as readme_tool


def write_set(folder: Path, docs: Path, lines: list[dict], readme: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "questions.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    if readme is not None:
        (folder / "README.md").write_text(readme, encoding="utf-8")
    return path


QUESTIONS = [
    {"id": "q1", "question": "How many storm warnings did the lighthouse keepers record during the winter?",
     "file": "reports/lighthouse-report.pdf", "pages": [3], "keywords": ["17"], "kind": "fact"},
    {"id": "q2", "question": "How long should sourdough prove in a cool kitchen?",
     "file": "notes/sourdough.md", "keywords": ["twelve"], "kind": "fact"},
    {"id": "q3", "question": "What tyre pressure does the touring bike use at the front?",
     "file": "notes/bicycle.txt", "keywords": ["4.5"], "kind": "fact"},
    {"id": "q4", "question": "Which opera did Verdi compose for the opening of the Suez canal?",
     "file": None, "keywords": [], "kind": "absent"},
]

README = """# a tiny set

The corpus is every file in these folders:

- `reports/`: 1 files
- `notes/`: 3 files
"""


@pytest.fixture()
def tiny_set(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    (docs / "reports").mkdir(parents=True)
    (docs / "notes").mkdir()
    (docs / "elsewhere").mkdir()
    corpus.make_pdf(docs / "reports" / "lighthouse-report.pdf")
    corpus.make_markdown(docs / "notes" / "sourdough.md")
    corpus.make_text(docs / "notes" / "bicycle.txt")
    corpus.make_html(docs / "notes" / "orchids.html")
    corpus.make_docx(docs / "elsewhere" / "beekeeping.docx")  # not in the README's folders
    questions = write_set(tmp_path / "set", docs, QUESTIONS, README)
    return questions, docs


def test_the_corpus_is_exactly_the_folders_the_readme_names(tiny_set) -> None:
    questions, docs = tiny_set
    found = ev.corpus_for(questions, docs)
    assert sorted(p.name for p in found.files) == ["bicycle.txt", "lighthouse-report.pdf", "orchids.html",
                                                   "sourdough.md"]
    # A folder that does not hold what the README promises is refused, by name.
    (docs / "notes" / "extra.txt").write_text("more", encoding="utf-8")
    with pytest.raises(UsageError, match=r"notes/ has 4 files, the README says 3"):
        ev.corpus_for(questions, docs)


def test_a_bad_question_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "x?", "kind": "fact", "file": "f.txt", "keywords": []}\n'
                    '{"id": "b", "question": "y?", "kind": "maybe"}\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"q.jsonl, line 2: .*kind"):
        ev.load_questions(path)


def test_docent_eval_scores_every_mode_and_writes_the_results(docent, tiny_set, tmp_path: Path) -> None:
    questions, docs = tiny_set
    readme = tmp_path / "README.md"
    readme.write_text("# Results\n\n<!-- eval:start -->\nSTALE TABLE\n<!-- eval:end -->\n\nafter\n", encoding="utf-8")
    out = tmp_path / "results.json"
    result = docent("eval", str(questions), "--docs", str(docs), "--out", str(out),
                    "--max-tokens", "32", "--work", str(tmp_path / "work"),
                    "--answer-modes", "vector,keyword,hybrid", timeout=900)
    assert result.code == 0, result.err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["corpus"]["files"] == 4 and data["questions"] == {"fact": 3, "absent": 1}
    assert [m["mode"] for m in data["modes"]] == ["vector", "keyword", "hybrid"]  # no reranker configured
    assert "skipping hybrid+reranker" in result.err
    for mode in data["modes"]:
        rows = {r["id"]: r for r in mode["per_question"]}
        ranks = [rows[q]["rank"] for q in ("q1", "q2", "q3")]
        # The summary is what the per-question outcomes add up to.
        assert mode["retrieval"]["recall_at_5"]["hits"] == sum(r is not None and r <= 5 for r in ranks)
        assert mode["retrieval"]["mrr_at_10"]["value"] == round(sum(1 / r for r in ranks if r) / 3, 3)
        assert mode["retrieval"]["page_recall_at_5"]["n"] == 1  # only q1 names pages
        answers = mode["answers"]
        assert answers["keyword_hit"]["hits"] == sum(rows[q]["keyword_hit"] for q in ("q1", "q2", "q3"))
        assert answers["decline_rate"]["n"] == 1
        assert answers["decline_rate"]["hits"] == int(rows["q4"]["declined"])
        # What the user reads under an answer (its supporting quote) can only add keyword hits.
        assert answers["keyword_hit_with_quote"]["hits"] >= answers["keyword_hit"]["hits"]
        assert answers["fact_answered"]["hits"] == 3 - answers["fact_declined"]["hits"]
        assert 0 <= answers["unsupported_sentences"]["hits"] <= answers["unsupported_sentences"]["n"]
    # This corpus is easy: every mode finds every answer's file first, and
    # keyword mode answers too (it once declined everything: no similarity).
    assert data["modes"][1]["answers"]["citation_correct"]["hits"] >= 2
    hybrid = data["modes"][2]
    assert hybrid["retrieval"]["recall_at_5"]["hits"] == 3 and hybrid["retrieval"]["mrr_at_10"]["value"] == 1.0
    assert hybrid["answers"]["decline_rate"]["hits"] == 1  # nothing about Verdi: declined
    # make eval then puts the results in the README with the dev tool.
    assert readme_tool.main(["eval", str(out), str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "STALE TABLE" not in text and text.endswith("after\n")
    assert "| hybrid | 100% (3/3) | 1.000 |" in text and "absent questions declined" in text
    assert "| hybrid | 100% (3/3) | 1.000 |" in result.out


def test_docent_eval_refuses_an_unknown_mode(docent, tiny_set) -> None:
    questions, docs = tiny_set
    result = docent("eval", str(questions), "--docs", str(docs), "--modes", "hybrid,psychic")
    assert result.code == 2 and "psychic" in result.err
