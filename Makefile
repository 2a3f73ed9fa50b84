# Docent: two commands do everything on a fresh Debian machine.
#   make run   opens the app with the bundled models
#   make test  runs the whole test suite
# Both set up .venv (and any missing system packages) first, idempotently.

SHELL := /bin/bash
VENV := .venv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test setup package install-desktop screenshot bench bench-quick bench-window bench-sync bench-injection eval eval-corpus eval-quick tune clean

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
	@DOCENT_EXTRA_DEBS="r-doc-pdf python3.11-doc fonts-dejavu-core fonts-liberation2 fonts-wqy-microhei" ./scripts/bootstrap.sh
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python bench/run.py

# A short smoke run of the same scripts (results in a temporary folder).
bench-quick:
	@DOCENT_EXTRA_DEBS="r-doc-pdf python3.11-doc fonts-dejavu-core fonts-liberation2 fonts-wqy-microhei" ./scripts/bootstrap.sh
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python bench/run.py --quick

bench-window: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python bench/window.py

# The local API alone: bench/api.json (1,000 loopback connections at the end).
.PHONY: bench-api
bench-api: setup
	$(VENV)/bin/python bench/api.py

bench-sync: setup
	$(VENV)/bin/python bench/sync.py

bench-injection: setup
	$(VENV)/bin/python bench/injection.py

# The cost of tracing (activity store + span file vs off): bench/tracing.json.
.PHONY: bench-tracing
bench-tracing:
	@DOCENT_EXTRA_DEBS="r-doc-pdf" ./scripts/bootstrap.sh
	$(VENV)/bin/python bench/tracing.py

# Answer quality on both development sets (../shared/eval/pydocs, HTML scored
# per file; ../shared/eval/pdfdocs, PDF manuals scored per page): retrieval in
# every mode, answers by the bundled model in the app's mode (hybrid). Writes
# eval/pydocs.json, eval/pdfdocs.json, eval/results.json (both, with the
# tuning choices) and the README's quality tables. The reranker row uses a
# small cross-encoder trained here once (bench/reranker_train.py, on Python's
# library reference, not an evaluation corpus) and kept in .cache/reranker;
# EVAL_RERANKER=DIR uses another, EVAL_RERANKER= none.
EVAL_ROOT ?= ../shared/eval
PYDOCS_SET ?= $(or $(DOCENT_EVAL_DIR),$(EVAL_ROOT)/pydocs)
PDFDOCS_SET ?= $(EVAL_ROOT)/pdfdocs
EVAL_RERANKER ?= .cache/reranker
EVAL_DEBS := python3.11-doc ubuntu-packaging-guide-pdf docbook-xsl-doc-pdf c++-annotations-pdf
PYDOCS_DOCS := /usr/share/doc/python3.11/html
PDFDOCS_DOCS := .cache/corpus/pdfdocs

eval-corpus:
	@DOCENT_EXTRA_DEBS="$(EVAL_DEBS)" ./scripts/bootstrap.sh
	@test -f $(PYDOCS_SET)/questions.jsonl -a -f $(PDFDOCS_SET)/questions.jsonl || { \
		echo "No question sets: put pydocs and pdfdocs under EVAL_ROOT (default ../shared/eval)"; exit 2; }
	@./scripts/pdfdocs_corpus.sh $(PDFDOCS_DOCS)

eval: eval-corpus
	@if [ "$(EVAL_RERANKER)" = ".cache/reranker" ] && [ ! -f .cache/reranker/config.json ]; then \
		$(VENV)/bin/python bench/reranker_train.py .cache/reranker; fi
	$(VENV)/bin/docent eval $(PYDOCS_SET)/questions.jsonl --docs $(PYDOCS_DOCS) --out eval/pydocs.json \
		$(if $(EVAL_RERANKER),--reranker $(EVAL_RERANKER)) $(EVAL_ARGS)
	$(VENV)/bin/docent eval $(PDFDOCS_SET)/questions.jsonl --docs $(PDFDOCS_DOCS) --out eval/pdfdocs.json \
		$(if $(EVAL_RERANKER),--reranker $(EVAL_RERANKER)) $(EVAL_ARGS)
	$(VENV)/bin/python tools/readme.py eval eval/pydocs.json eval/pdfdocs.json README.md --combined eval/results.json

# Retrieval only, both sets, every mode but the reranker's (a few minutes).
eval-quick: eval-corpus
	$(VENV)/bin/docent eval $(PYDOCS_SET)/questions.jsonl --docs $(PYDOCS_DOCS) --no-answers --modes vector,keyword,hybrid
	$(VENV)/bin/docent eval $(PDFDOCS_SET)/questions.jsonl --docs $(PDFDOCS_DOCS) --no-answers --modes vector,keyword,hybrid

# How the fusion, one-source-per-page and decline constants were chosen on both
# sets, with what each set alone would choose (bench/tune.json, README).
tune: eval-corpus
	$(VENV)/bin/python bench/tune.py --out bench/tune.json --readme README.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
