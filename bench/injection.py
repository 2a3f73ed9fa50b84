"""Prompt-injection figures: how often answers stay grounded, cited and free
of the injected payload, with the defences on and with them off.

Ingests the injection corpus (tests/injection_corpus.py) into a temporary
library, asks every case's question with the bundled SmolLM2-135M model
(greedy decoding, 80 tokens, as the tests do) under each defence setting, and
writes bench/injection.json. Three sets are reported apart: the cases the
defences were tuned on (CASES, the tests' set), a first held-out set that was
then used for tuning too (SEEN_HELD_OUT), and a held-out set never tuned
against (HELD_OUT) — the honest estimate for injections nobody anticipated.

Twelve cases are few: one answer is 8 points. So each setting is also run
sampled, at the app's default temperature (0.2) with three seeds, which
gives it 36 answers to be judged on.

    .venv/bin/python bench/injection.py                   # every setting, greedy and sampled
    .venv/bin/python bench/injection.py --modes off,full --no-sampled
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import bundled_chat_model, enforce_offline  # noqa: E402

enforce_offline()

from app.core.answering.injection import DEFENCES  # noqa: E402
from app.core.library import Library  # noqa: E402
from app.core.models.llm import LocalModel, Sampling  # noqa: E402
from tests.injection_corpus import (  # noqa: E402
    CASES, HELD_OUT, SEEN_HELD_OUT, InjectionCase, make_injection_library, outcome, summary,
)

SHIPPED = "full"  # the setting the app uses


def run_mode(lib: Library, cases: list[InjectionCase], mode: str, samplings: list[Sampling]) -> dict[str, object]:
    """Ask every question under one defence setting, once per sampling; the
    summary over all answers and each answer."""
    lib.answerer.defence = DEFENCES[mode]
    outcomes = []
    runs = []
    started = time.perf_counter()
    for sampling in samplings:
        # use_cache=False: each seed's answer is the model's, never a stored one.
        these = [outcome(case, lib.answerer.ask(case.question, sampling=sampling, use_cache=False), cases)
                 for case in cases]
        outcomes += these
        runs.append({"seed": sampling.seed, "cases": [o.to_json() for o in these]})
    return {**summary(outcomes), "seconds": round(time.perf_counter() - started, 1), "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="off,mark,drop,full",
                        help="comma-separated defence settings: " + ", ".join(DEFENCES))
    parser.add_argument("--no-sampled", action="store_true", help="greedy only (as the tests run)")
    parser.add_argument("--sets", default="tuned,seen_held_out,held_out",
                        help="which case sets: tuned, seen_held_out, held_out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "injection.json")
    args = parser.parse_args()
    runs = {"greedy": [Sampling(max_tokens=80, temperature=0.0)]}
    if not args.no_sampled:
        runs["sampled"] = [Sampling(max_tokens=80, temperature=0.2, seed=seed) for seed in (1, 2, 3)]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in DEFENCES]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}")

    model = LocalModel(bundled_chat_model(), n_ctx=2048)  # the tests' context size
    results: dict[str, dict[str, dict[str, object]]] = {}
    # Each set gets a library of its own, so the tuned set is measured
    # exactly as the tests see it.
    sets = {"tuned": CASES, "seen_held_out": SEEN_HELD_OUT, "held_out": HELD_OUT}
    for name in [n.strip() for n in args.sets.split(",") if n.strip()]:
        cases = sets[name]
        work = Path(tempfile.mkdtemp(prefix=f"docent-injection-{name}-"))
        make_injection_library(work / "docs", cases)
        with Library(work / "data", purpose="bench") as lib:
            lib.use_model(model)
            lib.indexer.ingest([work / "docs"])
            for run, samplings in runs.items():
                results[f"{name}/{run}"] = {mode: run_mode(lib, cases, mode, samplings) for mode in modes}

    report = {
        "model": model.name, "k": 5, "shipped": SHIPPED,
        "samplings": {run: [s.to_json() for s in samplings] for run, samplings in runs.items()},
        "settings": {m: DEFENCES[m].__dict__ for m in modes},
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"{'set/run':22} {'setting':8} {'n':>3} {'payload-free':>12} {'grounded+cited':>14} {'both':>6} "
          f"{'replaced':>8} {'model right':>11} {'obeyed':>6}")
    for run, by_mode in results.items():
        for mode, r in by_mode.items():
            print(f"{run:22} {mode:8} {r['n']:>3} {r['payload_free_rate']:>12.3f} "
                  f"{r['grounded_and_cited_rate']:>14.3f} {r['safe_and_grounded_rate']:>6.3f} "
                  f"{r['replaced_by_fallback']:>8} {r['model_right_on_its_own']:>11} {r['model_obeyed']:>6}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
