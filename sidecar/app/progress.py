"""Where a training run is, for the person waiting on it and for the metrics of `run`.

`train` and `retrain` report the events read, then each epoch's losses with how long it may
still take, then a summary. On a terminal the epochs draw one progress line that rewrites
itself; anywhere else (a pod's log, a pipe) each epoch is a structured log line. Scheduled
retraining inside `run` sets gauges too (sidecar/app/metrics.py).
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

import structlog

from sidecar.models.fitting import EpochHook, EpochProgress

__all__ = ["TrainingGauges", "TrainingProgress"]

log = structlog.get_logger("sidecar.training")

BAR_WIDTH = 24


class TrainingGauges(Protocol):
    def training_phase(self, phase: str) -> None: ...

    def training_read(self, events: int) -> None: ...

    def training_epoch(self, model: str, epoch: int, seconds: float) -> None: ...


class TrainingProgress:
    def __init__(self, terminal: TextIO | None = None, gauges: TrainingGauges | None = None):
        """`terminal`: a stream to draw the progress line on (None: log lines only)."""
        self.terminal = terminal
        self.gauges = gauges
        self.started = time.monotonic()

    @classmethod
    def for_command(cls) -> TrainingProgress:
        """A progress line when stderr is a terminal, log lines otherwise."""
        return cls(sys.stderr if sys.stderr.isatty() else None)

    def read(self, events: int, hosts: int, done: bool = False) -> None:
        if self.gauges is not None:
            self.gauges.training_phase("reading")
            self.gauges.training_read(events)
        log.info(
            "training_data_read" if done else "training_data_reading",
            events=events,
            hosts=hosts,
            seconds=round(time.monotonic() - self.started, 1),
        )

    def epochs(self, model: str) -> EpochHook:
        if self.gauges is not None:
            self.gauges.training_phase("training")

        def on_epoch(progress: EpochProgress) -> None:
            if self.gauges is not None:
                self.gauges.training_epoch(model, progress.epoch, progress.seconds)
            if self.terminal is not None:
                self.terminal.write("\r" + progress_line(model, progress))
                self.terminal.flush()
                return
            log.info(
                "training_epoch",
                model=model,
                epoch=progress.epoch,
                max_epochs=progress.max_epochs,
                loss=round(progress.loss, 5),
                held_out_loss=(
                    round(progress.held_out_loss, 5) if progress.held_out_loss is not None else None
                ),
                epochs_without_gain=progress.stale,
                epochs_left_if_settled=progress.epochs_left_if_settled,
                seconds=round(progress.seconds, 1),
                seconds_left_at_most=round(progress.seconds_left_at_most),
            )

        return on_epoch

    def finished(self) -> None:
        if self.terminal is not None:
            self.terminal.write("\n")
            self.terminal.flush()
        if self.gauges is not None:
            self.gauges.training_phase("idle")


def progress_line(model: str, progress: EpochProgress) -> str:
    """One terminal line: a bar over the epoch limit, the losses, and what stops it."""
    filled = round(BAR_WIDTH * progress.epoch / progress.max_epochs)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    held = f" held-out {progress.held_out_loss:.4f}" if progress.held_out_loss is not None else ""
    return (
        f"{model} epoch {progress.epoch}/{progress.max_epochs} [{bar}] loss {progress.loss:.4f}"
        f"{held}, {progress.seconds:.0f} s; stops in {progress.epochs_left_if_settled} "
        f"epoch(s) unless it improves, {progress.seconds_left_at_most:.0f} s at most "
    )
