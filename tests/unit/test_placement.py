"""Where trials ran, read back from their results: the row's machine, and trials that shared one at the same time."""

from harness.results.model import TrialResult
from harness.results.placement import concurrency_warning, machines_warning, overlaps, where


def trial(job: int, start: float, end: float, host: str = "node1", cpu: str = "Xeon", repeat: int = 0) -> TrialResult:
    env = {"hostname": host, "cpu_model": cpu, "cpu_usable": 8, "cuda_visible_devices": "2,3"}
    result = TrialResult("ok", config={}, overrides=[], job=job, repeat=repeat, environment=env, consumer={"device": "emulated"})
    result.timing.update(started_at=start, finished_at=end)
    return result


def test_a_row_says_its_host_cpu_cores_accelerator_and_visible_gpus():
    assert where(trial(0, 0, 1)) == {
        "host": "node1",
        "cpu_model": "Xeon",
        "cores": "8",
        "accelerator": "emulated",
        "cuda_visible_devices": "2,3",
    }


def test_trials_one_after_another_do_not_overlap_but_trials_at_once_on_one_host_do():
    assert overlaps([trial(0, 0, 10), trial(1, 10, 20), trial(2, 20, 30)]) == []
    found = overlaps([trial(0, 0, 10), trial(1, 4, 20), trial(2, 30, 40)])
    assert [(o.first, o.second, o.seconds) for o in found] == [((0, 0), (1, 0), 6)]
    assert overlaps([trial(0, 0, 10, host="a"), trial(1, 0, 10, host="b")]) == []  # two nodes at once: fine


def test_the_warnings_name_the_pairs_and_the_machines():
    line = concurrency_warning([trial(0, 0, 10), trial(1, 5, 15), trial(2, 30, 40)])
    assert line is not None and line.startswith("2 trials ran at the same time as another on the same machine (node1: job 0")
    assert concurrency_warning([trial(0, 0, 10), trial(1, 10, 20)]) is None
    spread = machines_warning([trial(0, 0, 1, host="a", cpu="EPYC"), trial(1, 0, 1, host="b")])
    assert spread is not None and spread.startswith("Trials ran on 2 machines: a (EPYC), b (Xeon)")
    assert machines_warning([trial(0, 0, 1), trial(1, 2, 3)]) is None
