"""Whole-document questions: detected by name, answered by map-reduce over the
named file's chunks, with progress, Stop and citations that resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.answering import mapreduce, wholedoc
from app.core.stores.catalog import Catalog
from app.core.models.llm import Sampling
from tests import corpus

QUESTIONS = corpus.eval_set("pydocs") / "questions.jsonl"


def tutorial_pages(pages: int, words: int = 160) -> list[str]:
    """Real prose for a multi-page PDF: ``tests/data/appetite.txt``, the
    opening of a programming tutorial (shipped with the tests)."""
    text = corpus.DATA.joinpath("appetite.txt").read_text(encoding="utf-8")
    # The PDF's core font is Latin-1 only.
    words_list = text.encode("latin-1", "replace").decode("latin-1").split()
    assert len(words_list) >= pages * words, "enough real text for the pages"
    return [" ".join(words_list[i * words:(i + 1) * words]) for i in range(pages)]


# --- detection ---------------------------------------------------------------


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    """A real catalog whose indexed files are named like the Python docs, plus a few."""
    cat = Catalog(tmp_path / "catalog.sqlite3")
    root = cat.add_root("/home/ada/docs")
    names = {json.loads(line).get("file") or "tutorial/index.html"
             for line in QUESTIONS.read_text().splitlines() if line.strip()} \
        if QUESTIONS.is_file() else set()
    names |= {"reports/report.pdf", "reports/Annual Review 2025.pdf", "notes/minutes.md",
              "notes/plan.md", "a/budget.xlsx.txt", "b/budget.xlsx.txt", "tutorial/appetite.html"}
    for name in sorted(names):
        cat.mark_file(f"/home/ada/docs/{name}", "indexed", root_id=root.id)
    cat.mark_file("/home/ada/docs/reports/broken.pdf", "failed", root_id=root.id, reason="bad")
    yield cat
    cat.close()


def test_summaries_name_a_file_by_name_or_stem_in_any_case(catalog) -> None:
    for q in ("Summarise report.pdf", "summarize REPORT", "Please summarize the report.pdf file.",
              "Give me a short summary of report.pdf", "Overview of report", "What is report.pdf about?",
              "Can you sum up `report.pdf`?"):
        task = wholedoc.detect(q, catalog)
        assert task is not None, q
        assert task.kind == "summary" and task.files == ("/home/ada/docs/reports/report.pdf",), q
        assert task.label == "report.pdf"
    task = wholedoc.detect("summarise annual review 2025", catalog)
    assert task and task.files == ("/home/ada/docs/reports/Annual Review 2025.pdf",)


def test_this_file_and_this_folder_use_the_chats_scope(catalog) -> None:
    plan = "/home/ada/docs/notes/plan.md"
    task = wholedoc.detect("Summarize this file", catalog, scope=plan)
    assert task and task.files == (plan,)
    task = wholedoc.detect("summarise this folder", catalog, scope=plan)
    assert task and task.files == ("/home/ada/docs/notes/minutes.md", plan) and task.label == "notes"
    task = wholedoc.detect("List all decisions in this folder", catalog, scope="/home/ada/docs/notes")
    assert task and task.kind == "list" and task.topic == "decisions" and len(task.files) == 2
    assert wholedoc.detect("Summarize this file", catalog) is None, "no scope: nothing is 'this file'"
    # "List every X" without "in …" means the chat's scope, when there is one.
    task = wholedoc.detect("list every action item", catalog, scope=plan)
    assert task and task.files == (plan,) and task.topic == "action item"
    assert wholedoc.detect("list every action item", catalog) is None


def test_compare_and_list_name_files_folders_and_everything(catalog) -> None:
    task = wholedoc.detect("Compare minutes.md and plan", catalog)
    assert task and task.kind == "compare"
    assert task.files == ("/home/ada/docs/notes/minutes.md", "/home/ada/docs/notes/plan.md")
    assert task.label == "minutes.md and plan.md"
    task = wholedoc.detect("list every date mentioned in report.pdf", catalog)
    assert task and task.kind == "list" and task.topic == "date" and task.files[0].endswith("report.pdf")
    task = wholedoc.detect("Find all the deadlines in the notes folder", catalog)
    assert task and task.topic == "deadlines" and task.label == "notes" and len(task.files) == 2
    task = wholedoc.detect("list all people in my documents", catalog)
    assert task and len(task.files) == len(catalog.files(status="indexed")), "failed files are not read"
    # The first "in" that leads to a file wins; earlier ones belong to the topic.
    task = wholedoc.detect("list every step in the process in plan.md", catalog)
    assert task and task.topic == "step in the process" and task.files[0].endswith("plan.md")


def test_unknown_and_ambiguous_names(catalog) -> None:
    # Unknown: the ordinary path answers.
    for q in ("Summarise the french revolution", "What is the GIL about?", "compare lists and tuples",
              "Compare report.pdf and nothing.md", "summarize broken.pdf", "What are all the ways to format strings?"):
        assert wholedoc.detect(q, catalog, scope="/home/ada/docs/notes") is None, q
    assert wholedoc.detect("list all methods of list objects", catalog) is None
    # Ambiguous: a task with the candidates and no files; its answer asks which.
    task = wholedoc.detect("summarise budget.xlsx", catalog)
    assert task and task.files == () and len(task.candidates) == 2
    task = wholedoc.detect("summarise a/budget.xlsx.txt", catalog)
    assert task and task.files == ("/home/ada/docs/a/budget.xlsx.txt",), "a folder part tells them apart"


@pytest.mark.skipif(not QUESTIONS.is_file(), reason="the shared eval set is not here")
def test_ordinary_questions_are_never_whole_document(catalog) -> None:
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    assert len(questions) >= 50
    for q in questions:
        assert wholedoc.detect(q, catalog) is None, q
        assert wholedoc.detect(q, catalog, scope="/home/ada/docs/tutorial") is None, q
    for q in ("What did the revenue grow to?", "How many storm warnings were recorded?",
              "When is swarm season for bees?", "What does the report say about safety?",
              "Which file mentions the ferry?", "summary statistics in pandas?"):
        assert wholedoc.detect(q, catalog) is None, q


def test_progress_text_counts_and_estimates() -> None:
    assert wholedoc.progress_text("report.pdf", 0, 12, 0.0) == "Reading report.pdf: 0 of 12 parts"
    assert wholedoc.progress_text("report.pdf", 3, 12, 13.5) == "Reading report.pdf: 3 of 12 parts, about 40 s left"
    assert wholedoc.progress_text("a.md", 2, 40, 30) == "Reading a.md: 2 of 40 parts, about 10 min left"


# --- map-reduce with the real model ------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    """The bundled model with a small context, so a short document needs a few batches."""
    from app.config import bundled_chat_model
    from app.core.models.llm import LocalModel

    return LocalModel(bundled_chat_model(), n_ctx=512)


@pytest.fixture()
def tutorial(library, docs, small_model, tmp_path):
    """The corpus library plus a 4-page PDF of the Python tutorial's first chapter."""
    pdf = corpus.make_pdf(docs["pdf"].parent / "appetite.pdf", tutorial_pages(4))
    library.indexer.ingest([docs["pdf"].parent])
    library.use_model(small_model)
    return library, pdf


