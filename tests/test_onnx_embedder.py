"""The optional int8 embedding path: exported locally once, reused, close to torch, and kept apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.config import Settings, bundled_embedding_model
from app.core.stores.audit import local_user
from app.errors import ModelError, StoreError

TEXTS = [
    "How do I read a file line by line in Python?",
    "The for statement iterates over the items of any sequence, in the order they appear.",
    "  Leading and trailing spaces are ignored, as the standard backend does.  ",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by this module's tests: the export runs once here."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache: Path):
    from app.core.models.embedder import OnnxInt8Embedder

    return OnnxInt8Embedder(bundled_embedding_model(), onnx_cache)


def test_the_export_lands_in_the_cache_folder_and_is_reused(onnx_embedder, onnx_cache: Path) -> None:
    from app.core.models.embedder import OnnxInt8Embedder

    folder = onnx_embedder.cache_dir
    assert folder.parent == onnx_cache
    model = folder / "model_qint8.onnx"
    assert model.is_file() and model.stat().st_size > 1_000_000
    # Only the int8 model is kept, and no half-finished export is left behind.
    assert not list(folder.glob("*fp32*"))
    assert [p.name for p in onnx_cache.iterdir()] == [folder.name]
    before = model.stat().st_mtime_ns

    again = OnnxInt8Embedder(bundled_embedding_model(), onnx_cache)

    assert again.cache_dir == folder
    assert model.stat().st_mtime_ns == before  # loaded, not exported again
    assert np.allclose(again.encode(TEXTS[:2]), onnx_embedder.encode(TEXTS[:2]), atol=1e-6)


def test_int8_vectors_are_normalised_and_close_to_torch(onnx_embedder, torch_embedder) -> None:
    assert (onnx_embedder.name, onnx_embedder.dim, onnx_embedder.max_tokens) == (
        torch_embedder.name, torch_embedder.dim, torch_embedder.max_tokens)
    assert onnx_embedder.backend == "onnx-int8" and torch_embedder.backend == "torch"

    fast = onnx_embedder.encode(TEXTS)
    full = torch_embedder.encode(TEXTS)

    assert fast.shape == full.shape == (len(TEXTS), torch_embedder.dim)
    assert fast.dtype == np.float32
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    cosines = (fast * full).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    # Rows come back in the caller's order even though batches are sorted by length.
    assert np.allclose(onnx_embedder.encode(TEXTS[::-1]), fast[::-1], atol=1e-5)
    assert onnx_embedder.encode([]).shape == (0, torch_embedder.dim)


def test_a_texts_vector_does_not_depend_on_what_it_is_embedded_with(onnx_embedder) -> None:
    """Dynamic int8 quantisation scales by the whole input: a query embedded
    alone must still get the vector its passage got in an ingest batch."""
    long_text = " ".join(["The harbour board reviewed the ledger of every ship."] * 20)
    together = onnx_embedder.encode([*TEXTS, long_text])
    alone = np.vstack([onnx_embedder.encode([t]) for t in TEXTS])
    assert np.allclose(together[: len(TEXTS)], alone, atol=1e-6)


def test_token_spans_match_the_standard_backend(onnx_embedder, torch_embedder) -> None:
    text = "Docent's chunker counts tokens: naïve café, CamelCase and snake_case."
    assert onnx_embedder.token_spans(text) == torch_embedder.token_spans(text)


def test_batches_are_tokenized_as_transformers_does_without_importing_it(onnx_embedder) -> None:
    """The tokenizers library alone gives the ids, mask and padding the model
    was exported with transformers' tokenizer for: same texts, same inputs."""
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(onnx_embedder.cache_dir / "tokenizer"), local_files_only=True)
    long_text = " ".join(["The lighthouse keeper wrote down every storm warning in the logbook."] * 40)
    batch = [t.strip() for t in [*TEXTS, long_text, "naïve café – 東京 ✓"]]
    want = reference(batch, padding=True, truncation="longest_first", max_length=onnx_embedder.max_tokens + 2,
                     return_tensors="np")
    got = onnx_embedder._batch_tok.encode_batch(batch)  # noqa: SLF001
    assert [e.ids for e in got] == want["input_ids"].tolist()
    assert [e.attention_mask for e in got] == want["attention_mask"].tolist()
    assert len(got[len(TEXTS)].ids) == onnx_embedder.max_tokens + 2, "a long text is cut to the model's length"


