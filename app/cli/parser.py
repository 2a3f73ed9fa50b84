"""The ``docent`` argument parser: every subcommand of the contract (imports nothing heavy)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app import __version__, config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
# The modes ``docent eval`` knows (app.core.evaluate.EVAL_MODES, repeated so
# that building the parser imports nothing heavy).
EVAL_MODE_NAMES = ("vector", "keyword", "hybrid", "hybrid+reranker")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as Docent does (exit 2, no traceback)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"docent: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand of the contract."""
    p = _Parser(prog="docent", description="Docent: ask your documents, offline, with sources.")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="data folder (default: $DOCENT_DATA_DIR or the user data folder)")
    p.add_argument("--vectors", default=None, metavar="URL",
                   help="keep vectors in a Chroma server at URL (http://HOST:PORT) instead of the data folder "
                        "(a team library; remembered by the library)")
    p.add_argument("--vectors-allow-network", action="store_true",
                   help="accept a --vectors server on another machine (Chroma's server has no "
                        "authentication: only on a trusted network)")
    p.add_argument("--version", action="version", version=f"docent {__version__}")
    p.add_argument("--selftest", action="store_true",
                   help="check this installation end to end, offline, in a temporary folder; exit 0 if it works")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ing = sub.add_parser("ingest", help="add folders or files to the library and index them")
    ing.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ing.add_argument("--json", action="store_true", help="print the report as JSON")

    srch = sub.add_parser("search", help="find passages (QUERY '-' reads one query per line)")
    srch.add_argument("query", metavar="QUERY")
    srch.add_argument("-k", type=int, default=config.SOURCES_PER_ANSWER,
                      help=f"hits to return (default {config.SOURCES_PER_ANSWER})")
    srch.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    srch.add_argument("--scope", default=None, help="only search this file or folder")
    srch.add_argument("--no-rerank", action="store_true",
                      help="skip the reranker set in the settings (plain hybrid ranking)")
    srch.add_argument("--json", action="store_true")

    ask = sub.add_parser("ask", help="answer a question from the library (QUESTION '-' for a batch)")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("-k", type=int, default=config.SOURCES_PER_ANSWER,
                     help=f"passages given to the model (default {config.SOURCES_PER_ANSWER})")
    ask.add_argument("--model", type=Path, default=None, metavar="GGUF", help="a GGUF model file")
    ask.add_argument("--max-tokens", type=int, default=config.MAX_TOKENS)
    ask.add_argument("--temperature", type=float, default=None)
    ask.add_argument("--top-k", type=int, default=None)
    ask.add_argument("--top-p", type=float, default=None)
    ask.add_argument("--repeat-penalty", type=float, default=None)
    ask.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    ask.add_argument("--scope", default=None, help="only use this file or folder")
    ask.add_argument("--no-rerank", action="store_true",
                     help="skip the reranker set in the settings (plain hybrid ranking)")
    ask.add_argument("--no-cache", action="store_true",
                     help="write the answer again even if this question was answered over the same "
                          "passages with the same settings (the new answer is kept)")
    ask.add_argument("--json", action="store_true")

    st = sub.add_parser("status", help="what the library holds")
    st.add_argument("--files", action="store_true", help="list every file")
    st.add_argument("--json", action="store_true")

    w = sub.add_parser("watch", help="keep PATHs in sync until interrupted")
    w.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    w.add_argument("--poll", action="store_true",
                   help="check for changes by polling (for network drives that send no events)")

    aud = sub.add_parser("audit", help="check or show the audit log")
    aud_sub = aud.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=_Parser)
    aud_sub.required = True
    aud_sub.add_parser("verify", help="exit 0 if the log is intact, 1 if not")
    show = aud_sub.add_parser("show", help="print the records")
    show.add_argument("--json", action="store_true")
    show.add_argument("--user", default=None, metavar="NAME",
                      help="only the records of this user (an API key's name, or local:LOGIN)")

    ev = sub.add_parser("eval", help="measure retrieval and answer quality on a question set")
    ev.add_argument("questions", type=Path, metavar="QUESTIONS.jsonl")
    ev.add_argument("--docs", type=Path, required=True, metavar="DIR",
                    help="the folder the questions' file paths are relative to")
    ev.add_argument("--modes", default=",".join(EVAL_MODE_NAMES),
                    help="comma-separated retrieval modes (default: all; hybrid+reranker "
                         "runs only when a reranker is configured)")
    ev.add_argument("--reranker", type=Path, default=None, metavar="DIR",
                    help="a CrossEncoder model folder (default: the settings' reranker, if any)")
    ev.add_argument("--no-answers", action="store_true", help="score retrieval only (no model)")
    ev.add_argument("--answer-modes", default="hybrid", metavar="MODES",
                    help="comma-separated modes whose answers are scored (default: hybrid, the app's; "
                         "retrieval is scored in every mode)")
    ev.add_argument("--max-tokens", type=int, default=200)
    ev.add_argument("--prompt-budget", type=int, default=None, metavar="TOKENS",
                    help="passage tokens the model is given per answer (0: whole passages; "
                         "default: the settings')")
    ev.add_argument("--limit", type=int, default=None, metavar="N",
                    help="only the first N fact and N absent questions (a quicker, rougher measure)")
    ev.add_argument("--model", type=Path, default=None, metavar="GGUF")
    ev.add_argument("--work", type=Path, default=None, metavar="DIR",
                    help="data folder for the evaluation's own index (default: a temporary one)")
    ev.add_argument("--out", type=Path, default=None, help="write the full results as JSON here "
                    "(tools/readme.py puts them in the README)")

    rm = sub.add_parser("remove", help="take library folders or files out of the library (not off the disk)")
    rm.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    rm.add_argument("--json", action="store_true", help="print the result as JSON")

    sv = sub.add_parser("serve", help="serve the library over a local OpenAI-compatible HTTP API")
    sv.add_argument("--host", default=config.API_HOST,
                    help=f"address to listen on (default {config.API_HOST}, this machine only)")
    sv.add_argument("--port", type=int, default=config.API_PORT, help=f"port (default {config.API_PORT})")
    sv.add_argument("--no-auth", action="store_true",
                    help="accept requests without a key (loopback addresses only)")
    sv.add_argument("--queue", type=int, default=config.API_QUEUE, metavar="N",
                    help=f"questions that may wait for the model, all users together (default {config.API_QUEUE}; "
                         "size it to the team: one more is told to retry)")

    keys = sub.add_parser("keys", help="create, list or revoke the local API's keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=_Parser)
    keys_sub.required = True
    kc = keys_sub.add_parser("create", help="make a key; its secret is printed once, on the last line")
    kc.add_argument("name", metavar="NAME")
    kc.add_argument("--scope", action="append", type=Path, metavar="DIR",
                    help="only this folder may be read with the key (repeat for several)")
    kc.add_argument("--role", choices=["reader", "editor", "admin"], default="reader")
    kc.add_argument("--rpm", type=int, default=None, help="requests per minute allowed")
    kc.add_argument("--tpm", type=int, default=None, help="tokens per minute allowed")
    kl = keys_sub.add_parser("list", help="the keys (never their secrets)")
    kl.add_argument("--json", action="store_true")
    kr = keys_sub.add_parser("revoke", help="delete a key; requests with it are refused at once")
    kr.add_argument("name", metavar="NAME")

    rx = sub.add_parser("reindex", help="read library files again, even if unchanged (default: all)")
    rx.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    rx.add_argument("--json", action="store_true", help="print the report as JSON")

    doc = sub.add_parser("doctor", help="check the data folder, models and machine; exit 0 healthy, 1 problems found")
    doc.add_argument("--json", action="store_true")

    sts = sub.add_parser("stats", help="recent activity: latency, throughput, failures and error budgets")
    sts.add_argument("--json", action="store_true")
    sts.add_argument("--window", choices=["hour", "day", "week"], default="day",
                     help="how far back the figures go (default: day)")

    # Generation on an OpenAI-compatible inference server, for this run only
    # (the saved settings are not changed); retrieval, citing and auditing stay here.
    for generator in (ask, sv):
        generator.add_argument("--generate", default=None, metavar="URL",
                               help="generate answers on this OpenAI-compatible server "
                                    "(e.g. http://127.0.0.1:8080/v1) instead of the local model")
        generator.add_argument("--generate-model", default=None, metavar="NAME",
                               help="the served model to ask for (default: the server's first)")
        generator.add_argument("--generate-allow-network", action="store_true",
                               help="allow a --generate address that is not this machine "
                                    "(questions and passages are sent to it)")

    # Tracing: off unless asked for (here or in the settings). Nothing leaves
    # the machine unless a destination is named.
    for tracer in (ing, ask, sv, w, rx):
        tracer.add_argument("--trace", type=Path, default=None, metavar="FILE",
                            help="write OpenTelemetry spans to FILE as JSON lines")
        tracer.add_argument("--otlp", default=None, metavar="URL",
                            help="send OpenTelemetry spans and metrics to an OTLP/HTTP endpoint (a collector)")
    return p
