"""`python -m sidecar` with the training rule the product had before issue 16, for the
"before" figures of the fleet benchmark only (`bench.sh fleet --training-rule sweep`).

Everything but the loop is the product as shipped (reading, windows, calibration, scoring,
the manifest). The loop is the one of commit 6b401ac: every distinct item swept each epoch,
its loss weighted by its count; no held-out occurrences; stop once the epoch's training loss
has not fallen by 1e-4 for 10 epochs, or at the epoch ceiling; the last epoch's weights kept.
It reuses the product's own `_epoch` for the sweep, so the two rules differ only in what an
epoch draws and when training stops.

    python -m benchmarks.sweep_training train --from-file ... --model-dir ...
"""

from __future__ import annotations

import runpy
import time

import torch
from torch import nn

from sidecar.models import fitting
from sidecar.models.countvector import autoencoder
from sidecar.models.nextkey import core

PATIENCE = 10
MIN_IMPROVEMENT = 1e-4


def sweep_fit_weighted(
    net: nn.Module,
    weights: torch.Tensor,
    item_loss,
    schedule: fitting.FitSchedule,
    summary: fitting.TrainingSummary,
    on_epoch: fitting.EpochHook | None = None,
) -> None:
    started = time.perf_counter()
    torch.manual_seed(schedule.seed)
    generator = torch.Generator().manual_seed(schedule.seed)
    fit = weights.to(torch.float64)
    optimiser = torch.optim.Adam(net.parameters(), lr=schedule.learning_rate)
    best, stale = float("inf"), 0
    summary.stopped = "max_epochs"
    for epoch in range(1, schedule.epochs + 1):
        net.train()
        loss = fitting._epoch(item_loss, fit, True, len(fit), optimiser, schedule, generator)
        summary.losses.append(loss)
        summary.epochs_run = summary.best_epoch = epoch
        if loss < best - MIN_IMPROVEMENT:
            best, stale = loss, 0
        else:
            stale += 1
        if on_epoch:
            on_epoch(
                fitting.EpochProgress(
                    epoch,
                    schedule.epochs,
                    loss,
                    None,
                    time.perf_counter() - started,
                    stale,
                    PATIENCE,
                )
            )
        if stale >= PATIENCE:
            summary.stopped = "settled"
            break
    net.eval()


# The product's modules bound `fit_weighted` at import: replace it where it is called.
core.fit_weighted = sweep_fit_weighted
autoencoder.fit_weighted = sweep_fit_weighted

if __name__ == "__main__":
    runpy.run_module("sidecar", run_name="__main__", alter_sys=True)
