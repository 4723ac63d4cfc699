"""Every torch-only path works where TensorFlow cannot be imported (a GPU image with torch and no TensorFlow).

TensorFlow and Keras are made unimportable for the harness and every process it starts (a
``sitecustomize`` on ``PYTHONPATH`` puts a finder in front that refuses them, as a missing
package does), then a user's torch session runs: a run, a sweep with its report and its
measured ceilings, the report and check commands; a TensorFlow loader says which extra it needs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("torch")

# As where TensorFlow is not installed: importing it fails, and asking whether it is there
# (importlib.util.find_spec, as torch._dynamo does when torchvision loads) says no.
NO_TF = """
import importlib.abc
import importlib.util
import sys

HIDDEN = ("tensorflow", "keras", "tf_keras", "tensorboard")


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


_find_spec = importlib.util.find_spec


def find_spec(name, package=None):
    return None if name.split(".")[0] in HIDDEN else _find_spec(name, package)


importlib.util.find_spec = find_spec
sys.meta_path.insert(0, NoTensorFlow())
"""
TINY = ["dataset.count=64", "dataset.width=96", "dataset.height=72", "batch.size=8", "batch.height=32", "batch.width=32"]


@pytest.fixture
def harness(tmp_path, cache_dir):
    (tmp_path / "no_tf").mkdir()
    (tmp_path / "no_tf" / "sitecustomize.py").write_text(NO_TF)
    env = dict(os.environ, HARNESS_CACHE=str(cache_dir), PYTHONPATH=f"{tmp_path / 'no_tf'}{os.pathsep}{ROOT}", HARNESS_CEILINGS="0")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    return run


@pytest.mark.slow
def test_a_torch_session_runs_end_to_end_without_tensorflow(harness, tmp_path):
    probe = harness("run", "loader=tf_data", *TINY)
    said = probe.stdout + probe.stderr  # the trial fails, and its row names the extra
    assert probe.returncode != 0 and "tensorflow" in said and "pip install -e '.[tf]'" in said, said[-1500:]
    done = harness("run", "loader=torch", "trial.steps=6", "trial.warmup_steps=1", *TINY, "hydra.run.dir=run")
    assert done.returncode == 0, done.stderr[-2000:]
    sweep = ["loader=torch", "loader.pin_memory=false,true", "trial.steps=6", "trial.warmup_steps=1", *TINY, "report.ceilings=quick"]
    done = harness("sweep", *sweep, "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "sweep" / "report.html").exists() and (tmp_path / "sweep" / "ceilings.json").exists()
    assert "ModuleNotFoundError" not in (tmp_path / "sweep" / "report.html").read_text()
    for args in (["report", "sweep"], ["check", "sweep", "--save-baseline", "base.json"], ["--help"], ["list"]):
        done = harness(*args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
    done = harness("check", "sweep", "--baseline", "base.json")
    assert done.returncode in (0, 2) and "ModuleNotFound" not in done.stderr, done.stderr[-2000:]  # 2: 6 steps are too few windows
