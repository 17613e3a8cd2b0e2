"""Run a cycle on a fixed interval with APScheduler; stop cleanly on SIGTERM/SIGINT.

One cycle at a time (max_instances=1); missed runs collapse into one (coalesce) instead of a
burst after a long cycle. On a signal the running cycle finishes its current batch, saves its
checkpoints and returns; nothing is cut in half. After failed cycles (cluster down, say) the
next one waits longer each time, with jitter so that many sidecars do not return in step.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["run_every", "backoff_seconds"]

log = structlog.get_logger("sidecar.scheduler")


def backoff_seconds(
    failures: int, interval_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Wait before the next cycle after `failures` failed ones in a row: the interval doubled
    per failure, capped, then drawn uniformly from its upper half ("equal jitter")."""
    ceiling = min(max_s, interval_s * 2 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def run_every(
    interval_s: float,
    cycle: Callable[[threading.Event], bool | None],
    stop: threading.Event | None = None,
    max_cycles: int | None = None,
    max_backoff_s: float = 600.0,
) -> int:
    """Blocks until a signal (or `max_cycles` cycles); returns the number of cycles run.

    `cycle` returns False when it failed; the next run is then pushed back (see
    `backoff_seconds`) instead of hitting a struggling cluster every interval.
    """
    stop = stop or threading.Event()
    scheduler = BlockingScheduler(timezone=UTC)
    running = threading.Lock()
    done = 0
    failures = 0

    def job() -> None:
        nonlocal done, failures
        with running:
            if stop.is_set():
                return
            ok = False
            try:
                ok = cycle(stop) is not False
            finally:  # a failed cycle still counts towards max_cycles
                done += 1
                if max_cycles is not None and done >= max_cycles:
                    stop.set()
                    scheduler.shutdown(wait=False)
            failures = 0 if ok else failures + 1
            if failures and not stop.is_set():
                delay = max(interval_s, backoff_seconds(failures, interval_s, max_backoff_s))
                log.warning("backing_off", failures=failures, next_cycle_in_s=round(delay, 2))
                scheduler.modify_job(
                    "cycle", next_run_time=datetime.now(UTC) + timedelta(seconds=delay)
                )

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
