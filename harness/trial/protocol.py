"""The parent/child trial protocol, said once: one request in, one result out, one live channel.

A trial folder holds, when the trial is over::

    trial.json       the request: the parent's only message to the child (written before it starts)
    trial.log        the child's stdout and stderr
    result.json      the child's result, written once, atomically, by the child; never edited
    supervisor.json  the parent's facts beside it: how the child ended and the sampler's record

While it runs, parent and child share one Unix socket pair, its child end passed with
``pass_fds`` and named in the request. The child says when its measured phase begins and
ends; the parent's sampler answers once it has read the workers' memory at that end (USS
needs the workers still alive). Nothing else travels between them: no environment
variable, no file polled. Neither side can hang on the other: the parent only reads the
channel without waiting, and the child waits for the answer at most :data:`ACK_WAIT_S`,
less when the channel closes (the parent is gone).

When the child leaves no ``result.json`` (a crash, a timeout, a signal), the parent writes
one itself, saying why; :func:`harness.results.model.read_result` merges
``supervisor.json`` into what every reader sees. Cf. pyperf's ``_manager.py``, whose
workers write their own output file.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

REQUEST_FILE = "trial.json"
RESULT_FILE = "result.json"
SUPERVISOR_FILE = "supervisor.json"
LOG_FILE = "trial.log"
SCHEMA_VERSION = 1  # of trial.json and supervisor.json

# The channel's events, one line each: the child's two, the sampler's answer.
MEASURING, MEASURED, SAMPLED = "measuring", "measured", "sampled"
# Longest wait for the sampler's answer: it looks at the channel once per tick, and a tick of
# a loaded machine reading USS of a torch tree takes well under a second.
ACK_WAIT_S = 3.0
OUTCOMES = ("exited", "timeout", "interrupted")


@dataclass
class Request:
    """``trial.json``: everything the child is told, in one file."""

    config_file: str  # the job's resolved trial.yaml
    job: int  # Hydra job number within the sweep
    repeat: int  # repeat index within the job
    overrides: list[str]  # the job's overrides, as given to Hydra
    kind: str = "trial"  # trial | augbench
    schedule: dict[str, int] = field(default_factory=dict)  # round and position in the sweep's order
    spawned_at: float = 0.0  # time.time() just before the parent started the child, s
    sampled: bool = False  # the parent samples this trial: the child waits for the end-of-phase answer
    # process settings (augbench's one-thread pools), applied by the child before any framework import
    env: dict[str, str] = field(default_factory=dict)
    channel_fd: int | None = None  # the child's end of the channel, a file descriptor number in the child
    # storage=throttled / http: where the parent serves the dataset cache ({"source", "mount"} or {"source", "url"}); {}: local
    storage: dict[str, str] = field(default_factory=dict)
    # a job Ray runs: its node's address and whether the job holds the node's harness_node (harness.trial.peer.job_node)
    cluster: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def write(self, folder: Path) -> Path:
        from harness.data.manifest import write_json_atomic

        path = Path(folder) / REQUEST_FILE
        write_json_atomic(path, asdict(self))
        return path

    @classmethod
    def read(cls, folder: Path) -> Request:
        return cls(**_load(Path(folder) / REQUEST_FILE, cls))


@dataclass
class Supervision:
    """``supervisor.json``: what the parent saw of the child, written beside its result."""

    outcome: str  # exited | timeout (killed at trial.timeout_s) | interrupted (a signal stopped the sweep)
    exit_code: int | None  # the child's exit status; negative: killed by that signal
    killed: str | None  # the last signal sent to the child's process group; None: nothing was left in it
    elapsed_s: float  # from the child's start until its group was gone, s
    result_by: str  # who wrote result.json: child | parent (the child left none)
    monitor: dict[str, Any] = field(default_factory=dict)  # the sampler's record and its summary; {} when not sampled
    storage: dict[str, Any] = field(default_factory=dict)  # a throttled mount's profile, requests and CPU; error if it died
    schema_version: int = SCHEMA_VERSION

    def write(self, folder: Path) -> Path:
        from harness.data.manifest import write_json_atomic

        path = Path(folder) / SUPERVISOR_FILE
        write_json_atomic(path, asdict(self))
        return path


def read_supervision(folder: Path) -> Supervision | None:
    """The parent's ``supervisor.json`` in ``folder``; ``None`` when there is none (a result written without a trial)."""
    path = Path(folder) / SUPERVISOR_FILE
    if not path.exists():
        return None
    facts = Supervision(**_load(path, Supervision))
    monitor = facts.monitor
    if not isinstance(monitor, dict) or (monitor and not all(isinstance(monitor.get(k), dict) for k in ("summary", "overhead"))):
        raise HarnessError(f"{path}: malformed {path.name}: its monitor record has no summary or overhead")
    return facts


