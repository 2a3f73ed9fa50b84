"""The catalog: migrations, keyword search in any script, atomic swaps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.core.stores.catalog import Catalog, ChunkRow
from app.core.textnorm import text_hash


def _rows(texts: list[str], prefix: str = "f") -> list[ChunkRow]:
    return [
        ChunkRow(f"{prefix}-{i}", i, i + 1, None, 0, len(t), None, t, text_hash(t))
        for i, t in enumerate(texts)
    ]


def _indexed(cat: Catalog, path: str, texts: list[str]) -> int:
    root = cat.add_root(str(Path(path).parent))
    fid = cat.mark_file(path, "pending", root_id=root.id)
    cat.replace_chunks(fid, _rows(texts, prefix=path), size=1, mtime_ns=1, hash="h",
                       kind="text", title=None, pages=None)
    return fid


def test_migrations_are_recorded_and_not_rerun(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.close()
    Catalog(tmp_path / "c.sqlite3").close()  # a second open must not fail or re-apply
    db = sqlite3.connect(tmp_path / "c.sqlite3")
    assert [r[0] for r in db.execute("SELECT name FROM migrations")] == [
        "_m001_initial", "_m002_cjk_bigrams", "_m003_keyword_log", "_m004_page_boxes", "_m005_parts"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_keyword_search_finds_chinese_and_japanese_text(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    _indexed(cat, "/lib/zh.txt", ["我们的公司在上海设立了新的研发中心。", "天气很好，适合散步。"])
    _indexed(cat, "/lib/ja.txt", ["東京の本社は来年移転します。"])
    hits = cat.keyword_search("研发中心", 5)
    assert [cid for cid, _ in hits] == ["/lib/zh.txt-0"]
    assert [cid for cid, _ in cat.keyword_search("本社", 5)] == ["/lib/ja.txt-0"]
    assert cat.keyword_search("月球", 5) == []


def test_keyword_search_ranks_and_scopes(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    _indexed(cat, "/lib/a/one.txt", ["the ferry timetable changes in winter", "unrelated words here"])
    _indexed(cat, "/lib/b/two.txt", ["ferry ferry ferry timetable"])
    hits = cat.keyword_search("ferry timetable", 5)
    assert {cid for cid, _ in hits} == {"/lib/a/one.txt-0", "/lib/b/two.txt-0"}
    assert hits[0][1] >= hits[1][1]
    scoped = cat.keyword_search("ferry", 5, scope="/lib/a")
    assert [cid for cid, _ in scoped] == ["/lib/a/one.txt-0"]
    # Characters FTS5 treats as syntax are just text to the user.
    assert cat.keyword_search('"ferry" AND (NEAR OR', 5)


def test_replacing_chunks_swaps_keyword_index_too(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    fid = _indexed(cat, "/lib/doc.txt", ["old lighthouse text"])
    cat.replace_chunks(fid, _rows(["new harbour text"], prefix="v2"), size=2, mtime_ns=2,
                       hash="h2", kind="text", title=None, pages=None)
    assert cat.keyword_search("lighthouse", 5) == []
    assert [c for c, _ in cat.keyword_search("harbour", 5)] == ["v2-0"]
    assert cat.indexed_chunk_count() == 1
    cat.delete_file(fid)
    assert cat.keyword_search("harbour", 5) == [] and cat.indexed_chunk_count() == 0


def test_a_readonly_catalog_of_a_new_library_reads_as_empty(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "missing.sqlite3", readonly=True)
    assert cat.counts()["indexed"] == 0 and cat.files() == []
    assert not (tmp_path / "missing.sqlite3").exists()
