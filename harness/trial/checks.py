"""Per-batch checks: the shape contract, and whether each epoch delivered the same data.

Every trial records, per epoch, how many samples arrived, an order-independent checksum
of their ids, and how that compares with the dataset (missing, duplicated, unknown ids).
It also follows a few fixed samples' pixels (a hash of their exact bytes) across epochs:
with a random op in the pipeline some must change between epochs, and if all repeat
exactly, a cache sits after the random op.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

import numpy as np

from harness.config.schema import choice
from harness.errors import HarnessError

# Fixed samples whose pixels are followed across epochs. With a p=0.5 random op, all 16
# repeating their draw by chance happens once in 65,536 epochs pairs.
TRACKED = 16


def id_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    return str(value)


def ids_of(ids) -> list[str] | None:
    if ids is None:
        return None
    if hasattr(ids, "numpy"):
        ids = ids.numpy()
    return [id_text(v) for v in (ids.tolist() if isinstance(ids, np.ndarray) else ids)]


def checksum(ids: Iterable[str]) -> str:
    """Order-independent: the sum of 64-bit hashes, so duplicates change it too."""
    total = 0
    for sample_id in ids:
        total += int.from_bytes(hashlib.blake2b(sample_id.encode(), digest_size=8).digest(), "little")
    return f"{total % 2**64:016x}"


def dtype_name(array) -> str:
    dtype = array.dtype
    return getattr(dtype, "name", None) or str(dtype).replace("torch.", "")


# Batches whose pixel statistics are recorded, and the stride of the pixel grid they are
# computed on (every 4th row and column: a 16th of the pixels, about 1 ms per batch).
STAT_BATCHES = 8
STAT_STRIDE = 4


class OutputStats:
    """Shape, dtype and pixel statistics of what the loader delivered (after any augmentation)."""

    def __init__(self, layout: str):
        self.nchw = layout == "nchw"
        self.sums = np.zeros(4)  # n, sum, sum of squares, batches
        self.low, self.high = np.inf, -np.inf
        self.shape: list[int] | None = None  # per sample, once a batch was added
        self.dtype: str | None = None

    def add(self, host: np.ndarray) -> None:
        if self.sums[3] >= STAT_BATCHES:
            return
        self.shape, self.dtype = list(host.shape[1:]), dtype_name(host)
        grid = host[:, :, ::STAT_STRIDE, ::STAT_STRIDE] if self.nchw else host[:, ::STAT_STRIDE, ::STAT_STRIDE]
        values = grid.astype(np.float64, copy=False)
        self.sums += (values.size, values.sum(), np.square(values).sum(), 1)
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def report(self) -> dict:
        n, total, squares, batches = self.sums
        if not batches:
            return {"batches": 0}
        mean = total / n
        return {
            "sample_shape": self.shape,
            "dtype": self.dtype,
            "mean": round(mean, 4),
            "std": round(float(np.sqrt(max(squares / n - mean**2, 0.0))), 4),
            "min": round(self.low, 4),
            "max": round(self.high, 4),
            "batches": int(batches),
            "pixel_stride": STAT_STRIDE,
        }


def once_each(per_epoch: dict[int, list[str]]) -> list[str]:
    """Each problem once, with the epochs it came up in ("epochs 0-4: ..."), in order of first appearance.

    A dropped remainder comes up in every epoch; one line per epoch buried the other notes.
    """
    epochs: dict[str, list[int]] = {}
    for e, texts in per_epoch.items():
        for text in texts:
            epochs.setdefault(text, []).append(e)
    return [f"{epoch_span(seen)}: {text}" for text, seen in epochs.items()]


def epoch_span(epochs: list[int]) -> str:
    """``epoch 3``, ``epochs 0-4`` (consecutive) or ``epochs 0, 2, 5``."""
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"epochs {epochs[0]}-{epochs[-1]}"
    return "epochs " + ", ".join(map(str, epochs))


def contract_hint(shape: tuple, dtype: str, expected: tuple, expected_dtype: str, nchw: bool) -> str:
    """What to set (or change in the pipeline) so a batch of ``shape``/``dtype`` meets ``batch.*``.

    ``expected`` is the batch's shape in the configured layout (``nchw`` or not); a batch
    holding the same dimensions in the other order asks for the other ``batch.layout``.
    """
    fixes = []
    if dtype != expected_dtype:
        fixes.append(f"batch.dtype={dtype}" if dtype in ("uint8", "float32") else f"cast the images to uint8 or float32 (got {dtype})")
    if len(shape) != 4:
        return "; ".join(fixes + [f"yield 4-d image batches (got {len(shape)}-d)"])
    height, width, channels = (expected[2], expected[3], expected[1]) if nchw else (expected[1], expected[2], expected[3])
    other = (channels, height, width) if not nchw else (height, width, channels)
    if tuple(shape[1:]) == other:
        fixes.append(f"batch.layout={'nhwc' if nchw else 'nchw'}")
    elif tuple(shape[1:]) != tuple(expected[1:]):
        got = dict(zip(("channels", "height", "width") if nchw else ("height", "width", "channels"), shape[1:]))
        want = {"height": height, "width": width, "channels": channels}
        fixes += [f"batch.{k}={got[k]}" for k in ("height", "width", "channels") if got[k] != want[k]]
    if shape[0] > expected[0]:
        fixes.append(f"batch.size={shape[0]}")
    return ", ".join(fixes)


class BatchChecks:
    """Per-batch checks: :meth:`check_shape` before the copy, :meth:`account` during compute."""

    def __call__(self, epoch: int, batch) -> None:
        self.check_shape(epoch, batch)
        self.account(epoch, batch)

    def __init__(self, batch, expected_ids: list[str] | None):
        from harness.trial.consumer import batch_shape

        self.expected = batch_shape(batch)
        self.dtype = choice(batch.dtype)
        self.expected_ids = expected_ids
        self.tracked = set(sorted(expected_ids)[:TRACKED]) if expected_ids else set()
        self.seen: dict[int, Counter] = {}
        self.pixels: dict[int, dict[str, str]] = {}  # epoch -> tracked id -> pixel hash
        self.output = OutputStats(choice(batch.layout))

    def check_shape(self, epoch: int, batch) -> None:
        """Fail the trial at once if the loader broke the batch contract (before the copy)."""
        images = batch.images
        shape = tuple(int(d) for d in images.shape)
        if shape[1:] != self.expected[1:] or not 0 < shape[0] <= self.expected[0] or dtype_name(images) != self.dtype:
            hint = contract_hint(shape, dtype_name(images), self.expected, self.dtype, self.output.nchw)
            raise HarnessError(
                f"the loader produced a batch of shape {shape} {dtype_name(images)}, but batch.* asks for {self.expected} "
                f"{self.dtype}" + (f": {hint}" if hint else "")
            )

    def account(self, epoch: int, batch) -> None:
        """Count the batch's ids and follow tracked samples (run while the device computes)."""
        from harness.trial.consumer import to_host

        images = batch.images
        if self.output.sums[3] < STAT_BATCHES:
            self.output.add(to_host(images))
        ids = ids_of(batch.ids)
        if ids is None:
            return
        self.seen.setdefault(epoch, Counter()).update(ids)
        hits = [i for i, sample_id in enumerate(ids) if sample_id in self.tracked]
        if hits:
            host = to_host(images)
            hashes = self.pixels.setdefault(epoch, {})
            for i in hits:
                data = np.ascontiguousarray(host[i]).tobytes()
                hashes[ids[i]] = hashlib.blake2b(data, digest_size=8).hexdigest()

    def report(self, random_ops: bool | None, completed: Iterable[int]) -> dict:
        """Per-epoch delivery and a verdict that rows of a report can be compared on.

        Args:
            random_ops: whether the pipeline has random ops (augmentation); ``None`` when unknown.
            completed: epochs the loader finished; an epoch cut short by a bound is not judged.
        """
        if not self.seen:
            return {"verdict": "unchecked", "problems": ["the loader does not report sample ids"], "output": self.output.report()}
        expected = Counter(self.expected_ids or [])
        epochs = {str(e): self._epoch(counts, expected) for e, counts in sorted(self.seen.items())}
        per_epoch = {e: self._epoch_problems(epochs[str(e)]) for e in sorted(set(completed) & set(self.seen))}
        problems = once_each(per_epoch)
        repeats = self._pixels_repeat()
        if random_ops and repeats:
            problems.append("random ops repeat their output across epochs (a cache after a random op?)")
        if random_ops is False and repeats is False:  # None: unknown (a user's pipeline may augment)
            problems.append("a deterministic pipeline changed a sample's pixels between epochs")
        judged = bool(set(completed) & set(self.seen))
        verdict = "differs" if problems else ("complete" if judged else "partial")
        return {
            "verdict": verdict,
            "problems": problems,
            "epochs": epochs,
            "dataset_checksum": checksum(expected.elements()) if expected else None,
            "tracked_pixels": {str(k): v for k, v in self.pixels.items()},
            "output": self.output.report(),
        }

    @staticmethod
    def _epoch(counts: Counter, expected: Counter) -> dict:
        return {
            "samples": sum(counts.values()),
            "distinct": len(counts),
            "checksum": checksum(counts.elements()),
            "missing": sum((expected - counts).values()) if expected else None,
            "duplicates": sum(c - 1 for c in counts.values() if c > 1),
            "unknown": sum(1 for k in counts if expected and k not in expected),
        }

    @staticmethod
    def _epoch_problems(e: dict) -> list[str]:
        problems = []
        if e["duplicates"]:
            problems.append(f"{e['duplicates']} duplicated samples")
        if e["unknown"]:
            problems.append(f"{e['unknown']} samples not in the dataset")
        if e["missing"]:
            problems.append(f"{e['missing']} samples never delivered (a dropped remainder?)")
        return problems

    def _pixels_repeat(self) -> bool | None:
        """True if tracked samples look identical in every epoch, False if any differ, None if unknown."""
        common = None
        for sums in self.pixels.values():
            common = set(sums) if common is None else common & set(sums)
        if not common or len(self.pixels) < 2:
            return None
        first = self.pixels[min(self.pixels)]
        return all(sums[k] == first[k] for sums in self.pixels.values() for k in common)
