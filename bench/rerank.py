"""The reranker on onnxruntime (Docent's default) against the same model on torch.

    .venv/bin/python bench/rerank.py [--quick] [--out PATH]

The cross-encoder is the one ``make eval`` trains (.cache/reranker) when it
is there; otherwise MiniLM-L6 (the bundled embedding model's weights) with a
one-score head, the size and shape of the usual ms-marco-MiniLM-L-6-v2
reranker (its scores mean nothing, its cost is the same). Questions are the
development sets' (../shared/eval); the passages are real technical prose
that every machine has: the standard library's module documentation, cut
into passages of about 700 characters. Each question has its passages
scored 20 at a time (the app's rerank depth), by sentence-transformers'
``CrossEncoder.predict`` on torch and by Docent's ``Reranker`` on
onnxruntime, alternating rounds in the same run; reported: milliseconds per
question, the ratio, load times, and the largest score difference.
"""

from __future__ import annotations

import argparse
import json
import platform
import pydoc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Python puts this script's folder first on the path, where bench/onnx.py would
# shadow the onnx package the exporter imports: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from app.config import bundled_embedding_model, enforce_offline  # noqa: E402

enforce_offline()

from app.core.answering.rerank import Reranker  # noqa: E402

DEPTH = 20
MODULES = ("argparse", "asyncio", "collections", "csv", "datetime", "email", "json", "logging", "os",
           "pathlib", "re", "sqlite3", "subprocess", "threading", "unittest", "urllib.parse", "zipfile")


def passages(chars: int = 700) -> list[str]:
    """Module documentation as plain text, cut at paragraph ends into ~``chars`` pieces."""
    out: list[str] = []
    for name in MODULES:
        text = pydoc.render_doc(name, renderer=pydoc.plaintext)
        piece = ""
        for para in (p.strip() for p in text.split("\n\n")):
            if not para:
                continue
            piece = f"{piece}\n\n{para}" if piece else para
            if len(piece) >= chars:
                out.append(" ".join(piece.split())[: 2 * chars])
                piece = ""
    return out


def questions(limit: int) -> list[str]:
    out: list[str] = []
    for name in ("pydocs", "pdfdocs"):
        path = ROOT.parent / "shared" / "eval" / name / "questions.jsonl"
        if path.is_file():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    return out[:limit]


def cross_encoder(work: Path) -> tuple[Path, str]:
    trained = ROOT / ".cache" / "reranker"
    if (trained / "config.json").is_file():
        return trained, "trained by make eval (.cache/reranker)"
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(7)
    model = CrossEncoder(str(bundled_embedding_model()), num_labels=1, local_files_only=True)
    folder = work / "minilm-cross-encoder"
    model.save(str(folder))
    return folder, "MiniLM-L6 with a one-score head, the shape of ms-marco-MiniLM-L-6-v2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "rerank.json")
    args = parser.parse_args()
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix="docent-bench-rerank-") as tmp:
        work = Path(tmp)
        folder, described = cross_encoder(work)
        texts = passages()
        asked = questions(4 if args.quick else 24)
        rounds = 1 if args.quick else 3

        started = time.perf_counter()
        ours = Reranker(folder, cache_root=work / "cache")
        ours.load()  # exports once (torch), then loads the ONNX session
        export_and_load_s = time.perf_counter() - started
        started = time.perf_counter()
        again = Reranker(folder, cache_root=work / "cache")
        again.load()  # the export made: what every later start costs
        onnx_load_s = time.perf_counter() - started
        started = time.perf_counter()
        raw = CrossEncoder(str(folder), local_files_only=True, device="cpu")
        torch_load_s = time.perf_counter() - started

        timings: dict[str, list[float]] = {"onnx": [], "torch": []}
        worst = 0.0
        for r in range(rounds):
            for i, question in enumerate(asked):
                start = (i * 7) % max(1, len(texts) - DEPTH)
                batch = texts[start:start + DEPTH]
                order = ("onnx", "torch") if (i + r) % 2 == 0 else ("torch", "onnx")
                scores: dict[str, list[float]] = {}
                for who in order:
                    t0 = time.perf_counter()
                    if who == "onnx":
                        scores[who] = again.score(question, batch)
                    else:
                        scores[who] = [float(s) for s in raw.predict([(question, t) for t in batch], batch_size=16,
                                                                     show_progress_bar=False)]
                    timings[who].append((time.perf_counter() - t0) * 1000)
                worst = max(worst, max(abs(a - b) for a, b in zip(scores["onnx"], scores["torch"])))

    onnx_ms, torch_ms = statistics.median(timings["onnx"]), statistics.median(timings["torch"])
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "model": described,
        "questions": len(asked),
        "rounds": rounds,
        "passages_per_question": DEPTH,
        "passage_chars_median": int(statistics.median(len(t) for t in texts)),
        "onnx_ms_median": round(onnx_ms, 1),
        "torch_ms_median": round(torch_ms, 1),
        "onnx_vs_torch": round(onnx_ms / torch_ms, 3),
        "max_abs_score_diff": float(f"{worst:.2e}"),
        "first_export_and_load_s": round(export_and_load_s, 2),
        "onnx_load_s": round(onnx_load_s, 2),
        "torch_load_s": round(torch_load_s, 2),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