SAMPLING = Sampling(max_tokens=40, temperature=0.0)


def test_a_summary_reads_the_whole_file_and_cites_only_its_chunks(tutorial) -> None:
    library, pdf = tutorial
    steps: list[tuple[int, int]] = []
    tokens: list[str] = []
    answer = library.answerer.ask("Summarise appetite.pdf", sampling=SAMPLING,
                                  on_token=tokens.append, on_progress=lambda d, t: steps.append((d, t)))
    total = steps[-1][1]
    assert steps[0] == (0, total) and steps[-1] == (total, total), steps
    assert total >= 3, "several map batches and a reduce step"
    assert [d for d, _ in steps] == sorted(d for d, _ in steps), "progress only goes forward"
    assert not answer.stopped and answer.answer and tokens
    assert answer.sources and answer.citations
    assert {s.hit.chunk.path for s in answer.sources} == {str(pdf)}, "only the named file's chunks"
    assert all(s.hit.chunk.page in (1, 2, 3, 4) for s in answer.sources)
    numbers = {s.n for s in answer.sources}
    assert numbers == set(range(1, len(answer.sources) + 1))
    assert all(c.n in numbers and c.source.hit.chunk.path == str(pdf) for c in answer.citations)
    data = answer.to_json()
    assert {"question", "answer", "declined", "sources", "citations", "model", "timings_ms"} <= set(data)
    assert set(data["timings_ms"]) == {"retrieve", "first_token", "total"}
    chunk_ids = set(library.catalog.chunk_ids(library.catalog.file(str(pdf)).id))
    assert {c["chunk_id"] for c in data["citations"]} <= chunk_ids

    ask, done = library.audit.records()[-2:]
    assert ask["event"] == "ask" and ask["data"]["whole_document"]["files"] == [str(pdf)]
    note = done["data"]["whole_document"]
    assert note["files"] == [str(pdf)] and note["batches"] == total - 1 == note["batches_in_files"]
    assert len(note["prompt_hashes"]) == total and done["data"]["prompt_hash"] == note["prompt_hashes"][-1]
    assert done["data"]["sources"] == [s.hit.chunk.id for s in answer.sources]
    assert library.audit.verify().ok


