# Docent: two commands do everything on a fresh Debian machine.
#   make run   opens the app with the bundled models
#   make test  runs the whole test suite
# Both set up .venv (and any missing system packages) first, idempotently.

SHELL := /bin/bash
VENV := .venv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test setup package install-desktop screenshot bench bench-quick bench-window bench-sync bench-injection eval eval-quick tune clean

setup:
	@./scripts/bootstrap.sh

run: setup
	$(VENV)/bin/docent

# Every test once, in two runs: the core's (everything outside tests/ui) with
# Qt made unimportable (tests/no_qt.py), then the window's. Both always run;
# make test fails if either does.
test: setup
	$(VENV)/bin/lint-imports
	status=0; \
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest tests --ignore=tests/ui -p tests.no_qt || status=1; \
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest tests/ui || status=1; \
	exit $$status

# The installed desktop app: dist/Docent/ (one folder, runs without Python),
# then check it with dist/Docent/docent --selftest.
package:
	./packaging/build.sh

# Put the built app in the desktop's application menu (~/.local).
install-desktop:
	./packaging/install-linux.sh

screenshot: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(VENV)/bin/python scripts/screenshot.py docs/screenshot.png

# Every speed and memory figure beside the raw libraries; writes
# bench/results.json, docs/bench.png and the README's benchmark table.
bench:
	@DOCENT_EXTRA_DEBS="r-doc-pdf python3.11-doc" ./scripts/bootstrap.sh
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python bench/run.py

# A short smoke run of the same scripts (results in a temporary folder).
bench-quick:
	@DOCENT_EXTRA_DEBS="r-doc-pdf python3.11-doc" ./scripts/bootstrap.sh
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python bench/run.py --quick

bench-window: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python bench/window.py

bench-sync: setup
	$(VENV)/bin/python bench/sync.py

bench-injection: setup
	$(VENV)/bin/python bench/injection.py

# Answer quality on the development set (../shared/eval/pydocs, or
# DOCENT_EVAL_DIR): every retrieval mode, answers by the bundled model.
# Writes eval/results.json and the README's quality table. The reranker row
# uses a small cross-encoder trained here once (bench/reranker_train.py, on
# Python's library reference, not the evaluation corpus) and kept in
# .cache/reranker; EVAL_RERANKER=DIR uses another, EVAL_RERANKER= none.
EVAL_SET ?= $(firstword $(foreach d,$(DOCENT_EVAL_DIR) ../shared/eval/pydocs,$(wildcard $(d)/questions.jsonl)))
EVAL_RERANKER ?= .cache/reranker
EVAL_DOCS := /usr/share/doc/python3.11/html

eval:
	@DOCENT_EXTRA_DEBS="python3.11-doc" ./scripts/bootstrap.sh
	@test -n "$(EVAL_SET)" || { echo "No question set: set DOCENT_EVAL_DIR to the folder holding questions.jsonl"; exit 2; }
	@if [ "$(EVAL_RERANKER)" = ".cache/reranker" ] && [ ! -f .cache/reranker/config.json ]; then \
		$(VENV)/bin/python bench/reranker_train.py .cache/reranker; fi
	$(VENV)/bin/docent eval $(EVAL_SET) --docs $(EVAL_DOCS) --out eval/results.json \
		$(if $(EVAL_RERANKER),--reranker $(EVAL_RERANKER)) $(EVAL_ARGS)
	$(VENV)/bin/python tools/readme.py eval eval/results.json README.md

# Retrieval only (no answers, no reranker): a minute or two.
eval-quick:
	@DOCENT_EXTRA_DEBS="python3.11-doc" ./scripts/bootstrap.sh
	$(VENV)/bin/docent eval $(EVAL_SET) --docs $(EVAL_DOCS) --no-answers --modes vector,keyword,hybrid

# How chunk size, overlap, fusion weights and the relevance threshold were chosen.
tune:
	@DOCENT_EXTRA_DEBS="python3.11-doc" ./scripts/bootstrap.sh
	$(VENV)/bin/python bench/tune.py --out bench/tune.json --readme README.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
