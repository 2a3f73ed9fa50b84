"""`make bench`: every benchmark in its own process, one results file, the
README's table and a chart.

Each figure is measured beside the raw library doing the same work in the
same run, so the ratios hold even when the machine's speed drifts.

Usage:
    python bench/run.py            # all of them; writes bench/results.json,
                                   # docs/bench.png and the README table
    python bench/run.py --quick    # a smoke run into a temporary folder;
                                   # the README is left alone
    python bench/run.py --only ingest answer
    python bench/run.py --reuse search   # take bench/search.json as measured
                                         # (e.g. the hour-long run at a
                                         # million chunks, run on its own)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.stores.vectors import SEARCH_EF  # noqa: E402  (the HNSW rows say which depth Docent uses now)
from tools.readme import replace_section  # noqa: E402

PARTS = ("ingest", "ingest_spare", "sync", "search", "answer", "window", "onnx", "rerank", "api", "team", "tracing",
         "ocr")
# Parts that are another run of a script with extra arguments.
VARIANTS = {"ingest_spare": ("ingest", ["--spare-core"])}


def run_part(name: str, out: Path, quick: bool) -> dict[str, Any]:
    """Run ``bench/<name>.py`` in a fresh process (so its peak memory is its own)."""
    script, extra = VARIANTS.get(name, (name, []))
    if quick and extra:
        return {}
    cmd = [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--out", str(out), *extra]
    if quick:
        cmd.append("--quick")
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    started = time.perf_counter()
    print(f"== {name}", flush=True)
    done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"bench/{name}.py failed (exit code {done.returncode})")
    result = json.loads(out.read_text(encoding="utf-8"))
    print(f"   {time.perf_counter() - started:.0f} s", flush=True)
    return result


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100 and digits:
        digits = 0
    return f"{value:,.{digits}f}{unit}"


def rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: what, Docent, raw, ratio, target, met."""
    out: list[dict[str, Any]] = []

    def add(what: str, ours: str, raw: str, ratio: float | None, target: str, met: bool | None) -> None:
        out.append({"what": what, "docent": ours, "raw": raw,
                    "ratio": None if ratio is None else round(ratio, 3), "target": target, "met": met})

    if "ingest" in r:
        i = r["ingest"]
        add(f"Ingest: {i['corpus']}, {i['pages']} pages, {i['chunks']:,} chunks",
            f"{i['docent_chunks_per_s']} chunks/s ({i['docent_ingest_s']} s)",
            f"{i['raw_chunks_per_s']} chunks/s ({i['raw_encode_s']} s, bare encode)",
            i["throughput_ratio"], "≥ 0.9×", i["throughput_ratio"] >= 0.9)
        if i.get("torch"):
            t = i["torch"]
            add("Before: the same ingest on the torch fp32 backend (same run)",
                f"{t['docent_chunks_per_s']} chunks/s ({t['docent_ingest_s']} s)",
                f"{t['raw_chunks_per_s']} chunks/s ({t['raw_encode_s']} s, bare encode)",
                t["throughput_ratio"], "–", None)
            add("Ingest speed-up, ONNX int8 (default) vs torch fp32, same run",
                f"{i['docent_chunks_per_s']} chunks/s", f"{t['docent_chunks_per_s']} chunks/s (torch)",
                i["int8_vs_torch"], "≥ 2.5×", i["int8_vs_torch"] >= 2.5)
    if r.get("ingest_spare"):
        i = r["ingest_spare"]
        add(f"Ingest with a core spare (embedding on {i['embed_threads']} of {os.cpu_count()} cores, ours and raw): "
            f"{i['pages']} pages, {i['chunks']:,} chunks",
            f"{i['docent_chunks_per_s']} chunks/s ({i['docent_ingest_s']} s)",
            f"{i['raw_chunks_per_s']} chunks/s ({i['raw_encode_s']} s, bare encode)",
            i["throughput_ratio"], "≥ 0.9×", i["throughput_ratio"] >= 0.9)
    if "sync" in r:
        s = r["sync"]["resync"]
        add(f"Re-sync: reopen an unchanged {s['files']:,}-file library",
            f"{s['reopen_unchanged_s']} s ({s['files_read_on_reopen']} files read)",
            f"{s['full_ingest_s']} s (its full ingest)", s["ratio"], "≤ 1 %", s["ratio"] <= 0.01)
    if r.get("search_fts5"):
        # The last run on SQLite FTS5, kept so the before and after sit side by side.
        for size in r["search_fts5"]["sizes"]:
            add(f"Before: hybrid search p50 / p95 at {size['chunks']:,} chunks, keyword index SQLite FTS5 "
                f"({r['search_fts5'].get('measured', 'earlier run')})",
                f"{_fmt(size['hybrid_p50_ms'])} / {_fmt(size['hybrid_p95_ms'])} ms",
                f"{_fmt(size['raw_p50_ms'])} / {_fmt(size['raw_p95_ms'])} ms (Chroma + FTS5)",
                size["p95_ratio"], "p95 ≤ 50 ms" if size["chunks"] >= 100_000 else "–",
                size["hybrid_p95_ms"] <= 50 if size["chunks"] >= 100_000 else None)
    if "search" in r:
        targets = {100_000: 30, 1_000_000: 100}
        for size in r["search"]["sizes"]:
            target = targets.get(size["chunks"])
            raw_kw = "tantivy" if "tantivy" in size["raw_parts_ms"] else "FTS5"
            add(f"Hybrid search p50 / p95 at {size['chunks']:,} chunks (query embedding included)",
                f"{_fmt(size['hybrid_p50_ms'])} / {_fmt(size['hybrid_p95_ms'])} ms",
                f"{_fmt(size['raw_p50_ms'])} / {_fmt(size['raw_p95_ms'])} ms (Chroma + {raw_kw})",
                size["p95_ratio"], f"p95 ≤ {target} ms" if target else "–",
                size["hybrid_p95_ms"] <= target if target else None)
            if "fts5_p95_ms" in size and size["chunks"] >= 100_000:
                add(f"Keyword search alone p50 / p95 at {size['chunks']:,} chunks: tantivy vs SQLite FTS5, "
                    "same chunks, same run",
                    f"{_fmt(size['keyword_p50_ms'])} / {_fmt(size['keyword_p95_ms'])} ms (Docent, tantivy)",
                    f"{_fmt(size['fts5_p50_ms'])} / {_fmt(size['fts5_p95_ms'])} ms (bare FTS5 bm25 LIMIT)",
                    round(size["keyword_p95_ms"] / size["fts5_p95_ms"], 3) if size["fts5_p95_ms"] else None,
                    "–", None)
            if "keywords_mb" in size and size["chunks"] >= 100_000:
                add(f"Stores at {size['chunks']:,} chunks: disk and memory",
                    f"keyword index {_fmt(size['keywords_mb'], ' MB')}, catalog {_fmt(size['catalog_mb'], ' MB')}, "
                    f"Chroma {_fmt(size['chroma_mb'], ' MB')}; process RSS {_fmt(size['rss_mb'], ' MB')}; "
                    f"HNSW recall@{r['search']['candidate_depth']} {size['hnsw_recall_at_depth']:.3f}"
                    + (f" (ef_search {size['hnsw_ef_search']})" if "hnsw_ef_search" in size else ""),
                    f"FTS5 table {_fmt(size['fts5_mb'], ' MB')}", None, "–", None)
            if size.get("hnsw_sweep") and size["chunks"] >= 10_000:
                add(f"HNSW search depth at {size['chunks']:,} chunks: recall@{r['search']['candidate_depth']} "
                    "against exact search / bare Chroma query p95, by ef_search",
                    "; ".join(f"{w['ef_search']}: {w['recall_at_depth']:.3f} / {_fmt(w['chroma_p95_ms'])} ms"
                              for w in size["hnsw_sweep"]),
                    "–", None, f"measured at {size.get('hnsw_ef_search', 100)}; Docent now {SEARCH_EF}"
                    if size.get("hnsw_ef_search", 100) != SEARCH_EF else f"Docent: {SEARCH_EF}", None)
    if "answer" in r:
        a = r["answer"]
        add(f"Answer: first token ({a['prompt_tokens_median']:.0f}-token prompt, cold)",
            f"{_fmt(a['docent_first_token_ms'], ' ms')}", f"{_fmt(a['raw_first_token_ms'], ' ms')}",
            a["first_token_ratio"], "≤ 1.1×", (a["first_token_ratio"] or 9) <= 1.1)
        if a.get("sources_after_retrieve_ms_median") is not None:
            add("Answer: sources and the top one's best sentence on screen, after retrieval",
                f"{_fmt(a['sources_after_retrieve_ms_median'], ' ms')} "
                f"({_fmt(a['sources_shown_ms_median'], ' ms')} after the question)",
                f"{_fmt(a['docent_first_token_ms'], ' ms')} (first token)", None, "≤ 500 ms",
                a["sources_after_retrieve_ms_median"] <= 500)
            flash = a.get("raw_flash_attention_first_token_ms")
            add("Answer: first token after a typical question (absolute, this machine)",
                f"{_fmt(a['docent_first_token_ms'], ' ms')}",
                f"{_fmt(flash, ' ms')} (raw, flash attention on)" if flash else "–", None, "≤ 2500 ms",
                a["docent_first_token_ms"] <= 2500)
        add("Answer: decode rate", f"{_fmt(a['docent_decode_tps'], ' tok/s')}",
            f"{_fmt(a['raw_decode_tps'], ' tok/s')}", a["decode_ratio"], "≥ 0.95×",
            (a["decode_ratio"] or 0) >= 0.95)
        add(f"Follow-up first token, KV cache reused vs cold ({a['follow_up_prompt_tokens_median']:.0f} tokens)",
            f"{_fmt(a['follow_up_warm_first_token_ms'], ' ms')}",
            f"{_fmt(a['follow_up_cold_first_token_ms'], ' ms')} (same prompt, cold)",
            a["follow_up_ratio"], "≤ 0.5×", (a["follow_up_ratio"] or 9) <= 0.5)
        if a.get("cache_hits"):
            add(f"Cached answer: the same question again ({a['cache_hits']} questions), whole reply",
                f"{_fmt(a['cache_hit_ms_median'], ' ms')}", f"{_fmt(a['full_answer_ms_median'], ' ms')} (full answer)",
                a["cache_hit_ratio"], "–", None)
    if "window" in r:
        w = r["window"]
        add("Window: start-up to a visible window (models load behind it)",
            f"{w['window_visible_s']} s (models ready {w['models_ready_s']} s)", "–", None, "–", None)
        add(f"Window: longest GUI stall while indexing {w['ingest_files']} files",
            f"{w['longest_stall_ingest_ms']} ms", "–", None, "< 50 ms", w["longest_stall_ingest_ms"] < 50)
        add("Window: longest GUI stall while answering", f"{w['longest_stall_answer_ms']} ms", "–",
            None, "< 50 ms", w["longest_stall_answer_ms"] < 50)
    if "ingest" in r or "answer" in r:
        mem = []
        if "ingest" in r:
            mem.append(f"ingest {r['ingest']['peak_rss_mb']:,} MB (+ reader {r['ingest'].get('reader_peak_rss_mb', 0):,} MB)")
        if "answer" in r:
            mem.append(f"answer {r['answer']['peak_rss_mb']:,} MB")
        add("Peak memory (RSS)", "; ".join(mem), "–", None, "–", None)
    if "onnx" in r:
        o = r["onnx"]
        rate = o["speed"]["chunks_per_s"]
        q = o["quality"]
        hits = {b: q[b]["hybrid"]["recall_at_5_hits"] for b in ("torch", "onnx-int8")}
        add("Optional ONNX int8 embedding vs torch fp32 (encode; pydocs recall@5 hybrid)",
            f"{rate['onnx-int8']} chunks/s, recall@5 {hits['onnx-int8']}/{q['onnx-int8']['hybrid']['n']}",
            f"{rate['torch']} chunks/s, recall@5 {hits['torch']}/{q['torch']['hybrid']['n']}",
            o["speed"]["speedup"], "kept if ≤ 1 recall@5 lost", o["decision"]["keep"])
    if "rerank" in r:
        k = r["rerank"]
        add(f"Reranker on onnxruntime (default; no torch at run time) vs the same cross-encoder on torch: "
            f"{k['passages_per_question']} passages of ~{k['passage_chars_median']:,} characters per question, "
            f"{k['questions']} questions × {k['rounds']} ({k['model']})",
            f"{_fmt(k['onnx_ms_median'], ' ms')} per question (loads in {k['onnx_load_s']} s; "
            f"largest score difference {k['max_abs_score_diff']:.0e})",
            f"{_fmt(k['torch_ms_median'], ' ms')} (CrossEncoder.predict, torch)",
            k["onnx_vs_torch"], "same scores (≤ 1e-4)", k["max_abs_score_diff"] <= 1e-4)
    if "api" in r:
        api_rows(r["api"], add)
    if "team" in r:
        t = r["team"]
        a = t["audit"]
        add(f"Team library load: {t['users']} users (one key each) asking ({t['ask_share']:.0%}, streamed, "
            f"{t['answer_tokens']} tokens) and searching at once for {t['seconds']:.0f} s against one `docent serve` "
            f"on 127.0.0.1 (in-process model; {t['corpus']}, {t['chunks']:,} chunks)",
            f"{t['requests']:,} requests ({_statuses(t['statuses'])}; {t['answered_by_model']:,} questions answered by "
            f"the model); search p50 / p95 "
            f"{_fmt(t['search_p50_ms'])} / {_fmt(t['search_p95_ms'])} ms; first token p50 / p95 "
            f"{_fmt(_s(t['first_token_p50_ms']))} / {_fmt(_s(t['first_token_p95_ms']))} s; audit: "
            f"{a['recorded_once']:,} of {a['records_expected']:,} records exactly once",
            "–", None, "no 5xx; every request audited exactly once", t["met"])
    if "tracing" in r:
        tracing_rows(r["tracing"], add)
    if "ocr" in r:
        o = r["ocr"]
        latin = [p for p in o["pages"] if p["latin"]]
        add(f"OCR of scanned PDF pages: {len(latin)} Latin pages (5 fonts, 9–14 pt, 150–300 dpi, "
            "skew, noise), character error rate",
            f"{o['latin_cer_mean']:.1%} mean, {o['latin_cer_max']:.1%} worst; {o['docent_pages_per_s']} pages/s",
            f"rapidocr on the picture itself: {o['raw_pages_per_s']} pages/s",
            o["docent_pages_per_s"] / o["raw_pages_per_s"], "≤ 3 % on Latin pages", o["latin_cer_max"] <= 0.03)
        if o.get("chinese_cer") is not None:
            add("OCR of a scanned Chinese page, character error rate", f"{o['chinese_cer']:.1%}", "–", None,
                "reported", None)
    return out


