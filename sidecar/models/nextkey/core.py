"""What DeepLog-style next-key models share: configuration, training on distinct windows,
and batched, deduplicated scoring.

A verdict depends only on (window, observed key), so each distinct window is run through the
network once per call, however many hosts or events share it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from sidecar.encoding.vocabulary import PAD, UNKNOWN
from sidecar.encoding.windows import (
    TrainingPairs,
    distinct_rows,
)
from sidecar.models.base import JsonConfig
from sidecar.models.fitting import (
    EpochHook,
    TrainingSummary,
    current_training_device,
    fit_weighted,
)

__all__ = [
    "count_bursts",
    "NextKeyConfig",
    "NextKeyModel",
    "NextKeyScores",
    "TrainingSummary",
    "score_next_keys",
    "train_next_key_model",
]


@dataclass(frozen=True, slots=True)
class NextKeyConfig(JsonConfig):
    """What every next-key model shares: the window, the verdict rule and training."""

    window_size: int = 10
    top_g: int = 9
    epochs: int = 100
    # Training runs on distinct windows, so an epoch is short; small batches give it enough
    # optimiser steps (see docs/benchmarks.md).
    batch_size: int = 128
    learning_rate: float = 2e-3
    seed: int = 42
    # Stop once the held-out loss has not improved by more than this share of its best for
    # `patience` epochs (sidecar/models/fitting.py).
    patience: int = 3
    min_relative_improvement: float = 0.01


class NextKeyModel(Protocol):
    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        """Logits [batch, vocabulary size] for the key after each window [batch, h]."""
        ...


@dataclass(frozen=True, slots=True)
class NextKeyScores:
    probability: np.ndarray  # [n] probability of the observed key (0 for unknown keys)
    rank: np.ndarray  # [n] 1-based rank of the observed key among known keys (0 if unknown)
    top_ids: np.ndarray  # [n, g] most likely next keys
    top_probs: np.ndarray  # [n, g]
    anomalous: np.ndarray  # [n] bool: unknown key, or observed key not in the top g

    def __len__(self) -> int:
        return len(self.rank)


# The smallest batch a chunk is padded to (see `padded_rows`).
MIN_BATCH_ROWS = 64


def padded_rows(rows: int, batch_size: int) -> int:
    """How many rows a chunk of `rows` windows is run as: the next power of two (at least
    MIN_BATCH_ROWS, at most `batch_size`). On the CPU, torch runs LSTMs through oneDNN, which
    keeps a compiled kernel for every batch shape it has seen; a service scoring a different
    number of distinct windows every cycle grew by ~0.4 MiB a cycle for as long as it ran
    (docs/reliability.md, soak). A handful of shapes keeps that cache, and memory, flat; the
    padding costs at most the last chunk's size again."""
    if rows <= 0:
        return 0
    return min(batch_size, max(MIN_BATCH_ROWS, 1 << (rows - 1).bit_length()))


def score_next_keys(
    model: NextKeyModel,
    windows: np.ndarray,
    targets: np.ndarray,
    top_g: int,
    *,
    batch_size: int = 4_096,
    device: torch.device | None = None,
) -> NextKeyScores:
    n = len(targets)
    if n == 0:
        empty = np.empty(0)
        return NextKeyScores(
            empty.astype(np.float32),
            empty.astype(np.int64),
            np.empty((0, top_g), np.int64),
            np.empty((0, top_g), np.float32),
            empty.astype(bool),
        )
    unique_windows, inverse = distinct_rows(windows)
    device = device or torch.device("cpu")
    prob_observed = np.zeros(n, dtype=np.float32)
    rank = np.zeros(n, dtype=np.int64)
    top_ids = np.zeros((n, top_g), dtype=np.int64)
    top_probs = np.zeros((n, top_g), dtype=np.float32)
    # Process unique windows in chunks; scatter results to every event that shares a window.
    order = np.argsort(inverse, kind="stable")
    chunk_starts = np.append(np.arange(0, len(unique_windows), batch_size), len(unique_windows))
    bounds = np.searchsorted(inverse[order], chunk_starts)
    with torch.inference_mode():
        for chunk_no, start in enumerate(range(0, len(unique_windows), batch_size)):
            stop = min(start + batch_size, len(unique_windows))
            rows = stop - start
            chunk = unique_windows[start:stop]
            if (padded := padded_rows(rows, batch_size)) > rows:
                # PAD windows: every row is its own sequence, so the real rows are unchanged.
                filler = np.full((padded - rows, chunk.shape[1]), PAD, dtype=chunk.dtype)
                chunk = np.concatenate([chunk, filler])
            batch = torch.from_numpy(chunk).to(device)
            logits = model(batch)[:rows].float()
            logits[:, PAD] = float("-inf")
            logits[:, UNKNOWN] = float("-inf")
            probs = torch.softmax(logits, dim=1)
            g = min(top_g, probs.shape[1] - 2)
            tp, ti = torch.topk(probs, g, dim=1)
            events = order[bounds[chunk_no] : bounds[chunk_no + 1]]
            local = torch.from_numpy(inverse[events] - start).to(device)
            observed = torch.from_numpy(targets[events]).to(device)
            rows = probs[local]
            p = rows.gather(1, observed.clamp(min=0).unsqueeze(1)).squeeze(1)
            unknown = observed == UNKNOWN
            p = torch.where(unknown, torch.zeros_like(p), p)
            r = (rows > p.unsqueeze(1)).sum(dim=1) + 1
            r = torch.where(unknown, torch.zeros_like(r), r)
            prob_observed[events] = p.cpu().numpy()
            rank[events] = r.cpu().numpy()
            top_ids[events, :g] = ti[local].cpu().numpy()
            top_probs[events, :g] = tp[local].cpu().numpy()
    anomalous = (targets == UNKNOWN) | (rank > top_g)
    return NextKeyScores(prob_observed, rank, top_ids, top_probs, anomalous)


def count_bursts(windows: np.ndarray, targets: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """True where the observed key occurs more often than training ever showed."""
    counts = (windows == targets[:, None]).sum(axis=1) + 1
    return counts > limits[targets]


def train_next_key_model(
    net: nn.Module,
    pairs: TrainingPairs,
    config: NextKeyConfig,
    *,
    on_epoch: EpochHook | None = None,
) -> TrainingSummary:
    """Weighted cross-entropy over distinct pairs with Adam; deterministic for a given seed."""
    started = time.perf_counter()
    device = current_training_device()
    windows = torch.from_numpy(pairs.windows).to(device)
    targets = torch.from_numpy(pairs.targets).to(device)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    summary = TrainingSummary(windows=pairs.total, distinct_windows=len(pairs.targets))
    fit_weighted(
        net,
        torch.from_numpy(pairs.counts).float(),
        lambda idx: loss_fn(net(windows[idx]), targets[idx]),
        config,
        summary,
        on_epoch,
    )
    summary.seconds = time.perf_counter() - started
    return summary
