"""Ingest throughput: `docent ingest`'s pipeline vs a bare
`SentenceTransformer.encode` of the very same chunks, in the same run.

Corpus: the R manuals from Debian's r-doc-pdf (multi-hundred-page PDFs), or
generated PDFs when that package is absent.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import bundled_embedding_model, enforce_offline  # noqa: E402

enforce_offline()

R_MANUALS = Path("/usr/share/R/doc/manual")


def corpus(folder: Path, quick: bool = False, spare_core: bool = False) -> str:
    folder.mkdir(parents=True)
    manuals = sorted(R_MANUALS.glob("R-*.pdf")) if R_MANUALS.is_dir() else []
    if quick:
        manuals = [m for m in manuals if m.name in ("R-FAQ.pdf", "R-data.pdf")]
    elif spare_core:
        # Four manuals: with one thread embedding is twice as slow.
        manuals = [m for m in manuals if m.name in ("R-FAQ.pdf", "R-data.pdf", "R-intro.pdf", "R-lang.pdf")]
    if manuals:
        for pdf in manuals:
            shutil.copy(pdf, folder / pdf.name)
        return f"{len(manuals)} R manuals (r-doc-pdf)"
    from tests import corpus as made

    for i in range(20):
        made.make_pdf(folder / f"generated-{i:02d}.pdf",
                      [f"Section {i}.{p}: " + "The harbour board reviewed the ledger. " * 40 for p in range(30)])
    return "20 generated PDFs of 30 pages"


def _ingest(work: Path, backend: str) -> tuple[float, list[str], int, object]:
    """One full ingest of ``work/docs`` into a fresh data folder on ``backend``:
    seconds, the chunks' texts, the pages, and the loaded embedder."""
    from app.config import Settings
    from app.core.library import Library

    data = work / f"data-{backend}"
    with Library(data, settings=Settings(embedding_backend=backend), purpose="bench") as lib:
        embedder = lib.embedder  # model loading is not ingest
        lib.vectors  # noqa: B018
        t = time.perf_counter()
        report = lib.indexer.ingest([work / "docs"])
        seconds = time.perf_counter() - t
        assert not report.failed, report.failed
        texts = [c.text for c in lib.catalog.chunks(sorted(lib.catalog.all_chunk_ids())).values()]
        pages = sum(f.pages or 0 for f in lib.catalog.files())
    shutil.rmtree(data, ignore_errors=True)
    return seconds, texts, pages, embedder


def main(quick: bool = False, spare_core: bool = False) -> dict[str, object]:
    """Ingest vs bare encode, on both embedding backends in the same run.

    The top-level figures are the default backend's (ONNX int8 since
    2026-12-02; torch before, the same keys): Docent's ingest against a bare
    encode of the same chunks by that backend. ``torch`` holds the same pair
    for the full-precision backend, and ``int8_vs_torch`` the ingest speed-up.
    ``spare_core``: torch only, embedding (ours and raw alike) on one core
    fewer, as on a machine with a core more than torch uses.
    """
    threads = None
    if spare_core:
        import torch

        threads = max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="docent-bench-ingest-"))
    name = corpus(work / "docs", quick, spare_core)
    files = len(list((work / "docs").iterdir()))
    backends = ["torch"] if spare_core else ["onnx-int8", "torch"]
    runs: dict[str, dict[str, float]] = {}
    texts: list[str] = []
    pages = 0
    for backend in backends:
        ours_s, texts, pages, embedder = _ingest(work, backend)
        if backend == "torch":
            # The raw library itself, not Docent's wrapper of it.
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(bundled_embedding_model()), device="cpu")
            t = time.perf_counter()
            model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
            raw_s = time.perf_counter() - t
            raw = "SentenceTransformer.encode"
        else:
            # The backend's encode alone (onnxruntime + tokenizers, batches of
            # 32): what the ingest pipeline has to keep up with.
            t = time.perf_counter()
            embedder.encode(texts)  # type: ignore[attr-defined]
            raw_s = time.perf_counter() - t
            raw = "OnnxInt8Embedder.encode (onnxruntime)"
        runs[backend] = {"docent_ingest_s": round(ours_s, 2), "raw_encode_s": round(raw_s, 2),
                         "docent_chunks_per_s": round(len(texts) / ours_s, 1),
                         "raw_chunks_per_s": round(len(texts) / raw_s, 1),
                         "throughput_ratio": round(raw_s / ours_s, 3), "raw": raw}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The reader processes have ended with the library: their peak is the children's.
    reader_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    shutil.rmtree(work, ignore_errors=True)
    default = runs[backends[0]]
    out: dict[str, object] = {
        "corpus": name,
        "files": files,
        "pages": pages,
        "chunks": len(texts),
        "backend": backends[0],
        **{k: v for k, v in default.items() if k != "raw"},
        "raw": default["raw"],
        "embed_threads": threads or "backend default",
        "peak_rss_mb": round(peak_mb),
        "reader_peak_rss_mb": round(reader_mb),
    }
    if "torch" in runs and backends[0] != "torch":
        out["torch"] = runs["torch"]
        out["int8_vs_torch"] = round(runs["torch"]["docent_ingest_s"] / runs["onnx-int8"]["docent_ingest_s"], 2)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two short manuals")
    ap.add_argument("--spare-core", action="store_true", help="embed on one core fewer than the machine has")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "ingest.json")
    args = ap.parse_args()
    out = main(args.quick, args.spare_core)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
