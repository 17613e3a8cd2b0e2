"""Heavy work in a child process: scheduled retraining runs beside the cycles without sharing
their interpreter, their CPU priority or their memory.

In the service's own process a retraining held the interpreter for minutes (the soak
benchmark's cycles lagged past their bound while it ran), and the memory torch took for it
stayed with the process afterwards (+466 MiB over 30 minutes). A spawned child at a lower CPU
priority gives the cycles the machine first and returns every byte to the system when it
exits. The child reports progress and its result over a pipe; the parent relays progress to
its gauges (sidecar/app/progress.py's TrainingGauges), so /metrics shows a retraining as
before. A child that raises, or dies without a result (killed, out of memory), is a failure
the caller sees; the stop event terminates it.

`spawn`, not `fork`: a fork would copy the parent's threads' locks mid-flight (the scheduler,
the HTTP server, the notifier) and torch's thread pools, which is undefined behaviour.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from sidecar.app.progress import TrainingGauges

__all__ = ["ChildFailed", "PipeGauges", "run_in_child"]

# The child's nice increment: below the cycles, above nothing else that matters.
CHILD_NICENESS = 10
# How often the parent looks at the stop event while it waits.
_POLL_SECONDS = 0.5


class ChildFailed(RuntimeError):
    """The child raised (its exception's kind and message), or died without a result."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class PipeGauges:
    """TrainingGauges for the child: each call becomes a message to the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def training_phase(self, phase: str) -> None:
        self.conn.send(("gauge", "training_phase", (phase,)))

    def training_read(self, events: int) -> None:
        self.conn.send(("gauge", "training_read", (events,)))

    def training_epoch(self, model: str, epoch: int, seconds: float) -> None:
        self.conn.send(("gauge", "training_epoch", (model, epoch, seconds)))


@dataclass(frozen=True, slots=True)
class _Job:
    target: Callable[..., Any]
    args: tuple[Any, ...]
    niceness: int


def _main(job: _Job, conn: Connection) -> None:
    try:
        if job.niceness:
            os.nice(job.niceness)
        result = job.target(*job.args, PipeGauges(conn))
        conn.send(("done", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("failed", (type(exc).__name__, str(exc))))
    finally:
        conn.close()


_GAUGE_CALLS = frozenset({"training_phase", "training_read", "training_epoch"})


def run_in_child(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    gauges: TrainingGauges | None,
    stop: threading.Event,
    niceness: int = CHILD_NICENESS,
) -> Any:
    """`target(*args, gauges)` in a spawned child; returns its result. `target` and `args`
    must pickle (a module-level function, plain data, Settings). Raises ChildFailed."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_main, args=(_Job(target, args, niceness), send), name="sidecar-child", daemon=True
    )
    process.start()
    send.close()  # the child holds the only writer: EOF means it is gone
    outcome: tuple[str, Any] | None = None
    try:
        while outcome is None:
            if stop.is_set():
                raise ChildFailed("Stopped", "the service is stopping")
            if not receive.poll(_POLL_SECONDS):
                continue
            try:
                message = receive.recv()
            except EOFError:
                break
            if message[0] == "gauge":
                _, name, values = message
                if gauges is not None and name in _GAUGE_CALLS:
                    getattr(gauges, name)(*values)
            else:
                outcome = (message[0], message[1])
    finally:
        if outcome is None and process.is_alive():
            process.terminate()
        process.join()
        receive.close()
    if outcome is None:
        raise ChildFailed("Died", f"the child exited with code {process.exitcode} and no result")
    if outcome[0] == "failed":
        kind, message = outcome[1]
        raise ChildFailed(kind, message)
    return outcome[1]
