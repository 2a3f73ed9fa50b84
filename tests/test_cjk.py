"""Chinese, Japanese and other unspaced scripts: found by keyword and by meaning.

Real documents go through the real pipeline (parse → chunk with the bundled
tokenizer → embed → tantivy keyword index + Chroma), and the CLI is the real executable.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.config import Settings, bundled_embedding_model
from app.core.answering import citations
from app.core import textnorm
from app.core.stores.catalog import Catalog, _m001_initial
from app.core.documents.chunking import chunk_pages
from app.core.documents.model import Page
from app.core.stores.migrations import apply
from app.errors import StoreError

ZH = """# 数据库与索引

数据库是按照一定结构组织、存储和管理数据的仓库。现代应用程序几乎都离不开数据库，它负责保存用户信息、订单记录和各种日志。

在大型表中查找一行记录时，如果没有索引，数据库只能逐行扫描整张表，速度非常慢。建立索引以后，查询可以直接定位到目标位置，响应时间往往从几秒缩短到几毫秒。常见的索引结构包括B树和哈希表。

不过，索引并不是越多越好。每次插入或更新数据时，数据库都要同时维护所有相关的索引，因此写入会变慢，磁盘占用也会增加。

# 机器学习

机器学习是人工智能的一个分支，它让计算机从数据中自动发现规律，而不需要人工编写每一条规则。训练一个模型通常需要大量带标签的样本。模型训练完成后，可以用来预测新数据的类别或数值。
"""

JA = """# 図書館の歴史

図書館は古代から知識を保存する場所でした。アレクサンドリア図書館には数十万巻の巻物が集められたと言われています。

現代の図書館では、本の貸し出しだけでなく、電子書籍やデータベースの利用もできます。司書は利用者が必要な情報を探すのを手伝います。
"""

EN = """# Ferry timetable

