"""Run a cycle on a fixed interval with APScheduler; stop cleanly on SIGTERM/SIGINT.

One cycle at a time (max_instances=1); missed runs collapse into one (coalesce) instead of a
burst after a long cycle. On a signal the running cycle finishes its current batch, saves its
checkpoints and returns; nothing is cut in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["run_every"]

log = structlog.get_logger("sidecar.scheduler")


def run_every(
    interval_s: float,
    cycle: Callable[[threading.Event], None],
    stop: threading.Event | None = None,
    max_cycles: int | None = None,
) -> int:
    """Blocks until a signal (or `max_cycles` cycles); returns the number of cycles run."""
    stop = stop or threading.Event()
    scheduler = BlockingScheduler(timezone=UTC)
    running = threading.Lock()
    done = 0

    def job() -> None:
        nonlocal done
        with running:
            if stop.is_set():
                return
            try:
                cycle(stop)
            finally:  # a failed cycle still counts towards max_cycles
                done += 1
                if max_cycles is not None and done >= max_cycles:
                    stop.set()
                    scheduler.shutdown(wait=False)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    scheduler.add_job(
        job,
        IntervalTrigger(seconds=interval_s),
        id="cycle",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(interval_s)),
        next_run_time=datetime.now(UTC),
    )
    try:
        scheduler.start()
    finally:
        with running:  # wait for a cycle in flight to reach its safe point
            pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("scheduler_stopped", cycles=done)
    return done
