"""The training loop the neural models share: Adam over mini-batches drawn by weight from
distinct items (windows, count vectors), stopped when the loss on held-out occurrences settles.

Logs repeat themselves, so training data is kept as distinct items with how often each
occurred. An epoch draws a fixed number of occurrences by weight instead of sweeping every
distinct item: on a fleet with hundreds of thousands of distinct windows a sweep took a minute
per epoch on two cores, while the loss settles within about one pass over the occurrences
(issue 16; docs/training.md has the measurements).

The stop rule is the product's, for every model that trains a network: a tenth of the
occurrences (a binomial split of each item's count) is held out of fitting, and training stops
once the loss on them has not improved by more than `min_relative_improvement` of its best for
`patience` epochs; the weights of the best held-out epoch are kept. The held-out occurrences
come from the data the caller fits on, so they never overlap a calibration slice or a
retraining gate's evaluation set.

Training runs on the device `training_device` names (SIDECAR_DEVICE: a GPU when one is
present), the index draws stay on the CPU's seeded generator, and the network comes back to the
CPU when it is done, so what is saved does not depend on where it was trained.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

__all__ = [
    "current_training_device",
    "one_thread",
    "training_device",
    "EPOCH_SAMPLES",
    "EpochProgress",
    "FitSchedule",
    "HELD_OUT_SHARE",
    "TrainingSummary",
    "fit_weighted",
]

# An epoch draws as many occurrences as there are distinct items (as many steps as the sweep
# it replaces), at most this many; the stop rule judges the loss once per this many draws: a
# few seconds on two cores, so it reacts soon after the loss settles.
EPOCH_SAMPLES = 65_536
HELD_OUT_SHARE = 0.1
# Held-out occurrences evaluated per epoch: the same fixed draw every epoch, so epochs are
# compared on identical items and a 1% change is not sampling noise.
HELD_OUT_SAMPLE = 16_384
# Below this many held-out occurrences the estimate is too coarse: stop on the training loss.
MIN_HELD_OUT = 256


_CPU = torch.device("cpu")
_DEVICE: ContextVar[torch.device] = ContextVar("training_device", default=_CPU)


@contextmanager
def training_device(device: torch.device) -> Iterator[None]:
    """Networks trained inside run on `device`; the commands that train set it from
    SIDECAR_DEVICE, as scoring does."""
    token = _DEVICE.set(device)
    try:
        yield
    finally:
        _DEVICE.reset(token)


def current_training_device() -> torch.device:
    """Where the caller of `fit_weighted` keeps the tensors its `item_loss` indexes."""
    return _DEVICE.get()


@dataclass(slots=True)
class TrainingSummary:
    events: int = 0
    windows: int = 0
    distinct_windows: int = 0
    epochs_run: int = 0
    losses: list[float] = field(default_factory=list)
    held_out_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = ""  # "settled" or "max_epochs"
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "events": self.events,
            "windows": self.windows,
            "distinct_windows": self.distinct_windows,
            "epochs_run": self.epochs_run,
            "final_loss": self.losses[-1] if self.losses else None,
            "losses": [round(x, 6) for x in self.losses],
            "held_out_losses": [round(x, 6) for x in self.held_out_losses],
            "best_epoch": self.best_epoch,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class EpochProgress:
    """What a progress display needs after each epoch."""

    epoch: int
    max_epochs: int
    loss: float  # training loss of the epoch
    held_out_loss: float | None  # None when the data is too small to hold any out
    seconds: float  # since training started
    stale: int  # epochs since the last improvement of more than the rule's share
    patience: int

    @property
    def seconds_left_at_most(self) -> float:
        """If it never settled: the remaining epochs at the mean epoch time so far."""
        return self.seconds / self.epoch * (self.max_epochs - self.epoch)

    @property
    def epochs_left_if_settled(self) -> int:
        """Epochs until it stops if the loss does not improve again."""
        return min(self.patience - self.stale, self.max_epochs - self.epoch)


EpochHook = Callable[[EpochProgress], None]


class FitSchedule(Protocol):
    seed: int
    learning_rate: float
    epochs: int
    batch_size: int
    patience: int
    min_relative_improvement: float


def _split_occurrences(
    weights: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    counts = weights.round().clamp(min=0).to(torch.float64)
    held = torch.binomial(counts, torch.full_like(counts, HELD_OUT_SHARE), generator=generator)
    if float(held.sum()) < MIN_HELD_OUT:
        return weights, None
    return (counts - held).to(weights.dtype), held


def _held_out_items(
    held: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(item indices, their weights) of the fixed held-out draw."""
    if float(held.sum()) > HELD_OUT_SAMPLE:
        drawn = torch.multinomial(held, HELD_OUT_SAMPLE, replacement=True, generator=generator)
        held = torch.bincount(drawn, minlength=len(held)).to(torch.float64)
    items = torch.nonzero(held > 0).squeeze(1)
    return items, held[items]