The island ferry leaves the harbour every morning at seven. In winter the timetable changes
and the last crossing is at five in the afternoon, because storms make the evening sea rough.
"""


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "数据库.md").write_text(ZH, encoding="utf-8")
    (folder / "toshokan.txt").write_text(JA, encoding="utf-8")
    (folder / "ferry.md").write_text(EN, encoding="utf-8")
    (folder / "mixed.txt").write_text(
        "Docent 支持中文搜索。The 向量数据库 Chroma stores embeddings; 关键词检索 uses tantivy.\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture()
def indexed(library, corpus):
    report = library.indexer.ingest([corpus])
    assert not report.failed, report.failed
    return library


def _keyword(lib, query: str, k: int = 5) -> list[tuple[str, str]]:
    """(file name, chunk text) of each keyword hit."""
    hits = lib.keyword_retriever.search(query, k=k, mode="keyword").hits
    return [(Path(h.chunk.path).name, h.chunk.text) for h in hits]


# --- keyword search -----------------------------------------------------------


def test_a_two_character_word_inside_a_chinese_sentence_is_found(indexed) -> None:
    # 索引 sits mid-sentence, with no spaces around it, in several paragraphs.
    hits = _keyword(indexed, "索引")
    assert hits and all(name == "数据库.md" for name, _ in hits)
    assert all("索引" in text for _, text in hits)
    # 毫秒 occurs once, in the middle of a long sentence (which two overlapping chunks share).
    hits = _keyword(indexed, "毫秒")
    assert hits and {name for name, _ in hits} == {"数据库.md"}
    assert all("几毫秒" in text for _, text in hits)


def test_words_must_occur_contiguously_and_absent_words_find_nothing(indexed) -> None:
    assert _keyword(indexed, "月球") == []  # moon: not in any document
    # 库数 is two characters of the text but never next to each other in this order.
    assert "库数" not in ZH
    assert _keyword(indexed, "库数") == []
    # A three-character word: its two bigrams must follow each other.
    assert {name for name, _ in _keyword(indexed, "人工智能")} == {"数据库.md"}


def test_a_single_character_is_found_anywhere_in_a_run(indexed) -> None:
    # 巻 (scroll) appears only inside 巻物, never at the end of a run.
    assert [name for name, _ in _keyword(indexed, "巻")] == ["toshokan.txt"]
    # 慢 (slow) appears only at the end of runs ("速度非常慢", "写入会变慢").
    assert {name for name, _ in _keyword(indexed, "慢")} == {"数据库.md"}


def test_japanese_kana_and_kanji_are_found(indexed) -> None:
    assert [name for name, _ in _keyword(indexed, "司書")] == ["toshokan.txt"]
    assert [name for name, _ in _keyword(indexed, "データベース")][:1] == ["toshokan.txt"]
    assert [name for name, _ in _keyword(indexed, "貸し出し")] == ["toshokan.txt"]
    assert _keyword(indexed, "新幹線") == []


def test_a_chinese_question_finds_its_passage_by_keyword(indexed) -> None:
    # A whole question is not written verbatim in the text; its words still count.
    hits = _keyword(indexed, "为什么索引会让写入变慢")
    assert hits and hits[0][0] == "数据库.md"
    assert "写入会变慢" in hits[0][1]


def test_mixed_language_text_is_found_by_either_language(indexed) -> None:
    assert [name for name, _ in _keyword(indexed, "关键词检索")] == ["mixed.txt"]
    assert [name for name, _ in _keyword(indexed, "Chroma")] == ["mixed.txt"]
    assert [name for name, _ in _keyword(indexed, "Docent中文")][:1] == ["mixed.txt"]


def test_english_is_searched_as_before(indexed) -> None:
    assert [name for name, _ in _keyword(indexed, "ferry timetable")][:1] == ["ferry.md"]


def test_the_user_sees_the_original_text_not_the_segmented_index(indexed) -> None:
    hits = _keyword(indexed, "索引", k=10)
    assert hits
    for _name, text in hits:
        # As written: no bigrams, no spaces between characters.
        assert "索引" in text and "索 引" not in text and "索引 引" not in text
        assert "数据库" in text or "建立索引" in text


def test_the_cli_keyword_search_finds_the_chinese_chunk(indexed, corpus, docent) -> None:
    indexed.close()  # the CLI opens the folder as a reader
    result = docent("search", "--mode", "keyword", "索引", "--json")
    assert result.code == 0, result.err
    hits = result.json()["hits"]
    assert hits and hits[0]["path"] == str((corpus / "数据库.md").resolve())
    assert "索引" in hits[0]["text"] and hits[0]["page"] is None
    none = docent("search", "--mode", "keyword", "月球", "--json")
    assert none.code == 0 and none.json()["hits"] == []


# --- meaning and hybrid search ---------------------------------------------------


def test_hybrid_search_returns_the_chinese_chunk(indexed) -> None:
    hits = indexed.retriever.search("索引", k=5, mode="hybrid").hits
    assert hits[0].chunk.path.endswith("数据库.md")
    assert "索引" in hits[0].chunk.text
    assert hits[0].keyword_score is not None


# --- chunking and citations -------------------------------------------------------


def test_chinese_chunks_end_at_sentence_ends(embedder, hf_tokenizer) -> None:
    # One paragraph, no spaces anywhere: only 。 marks where a sentence ends.
    text = "".join(f"第{i}句话讲的是数据库索引如何加快查询速度，以及它的代价。" for i in range(60))
    chunks = chunk_pages([Page(None, text)], embedder.token_spans, max_tokens=embedder.max_tokens, overlap=32)
    assert len(chunks) > 5
    for c in chunks[:-1]:
        assert c.text.endswith("。"), c.text  # never mid-sentence
        assert len(c.text) > 100 and c.text[0] not in "。，"
        ids = hf_tokenizer(c.text)["input_ids"]
        assert len(ids) <= embedder.max_tokens + 2
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_thai_runs_the_tokenizer_cannot_read_still_make_passage_sized_chunks(embedder) -> None:
    sentence = "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำในประโยคยาวมากเลยครับ"
    text = " ".join([sentence] * 60)
    # The English vocabulary has no Thai: each run is one [UNK] token.
    assert len(embedder.token_spans(sentence)) == 1
    chunks = chunk_pages([Page(None, text)], embedder.token_spans, max_tokens=50, overlap=8)
    assert len(chunks) > 3
    assert all(len(c.text) <= 50 * 8 + 16 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    # ...and it is found by keyword, marks and all.
    clauses = textnorm.keyword_clauses("เว้นวรรค")
    assert clauses and len(clauses[0].words) > 1  # a phrase of its bigrams


def test_citation_sentences_and_content_words_work_on_chinese() -> None:
    answer = "建立索引以后，查询速度会大大加快。但是写入会变慢，磁盘占用也会增加！[1]"
    assert citations.sentences(answer) == ["建立索引以后，查询速度会大大加快。", "但是写入会变慢，磁盘占用也会增加！"]
    words = textnorm.content_words("建立索引以后查询更快")
    assert {"索引", "查询", "建立"} <= words
    # Inferred citations: the answer's sentence restates the first source, not the second.
    sources = ["不过，索引并不是越多越好。每次插入或更新数据时，数据库都要同时维护所有相关的索引，因此写入会变慢。",
               "机器学习是人工智能的一个分支，它让计算机从数据中自动发现规律。"]
    found = citations.infer(["索引越多，写入会变慢。"], None, sources, [None, None])
    assert found == [1]


# --- an index written before bigrams ---------------------------------------------


def _legacy_for_index(text: str) -> str:
    """How catalogs written before this change segmented text: one token per character."""
    import re
    import unicodedata

    chars = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")
    return chars.sub(r" \1 ", unicodedata.normalize("NFKC", text))


def _old_catalog(path: Path, texts: list[str]) -> None:
    """A catalog as the previous version left it: first migration only, per-character FTS."""
    db = sqlite3.connect(path, isolation_level=None)
    apply(db, [_m001_initial])
    db.execute("INSERT INTO roots (path, added_at) VALUES ('/lib', 'then')")
    db.execute("INSERT INTO files (root_id, path, status, chunks) VALUES (1, '/lib/zh.md', 'indexed', ?)",
               (len(texts),))
    for i, text in enumerate(texts):
        cur = db.execute(
            """INSERT INTO chunks (id, file_id, ordinal, page, start, "end", text, text_hash)
               VALUES (?, 1, ?, NULL, 0, ?, ?, ?)""",
            (f"c{i}", i, len(text), text, textnorm.text_hash(text)),
        )
        db.execute("INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)", (cur.lastrowid, _legacy_for_index(text)))
    db.close()


def test_an_old_catalog_is_searched_before_and_after_the_writer_moves_it_to_tantivy(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    paragraphs = [p for p in ZH.split("\n\n") if p.strip()] + ["The ferry timetable changes in winter."]
    _old_catalog(path, paragraphs)

    # A reader (no writer has migrated it yet) indexes its passages in memory, in bigrams.
    reader = Catalog(path, readonly=True)
    assert [c for c, _ in reader.keyword_search("毫秒", 5)] == ["c2"]
    assert [c for c, _ in reader.keyword_search("逐行扫描", 5)] == ["c2"]
    assert not (tmp_path / "keywords").exists()
    reader.close()

    writer = Catalog(path)  # opening as the writer migrates
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY name")] == [
        "_m001_initial", "_m002_cjk_bigrams", "_m003_keyword_log", "_m004_page_boxes", "_m005_parts"]
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "chunks_fts" not in tables and "keyword_log" in tables
    db.close()
    assert [c for c, _ in writer.keyword_search("毫秒", 5)] == ["c2"]
    assert {c for c, _ in writer.keyword_search("机器学习", 5)} == {"c4", "c5"}  # heading and paragraph
    assert writer.keyword_search("月球", 5) == []
    assert [c for c, _ in writer.keyword_search("ferry timetable", 5)] == ["c6"]
    writer.close()
    # Readers of the migrated catalog use the index the writer left on disk.
    reader = Catalog(path, readonly=True)
    assert [c for c, _ in reader.keyword_search("毫秒", 5)] == ["c2"]
    assert reader.keywords is not None and reader.keywords.directory == tmp_path / "keywords"
    reader.close()


# --- an optional multilingual model from a local folder --------------------------


@pytest.fixture(scope="module")
def local_model(tmp_path_factory) -> Path:
    """A sentence-transformers folder made the way a user would install one (``.save``)."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("models") / "paraphrase-multilingual-test"
    SentenceTransformer(str(bundled_embedding_model()), device="cpu", local_files_only=True).save(str(folder))
    return folder


