"""DeepLog's parameter value model (Du et al., CCS'17, section 3.2): per log key, a model of
the time since the host's previous event and of the numbers in MESSAGE.

Each event of a modelled key gets a vector: log(1 + seconds since the host's previous event),
then the key's parameter values (sign·log(1 + |x|) of the numbers at the key's stable slots,
see sidecar/models/parameter/slots.py), each normalised with the key's training mean and std.
A predictor reads the key's previous `history` vectors on the same host and predicts the next;
the squared error (the MSE over the dimensions observed) is judged against a Gaussian fitted
on errors of held-out training vectors, as in the paper.

Choices, and why:
- The predictor is a ridge-regularised linear autoregression per key, not DeepLog's LSTM per
  key. One LSTM per key means hundreds of small training loops (minutes on two cores for a
  real vocabulary); one LSTM shared across keys would mix parameters that have nothing in
  common. The vectors are a handful of normalised scalars, and the paper uses the prediction
  only to get an error whose spread is learnt: a linear AR gives the least-squares linear
  predictor in closed form (milliseconds, no epochs, seeds or learning rate, identical on
  every run), learns the key's mean through its intercept when values are independent (the
  best any predictor can do there), and follows linear trends and alternations. It misses
  non-linear dynamics an LSTM could learn; the held-out errors measure what it misses, and
  the threshold grows with them.
- The Gaussian is fitted to the cube root of the MSE. An MSE of k Gaussian residuals is
  chi-square-like and skewed; DeepLog's Gaussian on the raw MSE flags several times the
  nominal rate (a 99.5% interval flags about 3% of normal events for k = 1). The cube root
  makes chi-square close to Gaussian (Wilson and Hilferty, 1931), so the confidence means
  what it says.
- Real errors have heavier tails still (the first event after a host's quiet hours, a second
  mode of a value), so the threshold is the larger of the Gaussian's quantile and the
  empirical quantile of the key's held-out errors at the same confidence: where held-out
  errors pass the Gaussian's quantile more often than the confidence allows, theirs is used.
- Timing counts one way: an event earlier than predicted adds nothing to the error (a burst
  is not a stall; the next-key models judge order). The error distribution is fitted on
  two-sided errors, so this can only lower the flag rate.
- A flagged error must also exceed `min_error`, and each feature's std has a floor
  (`timing_min_std`, `value_min_std`): a key constant in training would otherwise be flagged
  for any jitter at all.
- Missing history (the key's previous vectors outside what a cycle sees: the host's saved
  tail and its new events) falls back to the key's mean, a zero in normalised units. Missing
  observations (no previous event for the timing, a message without the slot) are left out
  of the error; an event with nothing observed is not judged.
- Counters (slots whose values only grow within a host) are not modelled: they leave any
  training range by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from sidecar.models.base import JsonConfig
from sidecar.models.parameter.features import Features

__all__ = [
    "TIMING",
    "ParameterConfig",
    "ParameterNet",
    "ParameterScores",
    "AcceptedDeviations",
    "score_vectors",
    "z_for",
    "predict",
    "QUANTILE_LEVELS",
    "empirical_quantile",
    "normalise",
]

TIMING = "seconds_since_previous"
# Levels at which each key's held-out errors are kept as empirical quantiles (interpolated
# between): dense near 1, where thresholds live.
QUANTILE_LEVELS = np.unique(
    np.concatenate(
        [np.arange(0.5, 0.99, 0.01), np.arange(0.99, 0.999, 0.001), [0.999, 0.9995, 0.9999, 1.0]]
    ).round(6)
)


@dataclass(frozen=True, slots=True)
class ParameterConfig(JsonConfig):
    # Host events before a flagged event shown in its annotation; the pipeline keeps at least
    # this many events per host between cycles, which is where a key's history comes from.
    window_size: int = 10
    history: int = 3  # previous vectors of the same key a prediction reads
    max_values: int = 4  # parameter slots per key, besides the timing
    min_share: float = 0.8  # a slot must be numeric in this share of the key's messages
    min_count: int = 40  # keys seen fewer times in training are not modelled
    holdout_every: int = 4  # every n-th vector of a key is held out for the error Gaussian
    confidence: float = 0.995  # one-sided: flag errors above this quantile
    ridge: float = 1.0
    timing_min_std: float = 1.0  # in log(1 + seconds)
    value_min_std: float = 0.1  # in sign·log(1 + |x|)
    min_error: float = 1.0  # an MSE below this (in normalised units) is never flagged

    @property
    def dims(self) -> int:
        return 1 + self.max_values


def predict(weights: np.ndarray, history: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """ParameterNet.forward in numpy: each row's history (and a bias) times its key's weights."""
    inputs = np.hstack([history, np.ones((len(history), 1))])
    return np.einsum("nf,nfd->nd", inputs, weights[keys])


def z_for(confidence: float) -> float:
    return NormalDist().inv_cdf(confidence)


def empirical_quantile(levels: np.ndarray, quantiles: np.ndarray, level: float) -> np.ndarray:
    """Each row of `quantiles` [k, len(levels)] interpolated at `level`."""
    j = int(np.clip(np.searchsorted(levels, level, side="right") - 1, 0, len(levels) - 2))
    weight = np.clip((level - levels[j]) / (levels[j + 1] - levels[j]), 0.0, 1.0)
    return quantiles[:, j] * (1 - weight) + quantiles[:, j + 1] * weight


class ParameterNet(nn.Module):
    """Per-key AR weights (a parameter) and per-key statistics (buffers), so the artifact
    machinery stores it as any other state_dict."""

    def __init__(self, vocab_size: int, dims: int, history: int) -> None:
        super().__init__()
        self.dims, self.history = dims, history
        inputs = history * dims + 1  # the bias last
        self.weights = nn.Parameter(torch.zeros(vocab_size, inputs, dims), requires_grad=False)
        self.register_buffer("mean", torch.zeros(vocab_size, dims))
        self.register_buffer("std", torch.ones(vocab_size, dims))
        self.register_buffer("active", torch.zeros(vocab_size, dims, dtype=torch.bool))
        self.register_buffer("modelled", torch.zeros(vocab_size, dtype=torch.bool))
        # The Gaussian of the cube root of held-out errors, and their empirical quantiles.
        self.register_buffer("error_mean", torch.zeros(vocab_size))
        self.register_buffer("error_std", torch.zeros(vocab_size))
        self.register_buffer("quantile_levels", torch.from_numpy(QUANTILE_LEVELS.copy()))
        self.register_buffer("error_quantiles", torch.zeros(vocab_size, len(QUANTILE_LEVELS)))
        self.register_buffer("train_count", torch.zeros(vocab_size, dtype=torch.int64))

    def forward(self, history: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Predicted normalised vectors [n, dims] from the key's previous ones [n, history·dims].

        Scoring uses `predict`, the same product in numpy (several times faster on a busy CPU
        than torch's batched product, for matrices this small)."""
        inputs = torch.cat([history, torch.ones(len(history), 1, dtype=history.dtype)], dim=1)
        return torch.bmm(inputs.unsqueeze(1), self.weights[keys].to(history.dtype)).squeeze(1)

    @classmethod
    def from_config(cls, vocab_size: int, config: ParameterConfig) -> ParameterNet:
        return cls(vocab_size, config.dims, config.history)


