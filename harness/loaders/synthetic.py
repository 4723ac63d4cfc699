"""The known-answer loader: tf.data's ArtificialDataset idea, without a framework.

Producing a batch takes exactly ``produce_ms`` of sleep (no CPU), so the expected
throughput follows from the config alone: serial (``workers=0``) gives
``1 / (produce + step)`` batches per second, background producers give
``1 / max(produce / workers, step)``. That is how anyone checks the harness itself.

With ``busy=true`` a batch costs ``produce_ms`` of CPU time instead (numpy work, which
lets go of the GIL, so producer threads run on as many cores as they get): the known
answer then depends on the cores too, which is how ``trial.cpus`` is checked.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from harness.config.schema import choice
from harness.config.validate import check_positive
from harness.errors import ConfigError
from harness.loaders.base import Batch, Knobs, Loader, LoaderConf, Needs, register_loader

_STOP = object()


@dataclass
class SyntheticLoaderConf(LoaderConf):
    """Known-answer loader: sleeps ``produce_ms`` per batch, like tf.data's ArtificialDataset."""

    name: str = "synthetic"
    produce_ms: float = 10.0  # time to produce one batch, ms
    workers: int = 1  # background producer threads; 0 produces in the consumer's thread (serial)
    prefetch: int = 2  # batches queued ahead of the consumer when workers > 0
    batches_per_epoch: int = 100  # batches in one epoch
    pool: int = 4  # distinct pre-generated batches cycled through (generation is not timed work)
    busy: bool = False  # produce_ms is CPU time burnt by the producing thread instead of a sleep


@register_loader
class SyntheticLoader(Loader):
    name = "synthetic"
    schema = SyntheticLoaderConf
    rank_sharding = "each rank generates its own batches (no dataset to split)"
    knobs = Knobs(parallel="loader.workers", prefetch="loader.prefetch")

    @classmethod
    def needs(cls, conf) -> Needs:
        return Needs(dataset=False)

    @classmethod
    def check(cls, conf) -> None:
        check_positive("loader.produce_ms", conf.produce_ms, allow_zero=True)
        check_positive("loader.workers", conf.workers, allow_zero=True)
        check_positive("loader.batches_per_epoch", conf.batches_per_epoch)
        check_positive("loader.pool", conf.pool)
        if conf.workers > 0 and conf.prefetch < 1:
            raise ConfigError(f"loader.prefetch={conf.prefetch}: must be >= 1 when loader.workers > 0")

    def __init__(self, conf, batch, dataset, seed: int, workdir=None, augment=None):
        super().__init__(conf, batch, dataset, seed, workdir, augment)
        self._pool = self._make_pool()

    def _make_pool(self) -> list[np.ndarray]:
        from harness.trial.consumer import batch_shape

        rng = np.random.default_rng(self.seed)
        shape, dtype = batch_shape(self.batch), choice(self.batch.dtype)
        return [rng.integers(0, 256, size=shape, dtype=np.uint8).astype(dtype) for _ in range(self.conf.pool)]

    def _produce(self, epoch: int, index: int) -> Batch:
        if self.conf.busy:
            _burn(self.conf.produce_ms / 1000.0)
        else:
            time.sleep(self.conf.produce_ms / 1000.0)
        size = self.batch.size
        start = (epoch * self.conf.batches_per_epoch + index) * size
        return Batch(
            images=self._pool[index % len(self._pool)],
            labels=np.zeros(size, dtype=np.int64),
            ids=np.arange(start, start + size) % (self.conf.batches_per_epoch * size),
        )

    def epoch(self, index: int) -> Iterator[Batch]:
        if self.conf.workers == 0:
            for i in range(self.conf.batches_per_epoch):
                yield self._produce(index, i)
            return
        yield from self._threaded_epoch(index)

    def _threaded_epoch(self, epoch: int) -> Iterator[Batch]:
        total = self.conf.batches_per_epoch
        out: queue.Queue = queue.Queue(maxsize=self.conf.prefetch)
        stop = threading.Event()
        claim = iter(range(total))
        lock = threading.Lock()

        def producer() -> None:
            while not stop.is_set():
                with lock:
                    i = next(claim, None)
                if i is None:
                    return
                item = self._produce(epoch, i)
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue

        threads = [threading.Thread(target=producer, daemon=True, name=f"synthetic-producer-{k}") for k in range(self.conf.workers)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(total):
                yield out.get()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)

    def reference_pixels(self, path: str):
        return self._pool[0][0]

    def describe(self) -> dict:
        c = self.conf
        expected = {
            "serial_batches_per_s": "1000 / (produce_ms + step_ms)",
            "overlapped_batches_per_s": "1000 / max(produce_ms / workers, step_ms)",
        }
        ops = [
            f"{'burn' if c.busy else 'sleep'} {c.produce_ms:g} ms{' of CPU' if c.busy else ''} per batch"
            + (" in the consumer's thread" if c.workers == 0 else f" in {c.workers} producer threads, queue of {c.prefetch}")
        ]
        return {"ops": ops, "mode": "serial" if c.workers == 0 else "threads", "workers": c.workers, "queue": c.prefetch, "model": expected}


def _burn(seconds: float) -> None:
    """Keep this thread's CPU busy for ``seconds`` of its own CPU time (not wall time: on a shared core it takes longer).

    Each call works on 32K floats (about 0.1 ms): numpy drops the GIL inside it, so the
    threads that burn at once share the cores, not the interpreter.
    """
    work = np.linspace(0.0, 1.0, 1 << 15)
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        np.sin(work, out=work)
