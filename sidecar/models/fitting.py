"""The training loop the neural models share: Adam over mini-batches of distinct items
(windows, count vectors), each weighted by how often it occurred, with early stopping.

Training on distinct items weighted by their counts gives the gradient of the full data set at
a fraction of the steps; the caller says what an item's loss is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

__all__ = ["FitSchedule", "TrainingSummary", "fit_weighted"]


@dataclass(slots=True)
class TrainingSummary:
    events: int = 0
    windows: int = 0
    distinct_windows: int = 0
    epochs_run: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "events": self.events,
            "windows": self.windows,
            "distinct_windows": self.distinct_windows,
            "epochs_run": self.epochs_run,
            "final_loss": self.losses[-1] if self.losses else None,
            "losses": [round(x, 6) for x in self.losses],
            "seconds": round(self.seconds, 3),
        }


class FitSchedule(Protocol):
    seed: int
    learning_rate: float
    epochs: int
    batch_size: int
    # Stop once the epoch loss has not improved by min_improvement for `patience` epochs.
    patience: int
    min_improvement: float


def fit_weighted(
    net: nn.Module,
    weights: torch.Tensor,
    item_loss: Callable[[torch.Tensor], torch.Tensor],
    schedule: FitSchedule,
    summary: TrainingSummary,
    on_epoch: Callable[[int, float], None] | None = None,
) -> None:
    """Train `net` in place; `item_loss(indices)` is the loss of each item in a batch, and
    `weights[i]` the number of times item i occurred. Deterministic for a given seed; records
    the loss per epoch and the epochs run in `summary`, and leaves `net` in eval mode."""
    torch.manual_seed(schedule.seed)
    generator = torch.Generator().manual_seed(schedule.seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=schedule.learning_rate)
    best, stale = float("inf"), 0
    net.train()
    for epoch in range(schedule.epochs):
        order = torch.randperm(len(weights), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), schedule.batch_size):
            idx = order[start : start + schedule.batch_size]
            w = weights[idx]
            loss = (item_loss(idx) * w).sum() / w.sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * float(w.sum())
        epoch_loss = total_loss / float(weights.sum())
        summary.losses.append(epoch_loss)
        summary.epochs_run = epoch + 1
        if on_epoch:
            on_epoch(epoch + 1, epoch_loss)
        if epoch_loss < best - schedule.min_improvement:
            best, stale = epoch_loss, 0
        else:
            stale += 1
            if stale >= schedule.patience:
                break
    net.eval()
