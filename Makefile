# Set-up is implicit: every target that runs Python first creates .venv and installs the
# project with every extra, pinned by constraints.txt (once; again when either file changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup sweep test clean-reports

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all,dev]'
	touch $@

## The quick start: build a small dataset, sweep tf.data settings, print the results folder.
sweep: $(STAMP)
	$(PY) -m harness sweep experiment=quickstart $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

clean-reports:
	rm -rf reports/2* reports/runs
