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


def main(quick: bool = False, spare_core: bool = False) -> dict[str, object]:
    """Ingest vs bare encode; ``spare_core``: embedding (ours and raw alike)
    leaves one core free, as on a machine with a core more than torch uses."""
    from app.core.library import Library

    threads = None
    if spare_core:
        import torch

        threads = max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="docent-bench-ingest-"))
    name = corpus(work / "docs", quick, spare_core)
    with Library(work / "data", purpose="bench") as lib:
        lib.embedder  # noqa: B018 - model loading is not ingest
        lib.vectors  # noqa: B018
        t = time.perf_counter()
        report = lib.indexer.ingest([work / "docs"])
        ours_s = time.perf_counter() - t
        texts = [c.text for c in lib.catalog.chunks(sorted(lib.catalog.all_chunk_ids())).values()]
        pages = sum(f.pages or 0 for f in lib.catalog.files())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The reader processes have ended with the library: their peak is the children's.
    reader_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_embedding_model()), device="cpu")
    t = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    raw_s = time.perf_counter() - t
    return {
        "corpus": name,
        "files": report.indexed,
        "pages": pages,
        "chunks": len(texts),
        "docent_ingest_s": round(ours_s, 2),
        "raw_encode_s": round(raw_s, 2),
        "docent_chunks_per_s": round(len(texts) / ours_s, 1),
        "raw_chunks_per_s": round(len(texts) / raw_s, 1),
        "throughput_ratio": round(raw_s / ours_s, 3),
        "embed_threads": threads or "torch default",
        "peak_rss_mb": round(peak_mb),
        "reader_peak_rss_mb": round(reader_mb),
    }


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
