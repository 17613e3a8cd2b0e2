"""An MLP autoencoder on window count vectors.

The network squeezes a window's normalised count vector through a narrow code and rebuilds
it; trained on normal windows only, it rebuilds normal mixes of keys well and others badly.
A window is anomalous when its reconstruction error (the sum of squared differences, the
same measure as PCA's SPE) exceeds a high quantile of the errors on the training windows.

Why a quantile and not mean + k·std: the training errors are far from Gaussian, most windows
are rebuilt almost exactly and a thin tail of rare ones is not, so a mean and standard deviation
say little about where that tail ends. A quantile q states the rule directly: at most a
fraction 1 - q of the training windows lie above the threshold (q = 1: none of them do).

Normalisation: each key's count is divided by the most it occurred in one training window, so
training inputs lie in [0, 1] and a burst past anything seen in training exceeds 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sidecar.models.countvector.vectors import CountConfig, CountVectors, weighted_quantile
from sidecar.models.fitting import (
    EpochHook,
    TrainingSummary,
    current_training_device,
    fit_weighted,
    one_thread,
)

__all__ = ["AutoencoderConfig", "CountAutoencoder", "train_autoencoder"]


@dataclass(frozen=True, slots=True)
class AutoencoderConfig(CountConfig):
    hidden_size: int = 64
    code_size: int = 8
    # The fraction of training windows the threshold must lie at or above (see above).
    quantile: float = 0.999
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 2e-3
    seed: int = 42
    # Stop once the held-out loss has not improved by more than this share of its best for
    # `patience` epochs (sidecar/models/fitting.py).
    patience: int = 3
    min_relative_improvement: float = 0.01


class CountAutoencoder(nn.Module):
    """Counts [n, d] -> residuals [n, d] in normalised units (input minus reconstruction)."""

    def __init__(self, vocab_size: int, hidden_size: int, code_size: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(vocab_size, dtype=torch.float32))
        self.register_buffer("threshold", torch.tensor(0.0, dtype=torch.float64))
        self.encoder = nn.Sequential(
            nn.Linear(vocab_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, code_size),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.Linear(code_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, vocab_size),
        )

    @classmethod
    def from_config(cls, vocab_size: int, config: AutoencoderConfig) -> CountAutoencoder:
        return cls(vocab_size, config.hidden_size, config.code_size)

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        x = counts.to(self.scale.dtype) / self.scale
        return (x - self.decoder(self.encoder(x))).to(torch.float64)


def _errors(net: CountAutoencoder, vectors: torch.Tensor, batch_size: int = 8_192) -> np.ndarray:
    with torch.inference_mode():
        parts = [
            net(vectors[i : i + batch_size]).square().sum(dim=1)
            for i in range(0, len(vectors), batch_size)
        ]
    return torch.cat(parts).numpy()


def train_autoencoder(
    net: CountAutoencoder,
    data: CountVectors,
    config: AutoencoderConfig,
    *,
    on_epoch: EpochHook | None = None,
) -> TrainingSummary:
    """Weighted squared error over distinct vectors with Adam, then the threshold from the
    training errors; deterministic for a given seed."""
    with one_thread():
        return _train(net, data, config, on_epoch)


def _train(
    net: CountAutoencoder,
    data: CountVectors,
    config: AutoencoderConfig,
    on_epoch: EpochHook | None,
) -> TrainingSummary:
    started = time.perf_counter()
    with torch.no_grad():
        net.scale.copy_(torch.from_numpy(np.maximum(data.vectors.max(axis=0), 1.0)))
    vectors = torch.from_numpy(data.vectors).float()
    on_device = vectors.to(current_training_device())
    summary = TrainingSummary(windows=data.total, distinct_windows=len(data.counts))
    fit_weighted(
        net,
        torch.from_numpy(data.counts).float(),
        lambda idx: net(on_device[idx]).float().square().sum(dim=1),
        config,
        summary,
        on_epoch,
    )
    threshold = weighted_quantile(_errors(net, vectors), data.counts, config.quantile)
    with torch.no_grad():
        # A perfectly rebuilt training set would give 0, and every float error would count.
        net.threshold.fill_(max(threshold, 1e-12))
    summary.seconds = time.perf_counter() - started
    return summary
