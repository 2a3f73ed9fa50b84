"""The chat shows what the documents support: a decline's nearest passages,
an answer's supporting quote, and the sentences no cited passage says.

One library is indexed and asked once for the module (real ingest, real
bundled models); its answers are kept in the chat history as the window
keeps them, so each test opens a window that restores them, as after a
restart. The decline is asked live in the window.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QTextCursor

from tests import corpus

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ANSWERED = "How many storm warnings did the lighthouse keepers record?"
ABSENT = "What is the boiling point of mercury in kelvin, by the thermocalc tables?"
# A sentence no document says, added to the model's own answer as a small
# model adds one; the real support check then judges every sentence.
INVENTED = "The keepers painted the tower bright purple every spring for the visiting astronauts."
EMBELLISHED = "What colour was the lighthouse tower painted?"


@pytest.fixture(scope="module")
def history(tmp_path_factory, embedder, chat_model) -> dict:
    """A data folder whose chat history holds a real answer and an embellished one."""
    import dataclasses

    from app.core.answering import support
    from app.core.library import Library
    from app.core.models.llm import Sampling
    from app.core.stores.chats import ChatStore

    work = tmp_path_factory.mktemp("support")
    docs = corpus.make_library(work / "docs")
    library = Library(work / "data", purpose="tests")
    library.use_embedder(embedder)
    library.use_model(chat_model)
    try:
        library.indexer.ingest([docs["pdf"].parent])
        sampling = Sampling(max_tokens=60, temperature=0.0)
        answer = library.answerer.ask(ANSWERED, sampling=sampling)
        embellished = dataclasses.replace(answer, question=EMBELLISHED,
                                          answer=f"{answer.answer.strip()}\n\n{INVENTED}")
        support.back_up(embellished, support.memo(embedder.encode))
        chats = ChatStore(library.paths.chats)
        conversation = chats.create()
        for a in (answer, embellished):
            chats.add_turn(conversation.id, a.question, a.answer, a.snapshot())
        chats.close()
    finally:
        library.close()
    return {"data": work / "data", "docs": docs, "conversation": conversation.id}


def restored(open_window, history):
    """A window on the history's data folder, showing the conversation kept there."""
    window = open_window(history["data"])
    window.open_chat(history["conversation"])
    return window


def turn(window, question: str):
    return next(t for t in window.chat.turns if t.question == question)


def click_link(qtbot, browser, href: str) -> None:
    """Click the link ``href`` in a QTextBrowser as a person would."""
    document = browser.document()
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().anchorHref() == href:
                cursor = QTextCursor(document)
                cursor.setPosition(fragment.position() + min(1, fragment.length() - 1))
                browser.setTextCursor(cursor)
                browser.ensureCursorVisible()
                point = browser.cursorRect().center()
                qtbot.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton, pos=point)
                return
            it += 1
        block = block.next()
    raise AssertionError(f"no link {href} in the transcript")


def viewer_of(window):
    return window.viewer.viewer


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_decline_says_what_was_searched_and_lists_the_nearest_passages(qtbot, open_window, history):
    window = open_window(history["data"])
    # A new chat, so the question is searched as asked (not completed by the history's).
    before = window.conversation_id
    window.new_chat()
    qtbot.waitUntil(lambda: window.conversation_id != before, timeout=10_000)
    window.chat.question.setPlainText(ABSENT)
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns[-1].turn_id is not None,
                    timeout=120_000)
    shown = window.chat.turns[-1]
    record = shown.record
    assert record["declined"]

    text = flat(window.chat.transcript.toPlainText())
    assert "Not found in your documents." in text and "Nearest passages:" in text
    # The word no document uses is named, so the user can judge the decline.
    assert "None of your documents mention “thermocalc”." in text
    assert f"Searched for “{record['searched']['query']}” ({record['searched']['mode']} search" in text
    nearest = record["nearest"]
    assert nearest, "a decline shows the passages that came nearest"
    for hit in nearest:
        assert Path(hit["path"]).name in text
        opening = [w for w in hit["text"].split() if w.strip("#")][:6]  # Markdown heading marks are not shown
        assert " ".join(opening) in text
    # The sidebar lists them too, as cards under a note saying nothing was found.
    from app.ui.sources_panel import NEAREST_NOTE

    assert window.sources.note_text() == NEAREST_NOTE
    assert [c["chunk_id"] for c in window.sources.cards()] == [h["chunk_id"] for h in nearest]
    # Each is a link that opens the viewer at that passage.
    first = nearest[0]
    click_link(qtbot, window.chat.transcript, f"near:{shown.turn_id}:0")
    viewer = viewer_of(window)
    qtbot.waitUntil(lambda: viewer.path() == str(Path(first["path"]).resolve()) and not viewer.is_reading(),
                    timeout=30_000)
    assert viewer.highlight_found()
    if first.get("page") is not None:
        assert viewer.current_page() == first["page"]


