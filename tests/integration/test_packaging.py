"""An installed harness works outside the checkout: the wheel carries conf/ and experiments/.

Built from this checkout and installed without dependencies into a fresh virtualenv whose
only other packages are the development environment's (a .pth line), so the test needs
no network and no second copy of TensorFlow or torch.
"""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXPERIMENT = """\
# @package _global_
name: mine
defaults:
  - override /loader: synthetic
loader:
  produce_ms: 2
trial:
  steps: 6
  warmup_steps: 1
monitor:
  uss_interval_ms: 0
"""


def test_every_subpackage_is_listed_for_the_wheel():
    import tomllib  # Python 3.11+, where the suite runs

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    inits = [*(ROOT / "harness").rglob("__init__.py"), *(ROOT / "hydra_plugins").rglob("__init__.py")]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in inits}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert {"harness.conf", "harness.experiments", "hydra_plugins.harness_launcher"} <= listed
    assert not (ROOT / "hydra_plugins" / "__init__.py").exists()  # a namespace package, shared with other Hydra plugins


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtualenv holding the wheel built from this checkout; its ``harness`` script."""
    work = tmp_path_factory.mktemp("install")
    wheels = work / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    venv = work / "venv"
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = next(venv.glob("lib/python3*/site-packages"))
    (purelib / "deps.pth").write_text(site.getsitepackages()[0] + "\n")
    wheel = next(wheels.glob("harness-*.whl"))
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    return venv / "bin" / "harness"


def run(harness, cwd, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from the checkout
    env["HARNESS_CACHE"] = str(cwd / "cache")
    return subprocess.run([str(harness), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_lists_and_sweeps_from_an_empty_folder_with_the_users_experiments(installed, tmp_path):
    mine = tmp_path / "my_experiments"
    mine.mkdir()
    (mine / "mine.yaml").write_text(EXPERIMENT)
    empty = tmp_path / "empty"
    empty.mkdir()
    listing = run(installed, empty, "list", "--config-dir", str(mine))
    assert listing.returncode == 0, listing.stderr
    assert "quickstart" in listing.stdout and "mine" in listing.stdout
    done = run(installed, empty, "sweep", "--config-dir", str(mine), "experiment=mine", "loader.workers=1,2")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = empty / done.stdout.strip().splitlines()[-1]
    assert folder.parent == empty / "reports" and (folder / "report.html").exists()
    assert "Launching 2 jobs locally" in done.stdout  # Hydra found the wheel's launcher, hydra/launcher=harness
    import harness

    assert str(ROOT) not in run(installed, empty, "list").stdout and Path(harness.__file__).is_relative_to(ROOT)