def test_a_model_folder_in_the_settings_embeds_and_is_recorded(tmp_path, local_model, corpus) -> None:
    from app.core.library import Library

    data = tmp_path / "data"
    # The model, not the backend, is what this checks: full precision, as saved.
    settings = Settings(embedding_model_path=str(local_model), embedding_backend="torch")
    with Library(data, settings=settings, purpose="tests") as lib:
        assert lib.embedder.name == "paraphrase-multilingual-test"
        report = lib.indexer.ingest([corpus])
        assert not report.failed
        assert lib.catalog.get_meta("embedder") == "paraphrase-multilingual-test:384"
        assert lib.catalog.get_meta("embedder_fingerprint") == lib.embedder.fingerprint
        hits = lib.retriever.search("数据库的索引有什么代价", k=3, mode="vector").hits
        assert hits and any(h.chunk.path.endswith("数据库.md") for h in hits)

    # The bundled model on the same library: refused, with the way out.
    with pytest.raises(StoreError) as refused:
        with Library(data, settings=Settings(), purpose="tests") as lib:
            lib.embedder  # noqa: B018 - loading it is the check
    message = str(refused.value)
    assert "paraphrase-multilingual-test" in message and "re-index" in message
    assert "docent ingest" in message


def test_another_model_in_a_folder_of_the_same_name_is_refused(tmp_path, local_model, corpus) -> None:
    """Folder names collide (the bundled model's is ``model``); the weights decide."""
    import shutil

    from safetensors.torch import load_file, save_file

    from app.core.library import Library

    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    shutil.copytree(local_model, first)
    shutil.copytree(local_model, second)
    weights = second / "model.safetensors"
    tensors = load_file(str(weights))
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 1.01  # a "fine-tuned" model: same shape, other weights
    save_file(tensors, str(weights), metadata={"format": "pt"})

    data = tmp_path / "data"
    with Library(data, settings=Settings(embedding_model_path=str(first), embedding_backend="torch"), purpose="tests") as lib:
        lib.indexer.ingest([corpus])
    with pytest.raises(StoreError) as refused:
        with Library(data, settings=Settings(embedding_model_path=str(second), embedding_backend="torch"), purpose="tests") as lib:
            lib.embedder  # noqa: B018
    assert "both folders are called model" in str(refused.value)
    # The original folder still opens the library.
    with Library(data, settings=Settings(embedding_model_path=str(first), embedding_backend="torch"), purpose="tests") as lib:
        assert lib.embedder.name == "model"


