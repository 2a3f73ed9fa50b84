"""Passage location and query-word marking, shared by the window and the CLI (no Qt)."""

from __future__ import annotations

import pytest

from app.core import textnorm
from app.core.passages import highlight_terms, locate_passage, loose_text, pdf_search_candidates, query_terms


def test_loose_text_maps_every_character_back_to_the_original():
    text = "Feed the **Starter**,\nthen WAIT."
    loose, origin = loose_text(text)
    assert loose == "feed the starter then wait"
    assert len(origin) == len(loose)
    assert all(text[origin[i]].lower() == ch for i, ch in enumerate(loose) if ch != " ")


def test_locate_passage_trusts_a_span_that_still_fits_and_searches_otherwise():
    text = "Alpha note.\nRepeated sentence here.\nMiddle.\nRepeated sentence here.\nEnd.\n"
    second = text.rindex("Repeated")
    assert locate_passage(text, "Repeated sentence here.", (second, second + 23)) == (second, second + 23)
    # A stale span: the occurrence nearest to it is chosen.
    start, end = locate_passage(text, "Repeated sentence here.", (second + 3, second + 9))
    assert start == second and text[start:end] == "Repeated sentence here."
    assert locate_passage(text, "   ") is None


def test_locate_passage_finds_an_edited_passage_by_its_opening():
    text = "Intro.\n\nThe orchard was planted in spring with forty apple trees along the river bank, " \
           "then fenced.\n"
    passage = ("The orchard was planted in spring with forty apple trees along the river bank, "
               "then fenced against deer.")
    found = locate_passage(text, passage)
    assert found is not None and text[found[0]:].startswith("The orchard was planted")


def test_pdf_search_candidates_are_distinct_runs_of_words():
    words = " ".join(f"w{i:02d}" for i in range(20))
    candidates = pdf_search_candidates(words)
    assert candidates[0] == " ".join(f"w{i:02d}" for i in range(10))
    assert len(candidates) == len(set(candidates))
    assert pdf_search_candidates("tiny") == ["tiny"]


def test_query_terms_use_the_keyword_index_stopwords():
    terms = query_terms("What is the Lighthouse's budget for 2025, and who runs it?")
    assert terms == ["lighthouse", "budget", "runs"]
    assert not set(terms) & textnorm.STOPWORDS


@pytest.mark.parametrize("question, passage, marked", [
    # A Chinese word inside a sentence is found, as the keyword index finds it.
    ("数据库", "我们的数据库很快。", "数据库"),
    # A whole Japanese question: its bigrams are marked where the passage shares them.
    ("索引の作り方を教えてください", "全文索引は毎晩作り直す。", "索引"),
])
def test_cjk_query_words_are_marked_inside_unspaced_text(question, passage, marked):
    html = highlight_terms(passage, query_terms(question))
    assert f"<b>{marked}</b>" in html


def test_highlight_marks_word_starts_and_escapes_the_rest():
    html = highlight_terms("Keepers & <crew> logged storm warnings", ["keeper", "storm"])
    assert html == "<b>Keepers</b> &amp; &lt;crew&gt; logged <b>storm</b> warnings"
    assert highlight_terms("salt & pepper", ["amp"]) == "salt &amp; pepper"
    assert highlight_terms("a & b", []) == "a &amp; b"