def tracing_rows(t: dict[str, Any], add: Any) -> None:
    """bench/tracing.py: tracing on (activity store + span file) vs off, interleaved."""
    i, a = t["ingest"], t["answer"]
    target = f"≤ {t['target_ratio']:g}×"
    # What the spans themselves cost (measured per span, times the spans an
    # operation makes): the part of the difference that is tracing, not drift.
    per_span_s = (t["span_cost"]["on_us"] - t["span_cost"]["off_us"]) / 1e6

    def alone(spans: int, seconds: float) -> str:
        return f"spans alone +{spans * per_span_s / seconds * 100:.3f} %"

    add(f"Tracing cost, ingest: {i['corpus']}, {i['chunks']:,} chunks ({i['spans_per_run']:,} spans, "
        f"{i['span_bytes_per_run'] / 1024:,.0f} KB of span file per ingest)",
        f"{i['on_s_median']} s traced ({alone(i['spans_per_run'], i['off_s_median'])})",
        f"{i['off_s_median']} s untraced", i["ratio"], target, t["met"]["ingest"])
    add(f"Tracing cost, answers: {a['answers_per_mode']} cold answers ({a['spans_per_answer']} spans, "
        f"{a['span_bytes_per_answer'] / 1024:,.1f} KB each)",
        f"{a['on_s_median']} s median traced ({alone(a['spans_per_answer'], a['off_s_median'])})",
        f"{a['off_s_median']} s untraced", a["ratio"], target, t["met"]["answer"])


