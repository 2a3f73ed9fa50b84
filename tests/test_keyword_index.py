"""The keyword index (tantivy) is derived from the catalog and always catches up.

What a user relies on: a passage that is in the catalog is found by its
words, one that was removed or rewritten is not found by its old words, and
none of that depends on the keyword index surviving a crash, a kill, a
damaged file or a restore -- the catalog's change log (or a rebuild from the
catalog) brings it back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.core.stores import keywords as keywords_module
from app.core.stores.catalog import Catalog, ChunkRow
from app.core.textnorm import text_hash


def _add_file(cat: Catalog, path: str, texts: list[str], *, heading: str | None = None) -> int:
    root = cat.add_root(str(Path(path).parent))
    fid = cat.mark_file(path, "pending", root_id=root.id)
    rows = [ChunkRow(f"{path}#{i}", i, None, None, 0, len(t), heading, t, text_hash(t)) for i, t in enumerate(texts)]
    cat.replace_chunks(fid, rows, size=1, mtime_ns=1, hash="h", kind="text", title=None, pages=None)
    return fid


def _found(cat: Catalog, query: str, k: int = 10) -> set[str]:
    return {cid for cid, _ in cat.keyword_search(query, k)}


def _mark(data: Path) -> dict[str, object]:
    return json.loads((data / "keywords" / keywords_module.WATERMARK).read_text(encoding="utf-8"))


def test_new_rewritten_and_removed_passages_are_searched_as_the_catalog_has_them(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog.sqlite3")
    fid = _add_file(cat, "/lib/harbour.txt", ["The ferry timetable changes in winter.", "Cargo cranes on pier four."])
    _add_file(cat, "/lib/museum.txt", ["The lighthouse museum opens at nine."])
    assert _found(cat, "ferry timetable") == {"/lib/harbour.txt#0"}
    assert _found(cat, "lighthouse") == {"/lib/museum.txt#0"}

    # The file is edited: its old words are gone, its new ones found.
    cat.mark_file("/lib/harbour.txt", "pending", root_id=None)
    rows = [ChunkRow("/lib/harbour.txt#0", 0, None, None, 0, 10, None, "Hovercraft replaced the ferry.",
                     text_hash("Hovercraft replaced the ferry."))]
    cat.replace_chunks(fid, rows, size=1, mtime_ns=2, hash="h2", kind="text", title=None, pages=None)
    assert _found(cat, "cranes") == set()
    assert _found(cat, "hovercraft") == {"/lib/harbour.txt#0"}
    # Removed, then searched: nothing, and the index holds one entry per chunk row.
    cat.delete_file(cat.file("/lib/museum.txt").id)  # type: ignore[union-attr]
    assert _found(cat, "lighthouse") == set()
    keywords = cat.keywords
    assert keywords is not None
    assert sorted(keywords.rids()) == sorted(r[0] for r in cat._query("SELECT rid FROM chunks"))  # noqa: SLF001
    cat.close()

    # What the writer committed on closing is what the next process finds,
    # and the change log it applied has been pruned.
    mark = _mark(tmp_path)
    reopened = Catalog(tmp_path / "catalog.sqlite3")
    assert mark["seq"] == reopened.keyword_head() == reopened.keyword_pruned_to()
    assert reopened._query("SELECT COUNT(*) FROM keyword_log")[0][0] == 0  # noqa: SLF001
    assert _found(reopened, "hovercraft") == {"/lib/harbour.txt#0"}
    assert reopened.keywords is not None and reopened.keywords.rebuilds == 0  # caught up, not rebuilt
    reopened.close()


def test_identifiers_accents_and_phrases_match_as_users_type_them(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(cat, "/lib/api.md", [
        "Call read_csv(path) to load the table.",          # 0
        "The csv module can read rows one at a time.",     # 1: both words, not together
        "La crème brûlée du café.",                        # 2
        "Error E_ACCESS_DENIED means the key is revoked.",  # 3
    ])
    assert _found(cat, "read_csv") == {"/lib/api.md#0"}  # the identifier, not its words apart
    assert _found(cat, "READ_CSV") == {"/lib/api.md#0"}
    assert _found(cat, "creme brulee") == {"/lib/api.md#2"}  # accents folded both ways
    assert _found(cat, "brûlée") == {"/lib/api.md#2"}
    assert _found(cat, "e_access_denied") == {"/lib/api.md#3"}
    assert _found(cat, "csv") == {"/lib/api.md#0", "/lib/api.md#1"}
    # Characters a query language treats as syntax are just text.
    assert _found(cat, 'read_csv("x") AND -- NOT *') >= {"/lib/api.md#0"}
    assert cat.has_term("read_csv") and not cat.has_term("write_csv")
    cat.close()


def test_chinese_and_japanese_words_are_found_inside_sentences(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(cat, "/lib/zh.md", ["数据库的索引可以让查询在几毫秒内完成。", "机器学习是人工智能的一个分支。"])
    _add_file(cat, "/lib/ja.md", ["東京の天気は晴れです。"])
    assert _found(cat, "毫秒") == {"/lib/zh.md#0"}
    assert _found(cat, "索引") == {"/lib/zh.md#0"}
    assert _found(cat, "天気") == {"/lib/ja.md#0"}
    assert _found(cat, "月球") == set()
    assert _found(cat, "库") == {"/lib/zh.md#0"}  # one character: any word holding it
    cat.close()


def test_a_scope_filters_before_ranking(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(cat, "/lib/big/a.txt", ["ferry ferry ferry ferry"] * 30)
    _add_file(cat, "/lib/small/b.txt", ["a slow ferry crossing the bay in autumn weather with many passengers"])
    assert [c for c, _ in cat.keyword_search("ferry", 3, scope="/lib/small")] == ["/lib/small/b.txt#0"]
    assert cat.keyword_search("ferry", 3, scope="/lib/none") == []
    cat.close()


def test_a_lagging_watermark_replays_without_duplicates(tmp_path: Path) -> None:
    """A crash between tantivy's commit and the watermark's write: the
    entries are applied again, which must neither duplicate nor lose one."""
    cat = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(cat, "/lib/a.txt", ["alpha beacon"])
    cat.keywords.sync()  # type: ignore[union-attr]
    early = _mark(tmp_path)
    cat.keywords.sync_every_s = 3600  # type: ignore[union-attr]  # writes only committed by searches
    _add_file(cat, "/lib/b.txt", ["bravo beacon", "charlie beacon"])
    cat.delete_file(cat.file("/lib/a.txt").id)  # type: ignore[union-attr]
    assert _found(cat, "beacon") == {"/lib/b.txt#0", "/lib/b.txt#1"}
    cat.close()
    # The log is pruned after a catch-up; the replay needs it, so keep it here.
    db_mark = _mark(tmp_path)
    assert db_mark["seq"] > early["seq"]  # type: ignore[operator]
    (tmp_path / "keywords" / keywords_module.WATERMARK).write_text(json.dumps(early), encoding="utf-8")
    reopened = Catalog(tmp_path / "catalog.sqlite3")
    # The pruned log cannot replay those entries: the index is rebuilt, whole.
    assert _found(reopened, "beacon") == {"/lib/b.txt#0", "/lib/b.txt#1"}
    rids = reopened.keywords.rids()  # type: ignore[union-attr]
    assert len(rids) == len(set(rids)) == 2
    reopened.close()


def test_replaying_entries_the_index_already_holds_changes_nothing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog.sqlite3")
    keywords = cat.keywords
    assert keywords is not None
    keywords.on_synced = None  # keep the log, as a crash before pruning would
    _add_file(cat, "/lib/a.txt", ["alpha beacon", "bravo beacon"])
    keywords.sync()
    _add_file(cat, "/lib/b.txt", ["charlie beacon"])
    keywords.sync()
    keywords._write_mark(0)  # noqa: SLF001 - the watermark lags every commit
    assert keywords.sync() == 3  # all three re-applied from the log ...
    rids = keywords.rids()
    assert len(rids) == len(set(rids)) == 3  # ... once each
    assert keywords.rebuilds == 1  # the first sync only: replays are not rebuilds
    cat.close()


@pytest.mark.parametrize("damage", ["deleted", "garbage", "other-catalog", "other-format"])
def test_a_missing_damaged_or_foreign_index_is_rebuilt_from_the_catalog(tmp_path: Path, damage: str) -> None:
    cat = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(cat, "/lib/a.txt", ["the quay lamp was lit", "gulls over the harbour"])
    cat.close()
    folder = tmp_path / "keywords"
    if damage == "deleted":
        import shutil

        shutil.rmtree(folder)
    elif damage == "garbage":
        for f in folder.iterdir():
            if f.name != keywords_module.WATERMARK:
                f.write_bytes(b"\x00garbage" * 64)
    else:
        mark = _mark(tmp_path)
        mark["catalog" if damage == "other-catalog" else "format"] = "something else"
        (folder / keywords_module.WATERMARK).write_text(json.dumps(mark), encoding="utf-8")
    reopened = Catalog(tmp_path / "catalog.sqlite3")
    assert _found(reopened, "harbour gulls") == {"/lib/a.txt#1"}
    assert reopened.keywords.rebuilds == 1  # type: ignore[union-attr]
    assert _found(reopened, "quay") == {"/lib/a.txt#0"}
    assert sorted(reopened.keywords.rids()) == sorted(  # type: ignore[union-attr]
        r[0] for r in reopened._query("SELECT rid FROM chunks"))  # noqa: SLF001
    reopened.close()


def test_a_reader_sees_what_the_writer_committed_and_never_breaks_it(tmp_path: Path) -> None:
    writer = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(writer, "/lib/a.txt", ["the ferry leaves at noon"])
    assert _found(writer, "ferry") == {"/lib/a.txt#0"}  # committed by the search
    reader = Catalog(tmp_path / "catalog.sqlite3", readonly=True)
    assert _found(reader, "ferry") == {"/lib/a.txt#0"}
    _add_file(writer, "/lib/b.txt", ["the ferry is late"])
    writer.keywords.sync()  # type: ignore[union-attr]
    assert _found(reader, "ferry") == {"/lib/a.txt#0", "/lib/b.txt#0"}
    reader.close()
    writer.close()



def test_the_last_changes_of_a_burst_reach_other_processes_without_another_write(tmp_path: Path) -> None:
    # A watcher indexes a burst of edits and then nothing happens: a search
    # from another process must still find the last file (it once waited
    # for the next write to be committed).
    writer = Catalog(tmp_path / "catalog.sqlite3")
    _add_file(writer, "/lib/a.txt", ["the ferry leaves at noon"])
    assert _found(writer, "ferry") == {"/lib/a.txt#0"}  # the writer now holds the index
    keywords = writer.keywords
    assert keywords is not None
    keywords.sync_every_s = 0.5
    for n in range(5):
        _add_file(writer, f"/lib/late-{n}.txt", [f"the hovercraft number {n} is late"])
    reader = Catalog(tmp_path / "catalog.sqlite3", readonly=True)
    expected = {f"/lib/late-{n}.txt#0" for n in range(5)}
    deadline = time.monotonic() + 30
    found: set[str] = set()
    while found != expected and time.monotonic() < deadline:
        found = _found(reader, "hovercraft")
    assert found == expected
    reader.close()
    writer.close()


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from app.core.stores.catalog import Catalog, ChunkRow
    from app.core.textnorm import text_hash

    cat = Catalog(Path(sys.argv[1]))
    cat.keywords.sync_every_s = 0.0  # commit after every file: kills land mid-commit too
    root = cat.add_root("/lib")
    for n in range(100000):
        path = f"/lib/file-{n % 50:03d}.txt"
        fid = cat.mark_file(path, "pending", root_id=root.id)
        texts = [f"round {n} passage {i} beacon harbour" for i in range(20)]
        rows = [ChunkRow(f"{path}#{i}", i, None, None, 0, 9, None, t, text_hash(t)) for i, t in enumerate(texts)]
        cat.replace_chunks(fid, rows, size=1, mtime_ns=n, hash=str(n), kind="text", title=None, pages=None)
        if n == int(sys.argv[2]):
            print("working", flush=True)
    """
)


@pytest.mark.parametrize("seed", range(3))
def test_sigkill_while_writing_leaves_an_index_that_catches_up(tmp_path: Path, seed: int) -> None:
    proc = subprocess.Popen(
        # Killed after 20, 60 or 100 files: with a commit per file, a kill
        # lands in a catalog write, a tantivy commit or a watermark write.
        [sys.executable, "-c", SCRIPT, str(tmp_path / "catalog.sqlite3"), str(20 + 40 * seed)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "working"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cat = Catalog(tmp_path / "catalog.sqlite3")
    keywords = cat.keywords
    assert keywords is not None
    keywords.sync()
    rids = keywords.rids()
    assert len(rids) == len(set(rids))
    assert set(rids) == {r[0] for r in cat._query("SELECT rid FROM chunks")}  # noqa: SLF001
    last = cat._query("SELECT MAX(mtime_ns) FROM files")[0][0]  # noqa: SLF001
    assert _found(cat, f"round {last} beacon", k=50) >= {f"/lib/file-{last % 50:03d}.txt#0"}
    cat.close()
