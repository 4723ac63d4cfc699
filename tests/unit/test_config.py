"""Composition and validation: bad input fails early with a line that names it."""

import pytest

from harness.config.compose import compose, expand_sweep, load_trial_config, to_typed
from harness.config.validate import parse_tuning, trial_bound, validate
from harness.errors import ConfigError, HarnessError
from harness.loaders.tf_data import TfDataLoaderConf


def test_defaults_compose_to_typed_nodes():
    cfg = to_typed(compose([]))
    assert cfg.loader.name == "synthetic" and cfg.dataset.name == "synthetic"
    assert cfg.batch.dtype.value == "uint8"


def test_group_choice_changes_schema():
    cfg = to_typed(compose(["loader=tf_data", "loader.num_parallel_calls=4"]))
    assert isinstance(cfg.loader, TfDataLoaderConf)
    assert cfg.loader.num_parallel_calls == 4


def assert_one_line_naming(overrides, words):
    """Composing ``overrides`` fails with one line that holds every word."""
    with pytest.raises(HarnessError) as info:
        compose(overrides)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "override, words",
    [
        (["loader=nope"], ["loader=nope", "synthetic", "tf_data"]),
        (["loader.produce_msx=1"], ["produce_msx", "produce_ms", "workers"]),
        (["trial.stepz=1"], ["stepz", "steps", "seconds"]),
        (["loader=tf_data", "loader.produce_ms=1"], ["produce_ms", "num_parallel_calls"]),
        (["loader.produce_ms=abc"], ["loader.produce_ms=abc", "Float"]),
        (["dataset.format=gif"], ["gif", "jpeg", "png"]),
        (["consumer.device=tpu"], ["tpu", "auto", "cuda", "emulated"]),
    ],
)
def test_bad_overrides_name_the_key_and_the_valid_choices(override, words):
    assert_one_line_naming(override, words)


@pytest.mark.parametrize(
    "value, parsed", [("none", None), (None, None), (3, 3), ("4", 4), ("autotune", "autotune"), ("AUTOTUNE", "autotune")]
)
def test_parse_tuning_accepts(value, parsed):
    assert parse_tuning("k", value) == parsed


@pytest.mark.parametrize("value", ["fast", 0, -1, 2.5, True])
def test_parse_tuning_rejects(value):
    with pytest.raises(ConfigError, match="k="):
        parse_tuning("k", value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("loader.workers=-1", "loader.workers"),
        ("trial.repeats=0", "trial.repeats"),
        ("dataset.jpeg_quality=0", "dataset.jpeg_quality"),
        ("batch.channels=2", "batch.channels"),
        ("trial.seconds=-3", "trial.seconds"),
        ("consumer.rank_placement=cluster", "consumer.rank_placement"),
        ("consumer.rank_placement=nodes", "consumer.rank_placement"),  # with one rank: nothing to place
    ],
)
def test_validate_names_the_offending_value(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(compose([override]))


def test_every_family_is_validated_without_importing_its_framework():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from harness.config.compose import compose\n"
        "from harness.config.validate import validate\n"
        "from harness.errors import ConfigError\n"
        "from harness.loaders import get_loader, list_loaders\n"
        "for loader in list_loaders():\n"
        "    validate(compose([f'loader={loader}', *get_loader(loader).example]))\n"
        "try:\n"
        "    validate(compose(['loader=tf_data', 'loader.num_parallel_calls=lots']))\n"
        "except ConfigError as exc:\n"
        "    print('refused:', exc)\n"
        "print([m for m in ('tensorflow', 'keras', 'torch', 'torchvision') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "refused: loader.num_parallel_calls='lots'" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_folder_dataset_needs_an_existing_folder(tmp_path):
    with pytest.raises(ConfigError, match="dataset.path"):
        validate(compose(["dataset=folder", f"dataset.path={tmp_path / 'missing'}"]))


def test_sweep_expansion_is_the_cartesian_product():
    jobs = expand_sweep(["loader.produce_ms=5,20", "loader.workers=0,1,2"])
    assert len(jobs) == 6
    assert ["loader.produce_ms=5", "loader.workers=0"] in jobs


def test_experiment_sweep_params_are_expanded():
    jobs = expand_sweep(["experiment=quickstart"])
    assert len(jobs) == 4
    assert all("experiment=quickstart" in job for job in jobs)
    cfg = to_typed(compose(jobs[0]))
    assert cfg.name == "quickstart" and cfg.loader.name == "tf_data"


def test_default_bound_applies_only_when_none_given():
    cfg = to_typed(compose([]))
    assert trial_bound(cfg.trial) == {"seconds": cfg.trial.default_seconds}
    cfg = to_typed(compose(["trial.steps=7"]))
    assert trial_bound(cfg.trial) == {"steps": 7}


def test_saved_config_reloads_typed(tmp_path):
    from omegaconf import OmegaConf

    path = tmp_path / "trial.yaml"
    path.write_text(OmegaConf.to_yaml(compose(["loader=tf_data", "loader.prefetch=2"])))
    cfg = load_trial_config(path)
    assert isinstance(cfg.loader, TfDataLoaderConf) and cfg.loader.prefetch == 2
    path.write_text(path.read_text().replace("prefetch: 2", "prefetch: 2\n  bogus: 1"))
    with pytest.raises(Exception, match="bogus"):
        load_trial_config(path)


def test_a_saved_config_reloads_typed_in_a_fresh_process(tmp_path):
    """As the trial's child reads it: nothing imported first, yet the loader node gets its family's schema."""
    import subprocess
    import sys

    from omegaconf import OmegaConf

    path = tmp_path / "trial.yaml"
    path.write_text(OmegaConf.to_yaml(compose(["loader=torch", "loader.decoder=torchvision"])))
    code = (
        "import sys\n"
        "from harness.config.compose import load_trial_config\n"
        f"loader = load_trial_config({str(path)!r}).loader\n"
        "print(type(loader).__module__, type(loader).__name__, loader.decoder)\n"
        "print([m for m in ('tensorflow', 'keras', 'torch', 'torchvision') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["harness.loaders.torch_loader TorchLoaderConf Decoder.torchvision", "[]"]


# Hostile input (issue 13): each fails in one line that names the key and what to do.


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["seconds=5"], ["seconds", "did you mean trial.seconds"]),  # once recursed forever through compose
        (["nosuchgroup=foo"], ["nosuchgroup", "experiment", "trial"]),
        (["sedonds=3"], ["did you mean trial.seconds"]),
        (["workers=3"], ["did you mean loader.workers"]),
        (["loadr=tf_data"], ["did you mean loader"]),
        (["+tag=x"], ["tag", "unknown key"]),  # Hydra accepts '+': the schema refuses it
        (["++nosuch.key=1"], ["nosuch", "unknown key"]),
        (["+loader.nosuch=1"], ["loader.nosuch", "produce_ms"]),  # was dropped without a word
        (["dataset.path=/x"], ["dataset.path", "dataset=folder"]),
        (["loader=tf_data", "loader.num_workers=2"], ["num_workers", "loader=torch"]),
        (["dataset=folder"], ["dataset.path=/some/folder"]),
        (["experiment=nosuch"], ["experiment=nosuch", "quickstart"]),
    ],
)
def test_unknown_and_missing_keys_fail_in_one_line(overrides, words):
    assert_one_line_naming(overrides, words)


