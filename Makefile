# Set-up is implicit: every target that runs Python first creates .venv and installs the
# project with every extra, pinned by constraints.txt (once; again when either file changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup sweep test browser clean-reports

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $@

## The quick start: build a small dataset, sweep tf.data settings, print the results folder.
sweep: $(STAMP)
	$(PY) -m harness sweep experiment=quickstart $(ARGS)

## Debian's chromium, for the headless browser test of report.html (skipped without it).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@chromium --version

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

clean-reports:
	rm -rf reports/2* reports/runs