def _s(ms: float | None) -> float | None:
    """Milliseconds as seconds (None stays None)."""
    return None if ms is None else ms / 1000


def _statuses(counts: dict[str, int]) -> str:
    """``{"200": 2990, "503": 10}`` as ``2,990 × 200, 10 × 503``."""
    return ", ".join(f"{n:,} × {status}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def api_rows(a: dict[str, Any], add: Any) -> None:
    """The local API's rows (bench/api.py): served over loopback HTTP vs in process."""
    e = a["embeddings"]
    failed = {**e.get("failed_batched", {}), **{f"{k} (off)": v for k, v in e.get("failed_unbatched", {}).items()}}
    note = f"; failed: {_statuses(failed)}" if failed else ""
    add(f"API embeddings: {e['texts']} one-sentence texts, {e['clients']} concurrent clients, one text per "
        "request (batching on)",
        f"{_fmt(e['api_batched_texts_per_s'])} texts/s (mean batch {e['api_batched_mean_batch']}){note}",
        f"{_fmt(e['in_process_texts_per_s'])} texts/s (one encode call in process)",
        e["vs_in_process"], "≥ 0.8×", e["met"]["vs_in_process"])
    add(f"API embeddings: batching on vs off (the same {e['clients']} clients)",
        f"{_fmt(e['api_batched_texts_per_s'])} texts/s",
        f"{_fmt(e['api_unbatched_texts_per_s'])} texts/s (off; in process one text per call: "
        f"{_fmt(e['in_process_one_text_per_call_texts_per_s'])})",
        e["vs_unbatched"], "≥ 3×", e["met"]["vs_unbatched"])
    f = a["first_token"]
    add("API first token: streamed /v1/chat/completions (model docent) vs Answerer.ask in process, cold",
        _fmt(f["api_first_token_ms_median"], " ms"), _fmt(f["in_process_first_token_ms_median"], " ms"),
        f["ratio"], "≤ 1.1×", f["met"])
    s = a["search"]
    failed_search = f"; failed: {_statuses(s['failed'])}" if s.get("failed") else ""
    add(f"API /v1/search p50 / p95, {s['clients']} concurrent clients ({a['chunks']:,} chunks)",
        f"{_fmt(s['concurrent_p50_ms'])} / {_fmt(s['concurrent_p95_ms'])} ms (one client: "
        f"{_fmt(s['one_client_p50_ms'])} / {_fmt(s['one_client_p95_ms'])} ms){failed_search}",
        f"{_fmt(s['in_process_p50_ms'])} / {_fmt(s['in_process_p95_ms'])} ms (retriever.search, one at a time)",
        None, "–", None)
    t = a["stress"]
    problems = t["other_statuses"] + t["connection_errors"] + t["unfinished"]
    add(f"API stress: {t['connections']:,} concurrent connections, {t['requests']:,} short requests "
        "(embeddings, /health, /v1/search)",
        f"{_statuses(t['statuses'])}{'' if not problems else f' ({problems:,} not 200/429/503+Retry-After)'}; "
        f"latency p50 / p95 / max {t['p50_ms'] / 1000:.1f} / {t['p95_ms'] / 1000:.1f} / {t['max_ms'] / 1000:.1f} s; "
        f"/health after: {t['health_after']}; server peak {t['server_peak_rss_mb']:,} MB",
        "–", None, "all 200, or 429/503 + Retry-After; stays up",
        t["all_answered_or_told_to_retry"] and t["stayed_up"])


def growth(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Cost at 1k/10k/100k chunks: search latency and store time measured;
    ingest time from the measured throughput plus the measured store time."""
    if "search" not in r:
        return []
    rate = r.get("ingest", {}).get("raw_chunks_per_s")
    out = []
    for size in r["search"]["sizes"]:
        n = size["chunks"]
        embed_s = n / rate if rate else None
        out.append({"chunks": n, "hybrid_p50_ms": size["hybrid_p50_ms"], "hybrid_p95_ms": size["hybrid_p95_ms"],
                    "store_s": size["store_s"], "embed_s_est": None if embed_s is None else round(embed_s)})
    return out


def table(results: dict[str, Any]) -> str:
    """The README section, in Markdown."""
    lines = [
        f"Measured by `make bench` on {results['machine']} ({results['date']}). "
        "Each Docent figure is measured next to the raw library doing the same work in the same run.",
        "",
        "| What | Docent | Raw library | Ratio | Target | Met |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        ratio = "–" if row["ratio"] is None else f"{row['ratio']:g}"
        lines.append(f"| {row['what']} | {row['docent']} | {row['raw']} | {ratio} | {row['target']} | {met} |")
    if results.get("growth"):
        lines += ["", "How cost grows (search and store measured; embedding time estimated from the measured "
                  "bare-encode rate):", "",
                  "| Chunks | Search p50 / p95 | Store (catalog + Chroma) | Embedding (est.) |",
                  "|---|---|---|---|"]
        for g in results["growth"]:
            embed = "–" if g["embed_s_est"] is None else f"≈ {g['embed_s_est'] / 60:,.1f} min"
            lines.append(f"| {g['chunks']:,} | {_fmt(g['hybrid_p50_ms'])} / {_fmt(g['hybrid_p95_ms'])} ms "
                         f"| {g['store_s']} s | {embed} |")
    lines += ["", "![Benchmark ratios against their targets](docs/bench.png)"]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    """Bars: each ratio against its target line (Qt paints it; no extra packages)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPen

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - fonts need it
    # The "before" rows are history: the chart shows what Docent is now.
    bars = [r for r in results["rows"] if r["ratio"] is not None and not r["what"].startswith("Before:")]
    w, row_h, left, top = 1100, 46, 470, 60
    h = top + row_h * len(bars) + 50
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    title = QFont()
    title.setPointSize(13)
    title.setBold(True)
    p.setFont(title)
    p.drawText(QRectF(20, 12, w - 40, 30), "Docent ÷ raw library on the same work (green: target met, red: missed, grey: no target)")
    small = QFont()
    small.setPointSize(9)
    p.setFont(small)
    scale_max = 2.0
    span = w - left - 40

    def x(v: float) -> float:
        return left + span * min(v, scale_max) / scale_max

    for i, row in enumerate(bars):
        y = top + i * row_h
        label = row["what"] if len(row["what"]) < 70 else row["what"][:67] + "…"
        p.setPen(QColor("#222"))
        p.drawText(QRectF(10, y, left - 20, row_h - 8), Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap,
                   label)
        color = {True: "#2e9d57", False: "#d0483c", None: "#7a8ca3"}[row["met"]]
        p.fillRect(QRectF(left, y + 10, x(row["ratio"]) - left, row_h - 22), QColor(color))
        text = f"{row['ratio']:g}  ({row['target']})"
        if row["ratio"] > scale_max * 0.8:  # a long bar: its label goes inside it
            p.setPen(QColor("white"))
            p.drawText(QRectF(left + 8, y, x(row["ratio"]) - left - 16, row_h - 4),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, text)
        else:
            p.drawText(QRectF(x(row["ratio"]) + 6, y, 300, row_h - 4), Qt.AlignmentFlag.AlignVCenter, text)
    p.setPen(QPen(QColor("#444"), 1, Qt.PenStyle.DashLine))
    one = x(1.0)
    p.drawLine(int(one), top - 6, int(one), h - 40)
    p.setPen(QColor("#444"))
    for v in (0, 0.5, 1.0, 1.5, 2.0):
        p.drawText(QRectF(x(v) - 20, h - 36, 40, 20), Qt.AlignmentFlag.AlignCenter, f"{v:g}×")
    p.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(str(path))


def update_readme(section: str) -> None:
    readme = ROOT / "README.md"
    if not replace_section(readme, "bench", section):
        text = readme.read_text(encoding="utf-8").rstrip()
        readme.write_text(f"{text}\n\n## Benchmarks\n\n<!-- bench:start -->\n{section}\n<!-- bench:end -->\n",
                          encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run; results go to a temporary folder")
    ap.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts (others are kept from "
                    "bench/results.json)")
    ap.add_argument("--reuse", nargs="+", choices=PARTS, default=[],
                    help="take these parts from bench/<part>.json, measured by running the script on its own, "
                    "instead of running them again")
    args = ap.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="docent-bench-quick-")) if args.quick else ROOT / "bench"
    results_file = out_dir / "results.json"
    previous: dict[str, Any] = {}
    if (args.only or args.reuse) and (ROOT / "bench" / "results.json").is_file():
        previous = json.loads((ROOT / "bench" / "results.json").read_text(encoding="utf-8"))
    parts = [p for p in (args.only or ([] if args.reuse else list(PARTS))) if p not in args.reuse]
    measured: dict[str, Any] = dict(previous.get("parts", {}))
    for name in args.reuse:
        measured[name] = json.loads((ROOT / "bench" / f"{name}.json").read_text(encoding="utf-8"))
    for name in parts:
        measured[name] = run_part(name, out_dir / f"{name}.json", args.quick)
    # History that is not re-measured: the search part as it was on SQLite FTS5.
    before = ROOT / "bench" / "search_fts5.json"
    if before.is_file():
        measured["search_fts5"] = json.loads(before.read_text(encoding="utf-8"))
    cpu = platform.processor() or platform.machine()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release().split('-')[0]}, "
                   f"Python {platform.python_version()}",
        "quick": args.quick,
        "parts": measured,
    }
    results["rows"] = rows(measured)
    results["growth"] = growth(measured)
    results_file.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    section = table(results)
    if args.quick:
        chart(results, out_dir / "bench.png")
        print(section)
        print(f"\nQuick run: results in {out_dir} (README untouched).")
        return
    chart(results, ROOT / "docs" / "bench.png")
    update_readme(section)
    print(section)


if __name__ == "__main__":
    main()