def test_with_the_export_in_place_neither_torch_nor_transformers_is_loaded(onnx_embedder, onnx_cache: Path) -> None:
    """What the installed app needs to embed on this backend: onnxruntime and
    tokenizers, not torch (most of the bundle's size and load time)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from app.config import bundled_embedding_model\n"
        "from app.core.models.embedder import OnnxInt8Embedder\n"
        f"e = OnnxInt8Embedder(bundled_embedding_model(), {str(onnx_cache)!r})\n"
        "v = e.encode(['Where is the lighthouse?'])\n"
        "print(v.shape, len(e.token_spans('Where is the lighthouse?')))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent, check=True).stdout.splitlines()
    assert out[0] == f"(1, {onnx_embedder.dim}) 5"
    assert out[1] == "[]"


def test_an_export_shipped_with_the_app_is_used_without_exporting_again(onnx_embedder, tmp_path: Path) -> None:
    """The installed app ships the bundled model's export (made at build
    time, where torch is): it is found by the weights' fingerprint wherever
    the model is installed, and nothing is exported into the data folder."""
    import json
    import shutil

    from app.core.models.embedder import OnnxInt8Embedder, model_fingerprint, shipped_export

    model = bundled_embedding_model()
    shipped = tmp_path / "resources" / "models" / "onnx-int8"
    target = shipped / f"{model.name}-{model_fingerprint(model)}"
    shutil.copytree(onnx_embedder.cache_dir, target)  # what packaging/docent.spec puts in the bundle
    cache = tmp_path / "data" / "models" / "onnx-int8"

    shipped_embedder = OnnxInt8Embedder(model, cache, shipped=[tmp_path / "elsewhere", shipped])

    assert shipped_embedder.cache_dir == target
    assert not cache.exists(), "nothing exported into the data folder"
    assert np.allclose(shipped_embedder.encode(TEXTS), onnx_embedder.encode(TEXTS), atol=1e-6)
    # An export of other weights is never taken for this model's.
    meta_file = target / "docent-onnx.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta_file.write_text(json.dumps({**meta, "fingerprint": "0" * 16}), encoding="utf-8")
    assert shipped_export(model, [shipped]) is None


def test_encoding_can_be_cancelled_between_batches(onnx_embedder) -> None:
    from app.errors import Cancelled

    with pytest.raises(Cancelled):
        onnx_embedder.encode(TEXTS * 20, should_stop=lambda: True)


def test_a_library_on_the_int8_backend_finds_the_right_passage(tmp_path: Path, shipped_onnx: Path) -> None:
    from app.core.library import Library

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.md").write_text(
        "# Garden\n\nTomatoes need six hours of sun and deep watering twice a week.\n", encoding="utf-8")
    (docs / "boats.md").write_text(
        "# Boats\n\nA sailing boat tacks by turning its bow through the wind.\n", encoding="utf-8")
    (docs / "bread.md").write_text(
        "# Bread\n\nSourdough rises slowly because wild yeast ferments the dough overnight.\n", encoding="utf-8")

    with Library(tmp_path / "data", settings=Settings(embedding_backend="onnx-int8"), purpose="tests") as lib:
        assert lib.embedder.backend == "onnx-int8"
        # The bundled model's export made at set-up (shipped by the installed
        # app) is used: nothing is exported into the library's data folder.
        assert lib.embedder.cache_dir.parent == shipped_onnx
        assert not (tmp_path / "data" / "models" / "onnx-int8").exists()
        lib.indexer.ingest([docs])
        hits = lib.retriever.search("How does a sailboat change direction against the wind?", k=3,
                                    mode="vector").hits

    assert Path(hits[0].chunk.path).name == "boats.md"


def test_a_library_indexed_with_torch_is_indexed_again_on_the_new_default_and_says_so(
    tmp_path: Path, torch_embedder, onnx_embedder
) -> None:
    """Libraries made before int8 became the default (or by a source install on
    torch) are indexed again from their documents, with a message; the two
    kinds of vectors are never mixed, and a reader is told how to get there."""
    from app.core.library import Library

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nA short note about lighthouses and their keepers.\n", encoding="utf-8")
    (docs / "bread.md").write_text("# Bread\n\nSourdough rises slowly overnight.\n", encoding="utf-8")
    data = tmp_path / "data"
    with Library(data, settings=Settings(embedding_backend="torch"), purpose="tests") as lib:
        lib.use_embedder(torch_embedder)
        lib.indexer.ingest([docs])
        assert lib.catalog.indexed_chunk_count() == 2

    # A reader cannot re-index: it is told how.
    with Library(data, writer=False, purpose="tests") as lib:
        with pytest.raises(StoreError) as caught:
            lib.use_embedder(onnx_embedder)
    assert "never mixes" in str(caught.value) and "docent ingest" in str(caught.value)

    with Library(data, purpose="tests") as lib:  # the default backend
        assert lib.repair is not None
        message = lib.repair.message
        assert "standard (full-precision)" in message and "faster (ONNX int8)" in message
        assert "2 file(s) are being indexed again" in message
        assert lib.catalog.indexed_chunk_count() == 0
        assert {f.status for f in lib.catalog.files()} == {"pending"}
        reindexed = [r["data"] for r in lib.audit.records() if r.get("event") == "library_reindexed"]
        assert reindexed == [{"reason": "embedding_backend", "from": "torch", "to": "onnx-int8",
                              "files_to_reindex": 2, "user": local_user()}]
        lib.use_embedder(onnx_embedder)
        report = lib.indexer.ingest(lib.rebuild_roots())
        assert not report.failed
        assert lib.vectors.count() == lib.catalog.indexed_chunk_count() == 2
        assert lib.catalog.get_meta("embedder") == f"{onnx_embedder.name}:{onnx_embedder.dim}:onnx-int8"
        hits = lib.retriever.search("Who looks after a lighthouse?", k=1, mode="vector").hits
        assert Path(hits[0].chunk.path).name == "note.md"

    with Library(data, purpose="tests") as lib:  # once done, nothing more to do
        assert lib.repair is None and lib.catalog.indexed_chunk_count() == 2


def test_an_empty_library_takes_the_new_backend(tmp_path: Path, torch_embedder, onnx_embedder) -> None:
    from app.core.library import Library

    with Library(tmp_path / "data", purpose="tests") as lib:
        lib.use_embedder(torch_embedder)  # records torch, but nothing is indexed yet
    with Library(tmp_path / "data", purpose="tests") as lib:
        lib.use_embedder(onnx_embedder)
        assert lib.catalog.get_meta("embedder") == f"{onnx_embedder.name}:{onnx_embedder.dim}:onnx-int8"


def test_a_failed_export_says_which_folder_and_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime.quantization

    from app.core.models.embedder import OnnxInt8Embedder

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    # Fault injection: the quantiser fails after the fp32 export was written.
    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", broken)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as caught:
        OnnxInt8Embedder(bundled_embedding_model(), cache)

    message = str(caught.value)
    assert str(cache) in message and "No space left on device" in message
    assert "standard embedding backend" in message
    assert list(cache.iterdir()) == []  # the temporary export folder was removed


def test_an_unwritable_cache_location_gives_the_same_clear_error(tmp_path: Path) -> None:
    from app.core.models.embedder import OnnxInt8Embedder

    blocker = tmp_path / "models"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    with pytest.raises(ModelError, match="faster \\(ONNX int8\\) embedding model in .*models"):
        OnnxInt8Embedder(bundled_embedding_model(), blocker / "onnx-int8")


def test_an_unknown_backend_in_the_settings_is_named() -> None:
    from app.core.models.embedder import make_embedder

    with pytest.raises(ModelError, match="'gpu-fp8'"):
        make_embedder(bundled_embedding_model(), backend="gpu-fp8")
