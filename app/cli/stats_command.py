"""``docent stats``: recent latency, throughput, failures and error budgets."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from app.cli.common import data_dir, emit
from app.cli.parser import EXIT_OK


def _seconds(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _spread(d: dict[str, Any]) -> str:
    return f"p50 {_seconds(d['p50'])} · p95 {_seconds(d['p95'])}"


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    """Print the activity store's figures for the chosen window (``--json``: as one object)."""
    from app.config import DataPaths, Settings
    from app.core import stats
    from app.core.stores.activity import ActivityStore

    paths = DataPaths(data_dir(args))
    settings = Settings.load(paths.settings)
    store = ActivityStore(paths.activity, readonly=True)
    try:
        figures = stats.summarise(store, settings, args.window)
    finally:
        store.close()
    if args.json:
        emit(figures, out)
        return EXIT_OK
    a, ix, rq = figures["answers"], figures["indexing"], figures["requests"]
    tps = a["tokens_per_second"]
    lines = [f"Activity in the last {args.window} (since {figures['since']}), from {paths.activity}", ""]
    if a["count"]:
        lines.append(f"Answers       {a['count']:>6,}  first token {_spread(a['time_to_first_token_ms'])}"
                     + (f" · writing {tps['p50']:.0f} tokens/s (p50)" if tps["p50"] is not None else "")
                     + f" · {a['declined']} declined, {a['stopped']} stopped, {a['errors']} errors")
    else:
        lines.append("Answers            0")
    cache = a.get("cache") or {}
    if cache.get("lookups"):
        lines.append(f"Answer cache  {cache['lookups']:>6,}  {cache['hits']:,} answered from the cache "
                     f"({cache['hit_ratio']:.0%} hit ratio)")
    r = figures["retrieval_ms"]
    lines.append(f"Retrieval     {r['count']:>6,}" + (f"  {_spread(r)}" if r["count"] else ""))
    lines.append(f"Searches      {figures['searches']['count']:>6,}")
    if ix["files"]:
        speed = f" · {ix['chunks_per_second']:,.0f} chunks/s" if ix["chunks_per_second"] else ""
        lines.append(f"Indexing      {ix['files']:>6,} files  {ix['indexed']:,} indexed, {ix['failed']:,} failed "
                     f"(the file's problem), {ix['errors']:,} errors · {ix['chunks']:,} chunks{speed}")
    else:
        lines.append("Indexing           0 files")
    lines.append(f"API requests  {rq['count']:>6,}" + (f"  {rq['4xx']:,} refused (4xx), {rq['5xx']:,} failed (5xx) · "
                                                        f"{_spread(rq['duration_ms'])}" if rq["count"] else ""))
    lines += ["", "Objectives (error budgets):"]
    for o in figures["objectives"]:
        mark = {"fast": "!! ", "slow": "!  "}.get(o["alert"] or "", "   ")
        lines.append(f"{mark}{o['message']}")
    out.write("\n".join(lines) + "\n")
    return EXIT_OK