# -- features -------------------------------------------------------------------------------


def normalise(features: Features, keys: np.ndarray, net: ParameterNet) -> np.ndarray:
    mean = net.mean.numpy()[keys]
    std = net.std.numpy()[keys]
    usable = features.observed & net.active.numpy()[keys]
    return np.where(usable, (features.values - mean) / std, 0.0)


# -- scoring --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcceptedDeviations:
    """Per key and value, how far below and above its prediction (normalised residual) a value
    may lie and still count as predicted: learned from analysts' false-positive marks, so the
    marked deviation stops being flagged while larger ones, and the key's other values, are
    judged as before."""

    below: np.ndarray  # [vocab, dims] >= 0
    above: np.ndarray  # [vocab, dims] >= 0

    @classmethod
    def none(cls, vocab_size: int, dims: int) -> AcceptedDeviations:
        return cls(np.zeros((vocab_size, dims)), np.zeros((vocab_size, dims)))


@dataclass(frozen=True, slots=True)
class ParameterScores:
    judged: np.ndarray  # [n] bool: modelled key with something observed
    error: np.ndarray  # [n] MSE of the normalised vector (unobserved dimensions: 0)
    threshold: np.ndarray  # [n] the MSE above which the event is flagged
    tail: np.ndarray  # [n] probability of an error at least this large under the Gaussian
    flagged: np.ndarray  # [n] bool
    residual: np.ndarray  # [n, dims] observed − predicted, normalised (0 where not observed)
    predicted: np.ndarray  # [n, dims] normalised prediction
    observed: np.ndarray  # [n, dims] bool: the dimensions in the error


