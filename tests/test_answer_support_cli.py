"""``docent ask`` shows what backs an answer: the cited passage's own sentence
under the answer, and for a decline what was searched and the nearest passages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli import run
from tests import corpus


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """``docent`` run in this process against one data folder holding the test corpus."""
    root = tmp_path_factory.mktemp("support-cli")
    docs = corpus.make_library(root / "docs")
    data = root / "data"

    def docent(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = run(["--data-dir", str(data), *args], out)
        return code, out.getvalue()

    code, _ = docent("ingest", str(docs["pdf"].parent))
    assert code == 0
    return docent, docs


def test_ask_prints_the_supporting_quote_under_the_answer(cli) -> None:
    docent, docs = cli
    code, out = docent("ask", "How many storm warnings did the lighthouse keepers record?",
                       "--max-tokens", "60", "--temperature", "0")
    assert code == 0
    quote = next(line for line in out.splitlines() if line.startswith("Quote ["))
    assert quote.startswith("Quote [") and "lighthouse-report.pdf p. 3: “" in quote
    assert "17 storm warnings" in quote and quote.endswith("”")
    assert out.index(quote) < out.index("Sources:"), "the quote comes before the list of sources"


def test_ask_json_of_a_declined_question_says_what_was_searched_and_what_came_nearest(cli) -> None:
    docent, _ = cli
    question = "What is the boiling point of mercury in kelvin?"
    code, out = docent("ask", question, "--json", "--max-tokens", "40")
    assert code == 0
    data = json.loads(out)
    assert data["declined"] is True
    searched = data["searched"]
    assert (searched["query"], searched["mode"], searched["scope"]) == (question, "hybrid", None)
    assert 1 <= len(data["nearest"]) <= 3
    for hit in data["nearest"]:
        assert Path(hit["path"]).is_file() and hit["text"]
    assert data["quotes"] == [] and data["unsupported"] == [] and data["wording_unsupported"] is False

    code, text = docent("ask", question, "--max-tokens", "40")
    assert code == 0
    assert f"Searched for “{question}”" in text
    nearest = text.split("Nearest passages found:\n", 1)[1].splitlines()
    first = Path(data["nearest"][0]["path"]).name
    assert nearest[0].strip().startswith(first), "the nearest passage is named by its file"