def test_an_answer_shows_its_supporting_quote_under_it(qtbot, open_window, history):
    window = restored(open_window, history)
    shown = turn(window, ANSWERED)
    quotes = shown.record["quotes"]
    assert quotes, "an answer with a citation shows the sentence that supports it"

    text = flat(window.chat.transcript.toPlainText())
    answer_at = text.index(flat(shown.answer)[:30])
    for quote in quotes:
        where = f"[{quote['n']}] {Path(quote['path']).name}" + (f", p. {quote['page']}" if quote["page"] else "")
        assert text.index(where, answer_at) > answer_at, "the quote comes under the answer"
        assert f"“{flat(quote['text'])}”" in text

    # Copy takes the quote along with the answer.
    from PySide6.QtWidgets import QApplication

    window.copy_answer(shown.turn_id)
    assert f"“{flat(quotes[0]['text'])}”" in QApplication.clipboard().text()

    # Clicking the quote opens the viewer at its page with the quote highlighted more strongly.
    click_link(qtbot, window.chat.transcript, f"quote:{shown.turn_id}:0")
    viewer = viewer_of(window)
    qtbot.waitUntil(lambda: viewer.path() == str(Path(quotes[0]["path"]).resolve()) and not viewer.is_reading(),
                    timeout=30_000)
    if quotes[0]["page"] is not None:
        assert viewer.current_page() == quotes[0]["page"]
    kinds = {h.kind: h for h in viewer.highlights()}
    assert flat(kinds["quote"].text) == flat(quotes[0]["text"])
    assert kinds["quote"].color.lightness() < kinds["passage"].color.lightness()


def test_the_sources_and_their_best_sentence_show_before_the_first_word(qtbot, open_window, history):
    # The model takes seconds to read its prompt: what it reads is on screen
    # meanwhile, each passage with the sentence that best answers the question.
    from PySide6.QtWidgets import QApplication

    from app.ui.sources_panel import FOUND_NOTE

    window = open_window(history["data"])
    before = window.conversation_id
    window.new_chat()
    qtbot.waitUntil(lambda: window.conversation_id != before, timeout=10_000)
    seen: dict = {}

    class Watcher(QObject):
        """Looks at the window on the GUI thread, right after the window's own slots."""

        @Slot(int, list)
        def on_found(self, request_id: int, found: list) -> None:
            seen.update(title=window.sources.title.text(), note=window.sources.note_text(),
                        cards=window.sources.cards(), chat=flat(window.chat.transcript.toPlainText()),
                        streamed=window.chat.streaming_text(), found=found)

        @Slot(int, str)
        def on_token(self, request_id: int, piece: str) -> None:
            seen.setdefault("first_word_after_sources", "cards" in seen)
            seen.setdefault("active", QApplication.activeWindow() is window)
            window.stop()  # one word is enough: the rest is other tests' business

    watcher = Watcher()
    window.model_worker.sources_found.connect(watcher.on_found)
    window.model_worker.token.connect(watcher.on_token)
    question = "Who recorded the storm warnings at the lighthouse?"
    window.chat.question.setPlainText(question)
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window._pending is None and window.chat.turns[-1].turn_id is not None,
                    timeout=120_000)

    assert seen.get("first_word_after_sources") is True, "the sources come before the answer's first word"
    assert seen["streamed"] == ""
    assert "Found" in seen["title"] and question in seen["title"]
    assert seen["note"] == FOUND_NOTE
    assert seen["active"], "no card flashes up as a window of its own (Esc must still reach the window)"
    cards = seen["cards"]
    assert cards and [c["chunk_id"] for c in cards] == [f["chunk_id"] for f in seen["found"]]
    assert all(Path(c["path"]).exists() for c in cards)
    # The top passage's best sentence is quoted from it, verbatim.
    quote = cards[0]["quote"]
    assert quote["text"] and quote["text"] in cards[0]["text"]
    files = len({c["path"] for c in cards})
    passages = f"{len(cards)} passage{'s' if len(cards) != 1 else ''}"
    assert f"Found {passages} in {files} file{'s' if files != 1 else ''} (see Sources)" in seen["chat"]
    # Once answered (here: stopped), the answer's own record replaces them.
    assert window.sources.note_text() != FOUND_NOTE
    assert "Found" not in flat(window.chat.transcript.toPlainText())


def test_a_sentence_no_cited_passage_says_is_marked(qtbot, open_window, history):
    window = restored(open_window, history)
    shown = turn(window, EMBELLISHED)
    checks = {flat(s["text"]): s["supported"] for s in shown.record["sentences"]}
    assert checks.get(flat(INVENTED)) is False, "the support check finds the invented sentence"

    marked = unsupported_marks(window.chat.transcript)
    assert flat(INVENTED).rstrip(".") in marked
    supported = [t for t, ok in checks.items() if ok]
    assert all(t.rstrip(".") not in marked for t in supported), "supported sentences stay as they are"
    if shown.record["wording_unsupported"]:
        assert "The model's wording was not found in your documents" in window.chat.transcript.toPlainText()


def unsupported_marks(browser) -> list[str]:
    """The runs of transcript text marked as unsupported (wavy underline, tooltip)."""
    from app.ui.answer_support import UNSUPPORTED_TIP

    runs: list[str] = []
    current = ""
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            fmt = fragment.charFormat()
            if fmt.toolTip() == UNSUPPORTED_TIP:
                assert fmt.underlineStyle() == fmt.UnderlineStyle.WaveUnderline
                current += fragment.text()
            elif current:
                runs.append(flat(current))
                current = ""
            it += 1
        block = block.next()
    if current:
        runs.append(flat(current))
    return runs