def score_vectors(
    net: ParameterNet,
    normalised: np.ndarray,
    usable: np.ndarray,
    history: np.ndarray,
    keys: np.ndarray,
    confidence: float,
    min_error: float,
    *,
    rows: np.ndarray | None = None,
    early_counts: bool = False,
    accepted: AcceptedDeviations | None = None,
    batch_size: int = 8_192,
) -> ParameterScores:
    """Errors and verdicts for `rows` (a mask; None: all). An event earlier than predicted adds
    nothing to its error (a burst is not a stall) unless `early_counts`: training fits the
    error distribution on two-sided errors, so judging one-sided ones can only flag less than
    the confidence says. A residual inside its key's `accepted` band (analysts marked such a
    deviation as normal) adds nothing either."""
    n, dims = normalised.shape
    judged = net.modelled.numpy()[keys] & usable.any(axis=1)
    if rows is not None:
        judged &= rows
    # Only judged rows are predicted: a cycle's context and unmodelled keys cost no compute.
    todo = np.flatnonzero(judged)
    predicted = np.zeros((n, dims))
    weights = net.weights.detach().double().numpy()
    for start in range(0, len(todo), batch_size):
        part = todo[start : start + batch_size]
        predicted[part] = predict(weights, history[part], keys[part])
    residual = np.where(usable & judged[:, None], normalised - predicted, 0.0)
    counted = residual.copy()
    if accepted is not None:
        inside = (counted >= -accepted.below[keys]) & (counted <= accepted.above[keys])
        counted[inside] = 0.0
    if not early_counts:
        counted[:, 0] = np.maximum(counted[:, 0], 0.0)
    # A dimension not observed counts as predicted exactly: dividing by the observed ones
    # instead would inflate the error of an event whose timing is unknown, say.
    dims_of_key = net.active.numpy()[keys].sum(axis=1)
    error = (counted**2).sum(axis=1) / np.maximum(dims_of_key, 1)
    mu = net.error_mean.double().numpy()[keys]
    sigma = np.maximum(net.error_std.double().numpy()[keys], 1e-6)
    gaussian = (mu + z_for(confidence) * sigma).clip(min=0) ** 3
    # Real errors have heavier tails than any Gaussian (the first event after a host's quiet
    # hours): where the held-out errors reach past the Gaussian's quantile, theirs is used.
    empirical = (
        empirical_quantile(
            net.quantile_levels.double().numpy(), net.error_quantiles.double().numpy(), confidence
        )[keys].clip(min=0)
        ** 3
    )
    threshold = np.maximum(np.maximum(gaussian, empirical), min_error)
    z = (np.cbrt(error) - mu) / sigma
    tail = torch.special.ndtr(torch.from_numpy(-z)).numpy()
    flagged = judged & (error > threshold)
    return ParameterScores(judged, error, threshold, tail, flagged, residual, predicted, usable)


