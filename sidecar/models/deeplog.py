"""DeepLog (Du et al., CCS'17): an LSTM reads the last h log keys and predicts the next one;
an event is anomalous when its key is not among the g most likely."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from sidecar.encoding.vocabulary import PAD
from sidecar.encoding.windows import windows_with_targets

__all__ = [
    "DeepLogConfig",
    "DeepLogNet",
    "TrainingPairs",
    "TrainingSummary",
    "training_pairs",
    "train_next_key_model",
]


@dataclass(frozen=True, slots=True)
class DeepLogConfig:
    window_size: int = 10
    top_g: int = 9
    embedding_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 2
    epochs: int = 100
    # Training runs on distinct windows, so an epoch is short; small batches give it enough
    # optimiser steps (see docs/hdfs-benchmark.md).
    batch_size: int = 128
    learning_rate: float = 2e-3
    seed: int = 42
    # Stop early once the epoch loss has not improved by min_improvement for `patience` epochs.
    patience: int = 10
    min_improvement: float = 1e-4

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> DeepLogConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


class DeepLogNet(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(windows))
        return self.head(out[:, -1, :])

    @classmethod
    def from_config(cls, vocab_size: int, config: DeepLogConfig) -> DeepLogNet:
        return cls(vocab_size, config.embedding_dim, config.hidden_size, config.num_layers)


@dataclass(frozen=True, slots=True)
class TrainingPairs:
    """Distinct (window, next key) pairs with how often each occurred.

    Logs repeat themselves; training on distinct pairs weighted by their counts optimises the
    same loss as training on every window, at a fraction of the cost.
    """

    windows: np.ndarray  # [m, h]
    targets: np.ndarray  # [m]
    counts: np.ndarray  # [m]

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def training_pairs(sequences: Iterable[np.ndarray], h: int) -> TrainingPairs:
    parts = []
    for keys in sequences:
        windows, targets = windows_with_targets(np.empty(0, dtype=np.int64), keys, h)
        if len(targets):
            parts.append(np.concatenate([windows, targets[:, None]], axis=1))
    if not parts:
        raise ValueError("no training windows: the training data holds no events")
    rows, counts = np.unique(np.concatenate(parts), axis=0, return_counts=True)
    return TrainingPairs(rows[:, :h].copy(), rows[:, h].copy(), counts.astype(np.int64))


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


def train_next_key_model(
    net: nn.Module,
    pairs: TrainingPairs,
    config: DeepLogConfig,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainingSummary:
    """Weighted cross-entropy over distinct pairs with Adam; deterministic for a given seed."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    windows = torch.from_numpy(pairs.windows)
    targets = torch.from_numpy(pairs.targets)
    weights = torch.from_numpy(pairs.counts).float()
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    summary = TrainingSummary(windows=pairs.total, distinct_windows=len(pairs.targets))
    best, stale = float("inf"), 0
    net.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(targets), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            w = weights[idx]
            loss = (loss_fn(net(windows[idx]), targets[idx]) * w).sum() / w.sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * float(w.sum())
        epoch_loss = total_loss / float(weights.sum())
        summary.losses.append(epoch_loss)
        summary.epochs_run = epoch + 1
        if on_epoch:
            on_epoch(epoch + 1, epoch_loss)
        if epoch_loss < best - config.min_improvement:
            best, stale = epoch_loss, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.eval()
    summary.seconds = time.perf_counter() - started
    return summary
