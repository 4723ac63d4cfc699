"""Progress bars: what they show on a terminal, that nothing shows elsewhere, that they never break a build."""

import io
import re
import sys
import threading
import time

import pytest

from harness import progress
from harness.config.schema import SyntheticDatasetConf
from harness.data import build
from harness.errors import HarnessError
from harness.trial import stop

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def terminal(clock=None):
    """A rich Console that believes it is an 100-column terminal, writing into a string."""
    from rich.console import Console

    return Console(file=io.StringIO(), force_terminal=True, width=100, get_time=clock)


def shown(console) -> str:
    return ANSI.sub("", console.file.getvalue())


@pytest.fixture(autouse=True)
def no_setting(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)


def test_build_bar_shows_count_rate_and_eta():
    clock = FakeClock()
    console = terminal(clock)
    with progress.counted("writing images", 50, console=console) as bar:
        for _ in range(25):  # 10 files/s; stopped half way, so the last frame still has an ETA
            clock.now += 0.1
            bar.advance()
    last = shown(console).splitlines()[-1]
    assert "writing images" in last and "25/50" in last
    assert "10 files/s" in last and "ETA 0:00:03" in last  # 25 files left at 10/s: rich rounds 2.5 s up


def test_tfrecord_bar_learns_its_total_from_the_writer():
    console = terminal()
    with progress.counted("TFRecord shards (gzip)", None, unit="records", console=console) as bar:
        bar.update(30, 120)
    assert "30/120" in shown(console).splitlines()[-1]


def test_sweep_bar_shows_trial_of_n_the_variant_and_an_eta_from_finished_trials():
    clock = FakeClock()
    console = terminal()
    variants = [["loader=tf_data", "loader.num_parallel_calls=1"], ["loader=tf_data", "loader.num_parallel_calls=8"]]
    with progress.sweep(4, variants, console=console, clock=clock) as bar:
        with bar.trial(variants[0], 0, 2):
            clock.now += 10
        with bar.trial(variants[1], 0, 2):
            clock.now += 4
            line = bar.label(variants[1], "round 1/2")
            eta = bar.eta_line()
            bar._drawn.progress.refresh()  # a frame now, not when the refresh thread wakes
    assert line == "trial 2/4 loader.num_parallel_calls=8 (round 1/2)"  # loader=tf_data is every job's: not shown
    assert eta == "ETA 0:26"  # mean 10 s x 3 trials not finished - 4 s the running one has had
    frames = shown(console)
    assert "trial 2/4 loader.num_parallel_calls=8 (round 1/2)" in frames and "ETA 0:26" in frames


def test_sweep_eta():
    assert progress.eta_s([], 5) is None
    assert progress.eta_s([10.0, 20.0], 5) == 45.0
    assert progress.eta_s([10.0], 3, running_s=25.0) == 10.0  # a slow trial takes off at most one mean
    assert progress.eta_s([10.0, 10.0], 2) == 0.0
    assert progress.hms(3725) == "1:02:05" and progress.hms(65) == "1:05"


def test_a_single_trial_draws_no_bar():
    console = terminal()
    with progress.sweep(1, [["loader=synthetic"]], console=console) as bar:
        with bar.trial(["loader=synthetic"]):
            pass
    assert console.file.getvalue() == ""


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(capsys):
    assert not sys.stderr.isatty()  # pytest's capture
    with progress.counted("writing images", 3) as bar:
        for _ in range(3):
            bar.advance()
    with progress.sweep(3, [["a=1"], ["a=2"]]) as sweep:
        with sweep.trial(["a=1"]):
            print("  job 0 repeat 0: ok")
    assert capsys.readouterr() == ("  job 0 repeat 0: ok\n", "")


@pytest.mark.parametrize("how", ["--quiet", "HARNESS_PROGRESS=0"])
def test_quiet_and_the_setting_draw_nothing_even_where_a_bar_would_be_forced(capsys, monkeypatch, how):
    monkeypatch.setenv(progress.ENV, "1")
    with progress.counted("writing images", 3) as bar:
        bar.advance(3)
    assert "3/3" in capsys.readouterr().err  # forced: drawn on a stderr that is no terminal
    if how == "--quiet":
        quiet = progress.quiet()
    else:
        monkeypatch.setenv(progress.ENV, "0")
        quiet = progress.quiet(False)
    with quiet, progress.counted("writing images", 3) as bar:
        bar.advance(3)
    assert capsys.readouterr() == ("", "")


def test_main_takes_quiet_out_before_the_command_sees_it(monkeypatch):
    from harness import __main__

    seen = []
    monkeypatch.setitem(__main__.COMMANDS, "datagen", lambda args: seen.append((args, progress._STATE.quiet)) or 0)
    assert __main__.main(["datagen", "-q", "dataset.count=5", "--quiet"]) == 0
    assert __main__.main(["datagen", "dataset.count=5"]) == 0
    assert seen == [(["dataset.count=5"], True), (["dataset.count=5"], False)]
    assert not progress._STATE.quiet