def test_stop_after_the_first_batch_returns_what_was_read(tutorial) -> None:
    library, pdf = tutorial
    steps: list[tuple[int, int]] = []
    answer = library.answerer.ask(
        "summarize appetite", sampling=SAMPLING, on_progress=lambda d, t: steps.append((d, t)),
        should_stop=lambda: any(d >= 1 for d, _ in steps),
    )
    assert answer.stopped
    assert steps[-1][0] == 1 < steps[-1][1], "stopped after the first of several parts"
    assert "Stopped after reading 1 of" in answer.answer
    assert any("stopped after reading 1 of" in f for f in answer.flags)
    assert all(s.hit.chunk.path == str(pdf) for s in answer.sources)
    assert library.audit.records()[-1]["data"]["whole_document"]["batches"] == 1
    again = library.answerer.ask("What did the revenue grow to?", sampling=SAMPLING)
    assert again.answer, "the library keeps answering"


def test_stop_takes_effect_within_a_token(tutorial) -> None:
    library, _ = tutorial
    task = wholedoc.detect("summarise appetite.pdf", library.catalog)
    pieces: list[str] = []
    generated = {"n": 0}
    model = library.model()
    real = model.stream

    def counting(prompt, sampling, **kw):  # noqa: ANN001, ANN202
        for piece in real(prompt, sampling, **kw):
            generated["n"] += 1
            yield piece

    model.stream = counting  # type: ignore[method-assign]
    try:
        answer = mapreduce.map_reduce(task, model, library.catalog, model_name="m", sampling=SAMPLING,
                                     on_token=pieces.append, should_stop=lambda: generated["n"] >= 3)
    finally:
        del model.stream
    assert answer.stopped and generated["n"] <= 4


def test_a_long_file_is_sampled_and_the_answer_says_so(tutorial) -> None:
    library, pdf = tutorial
    task = wholedoc.detect("summarise appetite.pdf", library.catalog)
    steps: list[tuple[int, int]] = []
    trace: dict = {}
    answer = mapreduce.map_reduce(task, library.model(), library.catalog, model_name="m", sampling=SAMPLING,
                                 on_progress=lambda d, t: steps.append((d, t)), max_batches=2, trace=trace)
    assert trace["batches"] > 2 and trace["read_batches"] == 2
    assert steps[-1] == (3, 3), "two map batches and the reduce"
    assert any(f"read 2 of its {trace['batches']} parts" in f for f in answer.flags)
    assert all(s.hit.chunk.path == str(pdf) for s in answer.sources)


def test_an_ambiguous_name_lists_the_candidates(library, docs, tmp_path) -> None:
    (docs["pdf"].parent / "a").mkdir()
    (docs["pdf"].parent / "b").mkdir()
    for sub in ("a", "b"):
        (docs["pdf"].parent / sub / "minutes.txt").write_text(
            f"Minutes of meeting {sub}. The committee agreed to repaint the boathouse.", encoding="utf-8")
    library.indexer.ingest([docs["pdf"].parent])
    answer = library.answerer.ask("Summarise minutes.txt", sampling=SAMPLING)
    assert "which one do you mean" in answer.answer
    assert str(docs["pdf"].parent / "a" / "minutes.txt") in answer.answer
    assert answer.sources == [] and answer.citations == []


def test_tidy_drops_runs_of_bare_markers_and_prompt_echoes() -> None:
    assert mapreduce._tidy("Intro [1].\n[2]\n- [3]\n- [4]") == "Intro [1]."
    assert mapreduce._tidy("[1]\n- [2]\nPython is easy.\nTask: Combine these notes") == "- [2]\nPython is easy."
    assert mapreduce._tidy("Python is easy.\n[1] [2]") == "Python is easy.\n[1] [2]", "a closing marker line stays"
    assert mapreduce._tidy("[1]\n- [2]") == "[1]\n- [2]", "never tidied away entirely"


def test_docent_ask_prints_reading_progress_on_stderr(docent, tmp_path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    corpus.make_pdf(folder / "appetite.pdf", tutorial_pages(2))
    assert docent("ingest", str(folder)).code == 0
    human = docent("ask", "Summarise appetite.pdf", "--max-tokens", "30")
    assert human.code == 0, human.err
    assert "Reading appetite.pdf: 0 of" in human.err and "Reading appetite.pdf:" in human.err.splitlines()[-1]
    assert human.out.strip() and "Reading" not in human.out, "progress goes to stderr, the answer to stdout"
    # (--json goes through the same Answer.to_json; its shape is checked above, in-process.)
