"""The shared training loop (issue 16): epochs drawn by weight, a stop rule on held-out
occurrences, and progress a person can follow."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
import torch
from prometheus_client import generate_latest
from structlog.testing import capture_logs
from torch import nn

from sidecar.app.metrics import SidecarMetrics
from sidecar.app.progress import TrainingProgress, progress_line
from sidecar.models.fitting import (
    EPOCH_SAMPLES,
    EpochProgress,
    TrainingSummary,
    _held_out_items,
    _split_occurrences,
    fit_weighted,
)


@dataclass(frozen=True)
class Schedule:
    seed: int = 3
    learning_rate: float = 0.05
    epochs: int = 200
    batch_size: int = 64
    patience: int = 3
    min_relative_improvement: float = 0.01


def problem(items: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor, object]:
    """A linear regression over `items` distinct inputs with skewed counts."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(items, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.3 * torch.randn(items, generator=generator)
    counts = torch.randint(1, 40, (items,), generator=generator).float()
    net = nn.Linear(4, 1)
    return net, counts, lambda idx: (net(x[idx]).squeeze(1) - y[idx]).square()


def test_a_tenth_of_the_occurrences_is_held_out_and_the_rest_is_fitted() -> None:
    counts = torch.tensor([1000.0, 10.0, 1.0, 0.0] * 100)
    fit, held = _split_occurrences(counts, torch.Generator().manual_seed(1))
    assert held is not None
    assert torch.equal(fit + held, counts)  # every occurrence on exactly one side
    assert 0.09 < float(held.sum() / counts.sum()) < 0.11
    assert float(held[3::4].sum()) == 0.0  # nothing invented for items that never occurred
    again, _ = _split_occurrences(counts, torch.Generator().manual_seed(1))
    assert torch.equal(fit, again)  # the same split for the same seed


def test_too_few_occurrences_hold_nothing_out() -> None:
    counts = torch.ones(100)
    fit, held = _split_occurrences(counts, torch.Generator().manual_seed(1))
    assert held is None and torch.equal(fit, counts)


def test_the_held_out_draw_is_capped_and_keeps_the_weights_of_what_it_drew() -> None:
    held = torch.full((50_000,), 2.0, dtype=torch.float64)
    items, weights = _held_out_items(held, torch.Generator().manual_seed(1))
    assert float(weights.sum()) == 16_384
    assert len(items) == len(weights) and bool((held[items] > 0).all())


def test_training_stops_once_the_held_out_loss_settles_and_keeps_the_best_weights() -> None:
    net, counts, loss = problem(EPOCH_SAMPLES + 1_000)  # many distinct items: drawn epochs
    summary = TrainingSummary()
    seen: list[EpochProgress] = []
    fit_weighted(net, counts, loss, Schedule(), summary, seen.append)
    assert summary.stopped == "settled"
    assert 4 <= summary.epochs_run < 200
    assert len(summary.held_out_losses) == summary.epochs_run  # one judgement per epoch
    best = min(summary.held_out_losses)
    assert summary.held_out_losses[summary.best_epoch - 1] == best
    # Stopped after `patience` judgements without a 1% gain.
    assert [p.stale for p in seen[-3:]] == [1, 2, 3]
    assert best < 0.1  # the noise floor is 0.09
    assert not net.training


def test_training_is_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        net, counts, loss = problem(500)
        summary = TrainingSummary()
        fit_weighted(net, counts, loss, Schedule(epochs=12), summary)
        runs.append((summary.losses, [p.detach().clone() for p in net.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


def test_a_small_data_set_is_judged_once_per_epoch_samples_draws_not_every_short_epoch() -> None:
    net, counts, loss = problem(2_000)  # 2,000 distinct items: a sweep per epoch
    summary = TrainingSummary()
    fit_weighted(net, counts, loss, Schedule(epochs=70), summary)
    # 2,000 x 70 = 140,000 draws: judged after epochs 33 and 66 and at the last one.
    assert len(summary.held_out_losses) == 3
    assert summary.stopped == "max_epochs" and summary.epochs_run == 70


def test_epoch_progress_says_how_long_it_may_still_take() -> None:
    progress = EpochProgress(4, 100, 1.25, 1.3, 20.0, 1, 3)
    assert progress.seconds_left_at_most == 480.0
    assert progress.epochs_left_if_settled == 2
    assert progress_line("deeplog", progress) == (
        "deeplog epoch 4/100 [#.......................] loss 1.2500 held-out 1.3000, 20 s; "
        "stops in 2 epoch(s) unless it improves, 480 s at most "
    )


def test_progress_goes_to_log_lines_off_a_terminal_and_to_the_gauges() -> None:
    metrics = SidecarMetrics()
    progress = TrainingProgress(gauges=metrics)
    with capture_logs() as logs:
        progress.read(1_234, 5, done=True)
        on_epoch = progress.epochs("deeplog")
        on_epoch(EpochProgress(2, 10, 0.5, 0.6, 8.0, 0, 3))
    assert [e["event"] for e in logs] == ["training_data_read", "training_epoch"]
    assert logs[0]["events"] == 1_234 and logs[0]["hosts"] == 5
    epoch = logs[1]
    assert (epoch["model"], epoch["epoch"], epoch["max_epochs"]) == ("deeplog", 2, 10)
    assert (epoch["loss"], epoch["held_out_loss"], epoch["seconds_left_at_most"]) == (0.5, 0.6, 32)
    text = generate_latest(metrics.registry).decode()
    assert 'sidecar_training_phase{phase="training"} 1.0' in text
    assert 'sidecar_training_phase{phase="idle"} 0.0' in text
    assert "sidecar_training_events_read 1234.0" in text
    assert 'sidecar_training_epoch{model="deeplog"} 2.0' in text
    progress.finished()
    assert 'sidecar_training_phase{phase="idle"} 1.0' in generate_latest(metrics.registry).decode()


def test_on_a_terminal_the_epochs_rewrite_one_line() -> None:
    terminal = io.StringIO()
    progress = TrainingProgress(terminal=terminal)
    with capture_logs() as logs:
        on_epoch = progress.epochs("autoencoder")
        on_epoch(EpochProgress(1, 4, 0.5, None, 1.0, 0, 3))
        on_epoch(EpochProgress(2, 4, 0.4, None, 2.0, 0, 3))
        progress.finished()
    assert logs == []
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 2 and drawn.endswith("\n")
    assert "autoencoder epoch 2/4 [############............] loss 0.4000, 2 s" in drawn


@pytest.mark.parametrize("items", [300, EPOCH_SAMPLES + 1])
def test_the_training_loss_is_per_occurrence_in_both_epoch_forms(items: int) -> None:
    net, counts, loss = problem(items)
    summary = TrainingSummary()
    fit_weighted(net, counts, loss, Schedule(epochs=1, learning_rate=0.0), summary)
    with torch.no_grad():
        exact = float((loss(torch.arange(items)) * counts).sum() / counts.sum())
    # Learning rate 0: the epoch's loss estimates the data set's loss at the start.
    assert summary.losses[0] == pytest.approx(exact, rel=0.05)