def test_unknown_key_in_a_sweep_fails_before_expansion():
    with pytest.raises(HarnessError, match="did you mean trial.seconds"):
        expand_sweep(["loader.workers=0,1", "seconds=5"])


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["trial.timeout_s=nan"], "trial.timeout_s"),  # nan > 0 is false: it passed and disabled the timeout
        (["trial.seconds=inf"], "trial.seconds"),
        (["trial.seconds=-inf"], "trial.seconds"),
        (["trial.default_seconds=inf"], "trial.default_seconds"),
        (["consumer.step_ms=nan"], "consumer.step_ms"),
        (["augment.bench_cv=nan"], "augment.bench_cv"),
        (["loader.produce_ms=nan"], "loader.produce_ms"),
        (["loader=keras_idg", "loader.width_shift_range=inf"], "loader.width_shift_range"),
        (["loader=tf_data", "loader.prefetch=nan"], "loader.prefetch"),
        (["augment=resize_rotate", "augment.ops.1.degrees=nan"], r"augment.ops[1].degrees"),
    ],
)
def test_validate_refuses_nan_and_inf_everywhere(overrides, key):
    with pytest.raises(ConfigError, match="finite") as info:
        validate(compose(overrides))
    assert str(info.value).startswith(f"{key}=")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_check_positive_refuses_non_finite(value):
    from harness.config.validate import check_positive

    with pytest.raises(ConfigError, match="k="):
        check_positive("k", value, allow_zero=True)


@pytest.mark.parametrize(
    "override", ["consumer.gpu_index=-1", "threads.torch=-1", "threads.tf_intra_op=-2", "trial.seed=-1", "dataset.seed=-1"]
)
def test_validate_refuses_negative_indexes_counts_and_seeds(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.") + "=-"):
        validate(compose([override]))


def test_folder_dataset_path_must_be_a_non_empty_existing_folder(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for path, words in [
        ("", "dataset.path is empty"),
        (" ", "dataset.path is empty"),
        (tmp_path / "missing", "no such folder"),
        (a_file, "not a folder"),
    ]:
        with pytest.raises(ConfigError, match=words):
            validate(compose(["dataset=folder", f"dataset.path={path}"]))
    validate(compose(["dataset=folder", f"dataset.path={tmp_path}"]))


def test_a_base_revision_drops_the_keys_it_does_not_know(tmp_path, monkeypatch, capsys):
    """check --ab: the working tree's trial.yaml, read by an older harness, loses only the newer keys."""
    from omegaconf import OmegaConf

    from harness.config.compose import NEWER_KEYS
    from harness.trial.spawn import _child_env

    path = tmp_path / "trial.yaml"
    text = OmegaConf.to_yaml(compose(["loader=tf_data", "loader.prefetch=2"]))
    assert "  orders: {}\n" in text
    text = text.replace("prefetch: 2", "prefetch: 2\n  newer_knob: 7").replace("  orders: {}\n", "  orders:\n    cheap: [resize]\n")
    path.write_text(text + "future_group:\n  open_ms: 5\n")
    with pytest.raises(ConfigError, match="newer_knob|future_group"):  # the working tree's own trials still refuse them
        load_trial_config(path)
    monkeypatch.setenv(NEWER_KEYS, "drop")
    cfg = load_trial_config(path)
    assert cfg.loader.prefetch == 2 and cfg.augment.orders == {"cheap": ["resize"]}  # a free mapping's keys stay
    assert "does not know loader.newer_knob, future_group" in capsys.readouterr().err
    # only a trial of another revision (trial.code) gets the setting; an inherited one is not passed on
    assert _child_env("/base")[NEWER_KEYS] == "drop" and NEWER_KEYS not in _child_env(None)