def _load(path: Path, kind: type) -> dict[str, Any]:
    """The fields of ``kind`` from a JSON file; :class:`HarnessError` naming the file when it cannot be one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: not a readable {path.name} ({exc})") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise HarnessError(f"{path}: schema {version!r} is not one this harness reads (up to {SCHEMA_VERSION}); upgrade harness")
    names = {f.name for f in fields(kind)}
    missing = [f.name for f in fields(kind) if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise HarnessError(f"{path}: malformed {path.name}: no {', '.join(missing)}")
    return {k: v for k, v in data.items() if k in names}


class Channel:
    """One end of a trial's channel: a Unix stream socket carrying one event name per line.

    The child calls :meth:`begin` and :meth:`end`; the parent's sampler :meth:`begun`,
    :meth:`ended` and :meth:`acknowledge` (the :class:`harness.monitor.sampler.Phases` it expects).
    """

    def __init__(self, sock: socket.socket, ack_wait_s: float = 0.0):
        self._sock = sock
        self._buffer = b""
        self.ack_wait_s = ack_wait_s  # how long end() waits for the answer; 0: nobody answers
        self.seen: set[str] = set()  # every event received so far
        self.closed = False  # the other side closed its end (or died)

    @classmethod
    def pair(cls) -> tuple[Channel, socket.socket]:
        """(the parent's end, the socket whose descriptor the child gets)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(parent), child

    @classmethod
    def for_child(cls, request: Request) -> Channel | None:
        """The child's end named in ``request``; ``None`` when there is none, or the descriptor is no socket
        (the worker started by hand from an old trial folder)."""
        if request.channel_fd is None:
            return None
        try:
            sock = socket.socket(fileno=request.channel_fd)
        except OSError:
            return None
        sock.set_inheritable(False)  # processes the trial execs (spawned workers) need not hold it open
        return cls(sock, ACK_WAIT_S if request.sampled else 0.0)

    def send(self, event: str) -> bool:
        """Send one event; ``False`` when the other side is gone."""
        try:
            self._sock.sendall(event.encode() + b"\n")
        except OSError:
            return False
        return True

    def receive(self, timeout_s: float = 0.0) -> set[str]:
        """Take in what has arrived, waiting at most ``timeout_s`` for it; every event seen so far."""
        if self.closed:
            return self.seen
        self._sock.settimeout(timeout_s)  # 0: do not wait
        try:
            data = self._sock.recv(4096)
        except (BlockingIOError, TimeoutError):
            return self.seen
        except OSError:  # reset by a peer that died
            data = b""
        if not data:
            self.closed = True
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        self.seen.update(line.decode(errors="replace") for line in lines)
        return self.seen

    def wait_for(self, event: str, timeout_s: float) -> bool:
        """Whether ``event`` came within ``timeout_s``; returns early when the other side closes."""
        deadline = time.monotonic() + timeout_s
        while event not in self.seen and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.receive(left)
        return event in self.seen

    # -- the child's side ----------------------------------------------------------------
    def begin(self) -> None:
        """The measured phase begins."""
        self.send(MEASURING)

    def end(self) -> bool:
        """The measured phase has ended: wait (at most ``ack_wait_s``) while the sampler reads the workers' memory."""
        self.send(MEASURED)
        return self.ack_wait_s > 0 and self.wait_for(SAMPLED, self.ack_wait_s)

    # -- the parent's side (the sampler's thread) ------------------------------------------
    def begun(self) -> bool:
        return MEASURING in self.receive()

    def ended(self) -> bool:
        return MEASURED in self.receive()

    def acknowledge(self) -> None:
        self.send(SAMPLED)

    def close(self) -> None:
        self._sock.close()