def test_korean_and_thai_words_are_found_inside_longer_runs(tmp_path: Path) -> None:
    from app.core.stores.catalog import ChunkRow

    cat = Catalog(tmp_path / "c.sqlite3")
    texts = {
        "ko": "데이터베이스를 사용하면 검색이 빨라집니다. 인덱스는 중요합니다.",
        "th": "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ฐานข้อมูลช่วยให้ค้นหาได้เร็วขึ้น",
        "en": "Databases make search faster.",
    }
    root = cat.add_root("/lib")
    for name, text in texts.items():
        fid = cat.mark_file(f"/lib/{name}.txt", "pending", root_id=root.id)
        cat.replace_chunks(fid, [ChunkRow(name, 0, None, None, 0, len(text), None, text, textnorm.text_hash(text))],
                           size=1, mtime_ns=1, hash="h", kind="text", title=None, pages=None)
    # Korean glues particles to words (데이터베이스+를); Thai writes no spaces at all.
    assert [c for c, _ in cat.keyword_search("데이터베이스", 5)] == ["ko"]
    assert [c for c, _ in cat.keyword_search("인덱스", 5)] == ["ko"]
    assert [c for c, _ in cat.keyword_search("ฐานข้อมูล", 5)] == ["th"]  # "database", mid-run
    assert [c for c, _ in cat.keyword_search("เว้นวรรค", 5)] == ["th"]  # vowel and tone marks inside
    assert cat.keyword_search("รถไฟ", 5) == []  # "train": not there
    assert [c for c, _ in cat.keyword_search("databases faster", 5)] == ["en"]
    cat.close()


def test_a_chinese_question_highlights_the_words_it_was_found_by() -> None:
    from app.core.answering.render import highlight_html, query_terms

    assert query_terms("索引") == ["索引"]
    html = highlight_html("每次插入数据时，数据库都要维护索引，因此写入会变慢。", query_terms("为什么索引会让写入变慢"))
    assert html.count("<b ") == 3 and ">索引</b>" in html and ">写入</b>" in html and ">变慢</b>" in html
