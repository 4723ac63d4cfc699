#!/usr/bin/env bash
# The pure-Python wheels harness needs beyond a GPU image that has torch, torchvision, numpy, pandas,
# matplotlib, scipy, psutil, jinja2, rich, pyyaml and nvidia-ml-py but no package registry (the
# workplace's device machines): hydra-core, omegaconf and antlr4-python3-runtime (an sdist on PyPI,
# built into a wheel here). Versions are constraints.txt's. Into .whl/ (git-ignored):
#
#   benchmarks/gpu_wheels.sh
#   # there: python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   #        python3 benchmarks/gpu_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
pins=$(grep -E '^(hydra-core|omegaconf|antlr4-python3-runtime)==' constraints.txt)
# shellcheck disable=SC2086
"$PY" -m pip wheel --quiet --no-deps -w .whl $pins
ls -l .whl
