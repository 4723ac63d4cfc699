"""A loader family is one module plus one YAML: found, typed and put through the contract suite.

The suite in test_loaders.py is parametrized over ``list_loaders()``, the registry that
discovery fills; these tests check that nothing reaches the registry, the config groups
or Hydra's ConfigStore by any other road, and, in a copy of the tree, that a family made
of one new module and one new YAML goes through all of them, the contract suite and a
trial's own process included.
"""

import csv
import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from harness.config.compose import compose, list_options, to_typed
from harness.errors import HarnessError
from harness.loaders import Loader, LoaderConf, get_loader, list_loaders, register_loader
from tests.conftest import ROOT, sweep_dir


def test_every_family_has_one_yaml_and_every_loader_yaml_one_family():
    from harness.config import user_options

    # a --config-dir's loader options (examples/'s my_tf, registered in this process by a harness.measure run before
    # this test) are a user's configs of existing families, not families
    shipped = [name for name in list_options("loader") if name not in user_options("loader")]
    assert list_loaders() == shipped


@pytest.mark.parametrize("name", list_loaders())
def test_a_family_yaml_composes_onto_its_own_schema(name):
    """The YAML pulls ``schema/loader/<name>``, so composing is typed: a stray key fails, naming the real ones."""
    schema = get_loader(name).schema
    assert isinstance(to_typed(compose([f"loader={name}"])).loader, schema)
    with pytest.raises(HarnessError) as info:
        compose([f"loader={name}", "loader.no_such_knob=1"])
    fields = [f for f in schema.__dataclass_fields__ if f != "name"]
    assert "no_such_knob" in str(info.value) and all(field in str(info.value) for field in fields)


def test_every_loader_class_in_the_package_is_registered():
    """A family module that forgot ``@register_loader`` would be found and silently skip the contract suite."""
    import harness.loaders

    for module in pkgutil.iter_modules(harness.loaders.__path__):
        loaded = importlib.import_module(f"harness.loaders.{module.name}")
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, Loader) and cls.__module__ == loaded.__name__ and not inspect.isabstract(cls):
                assert get_loader(cls.name) is cls, f"{loaded.__name__}.{cls.__name__} is not registered"


@dataclass
class _WrongName(LoaderConf):
    name: str = "other"


def test_a_family_that_breaks_the_rules_fails_loudly_at_import():
    def family(name, schema=None):
        attrs = {"name": name, "epoch": lambda self, index: iter(())}
        return type("Family", (Loader,), attrs if schema is None else {**attrs, "schema": schema})

    with pytest.raises(TypeError, match="set schema"):
        register_loader(family("nameless_schema"))
    with pytest.raises(TypeError, match="defaults to 'other'"):
        register_loader(family("mismatch", _WrongName))
    with pytest.raises(TypeError, match="registered twice"):
        register_loader(family("tf_data", get_loader("tf_data").schema))
    assert "nameless_schema" not in list_loaders() and "mismatch" not in list_loaders()


TOY_MODULE = '''\
"""A throwaway family: the dataset's files decoded with PIL, in order or reversed."""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from harness.loaders.base import Batch, Loader, LoaderConf, register_loader
from harness.loaders.images import batches_of, load_batch


@dataclass
class ToyLoaderConf(LoaderConf):
    name: str = "toy"
    reverse: bool = False  # deliver the files last to first


@register_loader
class ToyLoader(Loader):
    name = "toy"
    schema = ToyLoaderConf

    def epoch(self, index: int) -> Iterator[Batch]:
        paths, labels, ids = (np.asarray(column) for column in self.dataset.columns())
        order = np.arange(len(paths))[::-1] if self.conf.reverse else np.arange(len(paths))
        for picked in batches_of(order, self.batch.size, drop_last=False):
            yield Batch(images=load_batch(paths[picked], self.batch), labels=labels[picked], ids=ids[picked])

    def describe(self) -> dict:
        return {"ops": [f"PIL open+resize, batches of {self.batch.size}"]}
'''

TOY_YAML = """\
defaults:
  - /schema/loader/toy@_here_
  - _self_

reverse: true
"""


# the contract suite's tests that are parametrized over the families
CONTRACT = {
    "test_family_delivers_the_contract_and_the_whole_dataset",
    "test_reference_pixels_match_the_delivered_sample",
    "test_every_family_describes_its_chain_as_built",
    "test_every_family_reads_the_manifest_files_once_with_the_same_pixels",
    "test_a_family_yaml_composes_onto_its_own_schema",
}


@pytest.fixture(scope="module")
def tree_with_toy(tmp_path_factory):
    """A copy of the tree with one new module and one new YAML, and nothing else changed."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("harness", "conf", "experiments", "tests", "hydra_plugins", "pyproject.toml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, tree / name)
    (tree / "harness" / "loaders" / "toy.py").write_text(TOY_MODULE)
    (tree / "conf" / "loader" / "toy.yaml").write_text(TOY_YAML)
    return tree


def in_tree(tree, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(tree), HARNESS_CACHE=str(tree / "cache"))
    return subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_new_family_is_one_module_and_one_yaml(tree_with_toy):
    tree = tree_with_toy
    done = in_tree(tree, "-c", "import harness; print(harness.__file__)")
    assert done.stdout.strip() == str(tree / "harness" / "__init__.py"), done.stderr  # the copy, not the checkout

    done = in_tree(tree, "-m", "harness", "list")
    assert "loader: " in done.stdout and "toy" in done.stdout.split("loader: ")[1].splitlines()[0], done.stdout + done.stderr
    assert "toy" in done.stdout.split("loader families: ")[1], done.stdout
    done = in_tree(tree, "-m", "harness", "run", "loader=toy", "loader.reverse=maybe")
    assert done.returncode == 1 and "loader.reverse" in done.stderr and "Traceback" not in done.stderr, done.stderr

    # the contract suite, unchanged, now has cases for toy, and they pass
    done = in_tree(tree, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-m", "not slow", "-k", "toy", "tests/contract")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    passed = {line.split("::")[1].split("[")[0] for line in done.stdout.splitlines() if "toy" in line and " PASSED" in line}
    assert passed == CONTRACT, done.stdout[-3000:]

    # a real trial: the worker process reads the saved config back and types the loader node
    tiny = ["dataset.count=24", "dataset.width=40", "dataset.height=30", "batch.size=8", "batch.height=16", "batch.width=16"]
    done = in_tree(tree, "-m", "harness", "run", "loader=toy", *tiny, "trial.epochs=2", "trial.warmup_steps=1", "monitor.enabled=false")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(sweep_dir(done, tree) / "results.csv") as handle:
        (row,) = csv.DictReader(handle)
    assert (row["loader"], row["status"], row["same_data"]) == ("toy", "ok", "complete"), row
