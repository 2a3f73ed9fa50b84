# Docent: two commands do everything on a fresh Debian machine.
#   make run   opens the app with the bundled models
#   make test  runs the whole test suite
# Both set up .venv (and any missing system packages) first, idempotently.

SHELL := /bin/bash
VENV := .venv
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test setup screenshot bench bench-quick bench-window bench-sync bench-injection clean

setup:
	@./scripts/bootstrap.sh

run: setup
	$(VENV)/bin/docent

test: setup
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest

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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