class Boom(Exception):
    pass


def failing_columns(unit):
    from rich.progress import ProgressColumn

    class Broken(ProgressColumn):
        def render(self, task):
            raise Boom("a column that cannot draw")

    return [Broken()]


def failing_start(*args):
    raise Boom("no terminal after all")


def failing_advance(self, task, advance=1):
    raise Boom("a broken bar")


@pytest.mark.parametrize(
    "patch",
    [
        (progress, "_count_columns", failing_columns),
        (progress, "_start", failing_start),
        ("rich.progress.Progress.advance", failing_advance),
    ],
)
def test_a_bar_that_fails_to_draw_does_not_break_a_build(tmp_path, monkeypatch, capsys, patch):
    monkeypatch.setenv(progress.ENV, "1")
    monkeypatch.setattr(*patch)
    monkeypatch.setattr(build.os, "cpu_count", lambda: 1)  # build in this process, where the bar is
    manifest = build.prepare(SyntheticDatasetConf(count=12, width=32, height=24, cache_dir=str(tmp_path)))
    assert len(manifest) == 12
    assert "Boom" not in capsys.readouterr().err


@pytest.mark.parametrize("signal", [stop.Interrupted(15), KeyboardInterrupt()])
def test_an_interrupted_bar_stops_and_gives_back_the_streams(monkeypatch, signal):
    """A SIGTERM (stop.Interrupted) or Ctrl-C inside a bar: it stops with its thread, stderr is the one from before."""
    monkeypatch.setenv(progress.ENV, "1")  # drawn on stderr, which is redirected above the bar while it shows
    before = sys.stdout, sys.stderr
    with pytest.raises(type(signal)):
        with progress.sweep(3, [["a=1"], ["a=2"]]) as bar:
            live = bar._drawn.progress.live
            assert sys.stderr is not before[1]
            with bar.trial(["a=1"]):
                raise signal
    assert (sys.stdout, sys.stderr) == before
    assert bar.durations == []  # the stopped trial is not a finished one
    assert not live.is_started
    for thread in [t for t in threading.enumerate() if type(t).__name__ == "_RefreshThread"]:
        thread.join(timeout=5)  # told to stop, it leaves at once; the join only waits for the thread switch
        assert not thread.is_alive()


def test_the_refresh_thread_wakes_at_most_four_times_a_second():
    """The parent redraws while a trial runs in its child; a low rate keeps that cheap (an upper bound: load only lowers it)."""
    assert progress.REFRESH_PER_SECOND <= 4
    console = terminal()
    with progress.sweep(3, [["a=1"], ["a=2"]], console=console) as bar:
        assert bar._drawn.progress.live.refresh_per_second <= 4
        frames_before = console.file.getvalue().count("\r")
        time.sleep(1.0)
        frames = console.file.getvalue().count("\r") - frames_before
    assert frames <= 4 + 1


def test_tfrecord_writer_lines_move_the_bar_and_its_stderr_names_a_failure(monkeypatch, capsys):
    """The shard writer is a child process (TensorFlow stays out of this one): its WRITTEN TOTAL lines drive the bar."""
    monkeypatch.setenv(progress.ENV, "1")
    writer = "import sys; print('TensorFlow says hello'); print(2, 8, flush=True); print(8, 8, flush=True)"
    build._write_tfrecord([sys.executable, "-c", writer], "gzip")
    err = ANSI.sub("", capsys.readouterr().err)
    assert "TFRecord shards (gzip)" in err and "8/8" in err and "records/s" in err
    failing = "import sys; print(1, 8, flush=True); sys.stderr.write('warning\\nValueError: bad image\\n'); sys.exit(1)"
    with pytest.raises(HarnessError, match=r"building TFRecord shards \(gzip\) failed: ValueError: bad image"):
        build._write_tfrecord([sys.executable, "-c", failing], "gzip")


def test_a_chunk_of_results_arriving_at_once_does_not_read_as_a_huge_rate(monkeypatch):
    """A process pool's results come a chunk at a time, microseconds apart: counted one by one, the bar
    would show 10 files in 9 us (a million files/s) until the next chunk, a second later."""
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    console = terminal(clock)

    def chunks():
        for _ in range(8):
            clock.now += 1.0  # a chunk a second...
            for item in range(10):
                clock.now += 1e-6  # ...its 10 results a microsecond apart
                yield item

    with progress.counted("writing images", 80, console=console) as bar:
        for taken, _ in enumerate(bar.track(chunks()), 1):
            if taken == 10:
                break  # the first chunk is in; the pool waits a second for the next
    assert re.search(r"/80 - files/s", shown(console).splitlines()[-1])  # no rate yet, rather than a wrong one
    console = terminal(clock)
    with progress.counted("writing images", 80, console=console) as bar:
        assert len(list(bar.track(chunks()))) == 80
    last = shown(console).splitlines()[-1]
    rate = float(re.search(r"([\d,.]+) files/s", last).group(1).replace(",", ""))
    assert "80/80" in last and 5 <= rate <= 20, last  # about 10 files/s