def _mean_loss(
    item_loss: Callable[[torch.Tensor], torch.Tensor], items: torch.Tensor, weights: torch.Tensor
) -> float:
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(items), 8_192):
            part = slice(start, start + 8_192)
            total += float((item_loss(items[part]).double().cpu() * weights[part]).sum())
    return total / float(weights.sum())


def _epoch(
    item_loss: Callable[[torch.Tensor], torch.Tensor],
    fit: torch.Tensor,
    sweep: bool,
    per_epoch: int,
    optimiser: torch.optim.Optimizer,
    schedule: FitSchedule,
    generator: torch.Generator,
) -> float:
    """One epoch; its mean training loss per occurrence.

    A sweep visits every distinct item once, its loss weighted by its count: with few
    distinct items that is the whole data set's gradient at little cost. With many, an epoch
    draws `per_epoch` occurrences by weight instead (the same gradient in expectation), so an
    epoch's cost no longer grows with the number of distinct items."""
    if sweep:
        items = torch.nonzero(fit).squeeze(1)
        order = items[torch.randperm(len(items), generator=generator)]
    else:
        order = torch.multinomial(fit, per_epoch, replacement=True, generator=generator)
    total = 0.0
    for start in range(0, len(order), schedule.batch_size):
        batch = order[start : start + schedule.batch_size]
        if sweep:
            losses = item_loss(batch)
            w = fit[batch].float().to(losses.device)
            loss = (losses * w).sum() / w.sum()
            weight = float(w.sum())
        else:
            loss = item_loss(batch).mean()
            weight = len(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += loss.item() * weight
    return total / (float(fit.sum()) if sweep else len(order))


def fit_weighted(
    net: nn.Module,
    weights: torch.Tensor,
    item_loss: Callable[[torch.Tensor], torch.Tensor],
    schedule: FitSchedule,
    summary: TrainingSummary,
    on_epoch: EpochHook | None = None,
) -> None:
    """Train `net` in place; `item_loss(indices)` is the loss of each item in a batch, and
    `weights[i]` the number of times item i occurred. Deterministic for a given seed (on one
    device); records the losses per epoch in `summary`, and leaves `net` on the CPU in eval
    mode with the weights of its best held-out epoch.

    `net` trains on `current_training_device()`, and `item_loss` gets its indices there: the
    tensors it indexes must live there too."""
    started = time.perf_counter()
    torch.manual_seed(schedule.seed)
    generator = torch.Generator().manual_seed(schedule.seed)
    device = current_training_device()
    net.to(device)

    def on_device(indices: torch.Tensor) -> torch.Tensor:
        return item_loss(indices.to(device))

    fit, held = _split_occurrences(weights, generator)
    held_items = _held_out_items(held, generator) if held is not None else None
    fit = fit.to(torch.float64)
    distinct = int(torch.count_nonzero(fit))
    sweep = distinct <= EPOCH_SAMPLES
    per_epoch = max(1, min(distinct, EPOCH_SAMPLES))
    optimiser = torch.optim.Adam(net.parameters(), lr=schedule.learning_rate)
    reference, stale = math.inf, 0
    best_loss, best_state = math.inf, None
    judged: float | None = None
    since_judged = 0
    summary.stopped = "max_epochs"
    for epoch in range(1, schedule.epochs + 1):
        net.train()
        summary.losses.append(
            _epoch(on_device, fit, sweep, per_epoch, optimiser, schedule, generator)
        )
        summary.epochs_run = epoch
        net.eval()
        since_judged += per_epoch
        if since_judged >= EPOCH_SAMPLES or epoch == schedule.epochs:
            # Judged on at least EPOCH_SAMPLES draws, so a small data set's short epochs do
            # not stop it on the noise between a few optimiser steps.
            since_judged = 0
            judged = summary.losses[-1]
            if held_items is not None:
                judged = _mean_loss(on_device, *held_items)
                summary.held_out_losses.append(judged)
            if judged < best_loss:
                best_loss, summary.best_epoch = judged, epoch
                best_state = copy.deepcopy(net.state_dict())
            if judged < reference * (1 - schedule.min_relative_improvement):
                reference, stale = judged, 0
            else:
                stale += 1
        if on_epoch:
            on_epoch(
                EpochProgress(
                    epoch,
                    schedule.epochs,
                    summary.losses[-1],
                    judged if held_items is not None else None,
                    time.perf_counter() - started,
                    stale,
                    schedule.patience,
                )
            )
        if stale >= schedule.patience:
            summary.stopped = "settled"
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.to(_CPU)
    net.eval()


@contextmanager
def one_thread() -> Iterator[None]:
    """For the small networks (autoencoders): intra-op threads do not pay. On a busy two-core
    machine a training step took 30 ms with two threads and 0.7 ms with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
