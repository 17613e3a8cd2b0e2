"""Window count vectors: how often each log key occurs in the h events ending at an event.

The input of the count-based detectors (PCA, the autoencoder). Order inside a window is
dropped on purpose: these models judge the mix of keys, not their sequence, and the mix is
what a burst or a missing step changes.

Column layout follows the vocabulary's ids, so a residual or a reconstruction can be read
back per key. Two columns are special:
- PAD counts the padding slots of a stream's first windows. It tells the model how much of a
  window is real; without it a short window would look like a drop in every count.
- UNKNOWN is always zero. An unseen key is flagged on its own event (reason unseen_key); if
  it also counted, every later window holding it would be flagged again for h events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sidecar.encoding.vocabulary import UNKNOWN
from sidecar.encoding.windows import distinct_rows, training_pairs
from sidecar.models.base import JsonConfig

__all__ = [
    "CountConfig",
    "CountVectors",
    "counted_keys",
    "key_counts",
    "training_count_rows",
    "training_count_vectors",
    "idf_weights",
    "weighted_quantile",
]


@dataclass(frozen=True, slots=True)
class CountConfig(JsonConfig):
    """What every count-vector model shares: the window (h events ending at the scored one)."""

    window_size: int = 10


def counted_keys(windows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The h keys a count vector covers: the scored key and the h-1 keys before it, sorted.

    `windows` are the h keys *before* each event (sidecar.encoding.windows); the oldest is
    dropped so the counted window ends at the scored event and still spans h events. Sorting
    makes windows that differ only in order identical rows, so they are deduplicated and scored
    once.
    """
    rows = np.concatenate([windows[:, 1:], targets[:, None]], axis=1)
    rows.sort(axis=1)
    return rows


def key_counts(rows: np.ndarray, vocab_size: int) -> np.ndarray:
    """Count vectors [n, vocab_size] (float64) of rows of key ids; the UNKNOWN column is 0."""
    n = len(rows)
    flat = (np.arange(n, dtype=np.int64)[:, None] * vocab_size + rows).ravel()
    counts = np.bincount(flat, minlength=n * vocab_size).reshape(n, vocab_size)
    counts = counts.astype(np.float64)
    counts[:, UNKNOWN] = 0.0
    return counts


@dataclass(frozen=True, slots=True)
class CountVectors:
    """Distinct training count vectors with how many windows produced each.

    Fitting on distinct vectors weighted by their counts gives the same mean, covariance and
    loss as fitting on every window (the same idea as nextkey.training_pairs).
    """

    vectors: np.ndarray  # [m, vocab_size] float64
    counts: np.ndarray  # [m] int64

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def training_count_rows(sequences: Iterable[np.ndarray], h: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct counted windows of the training events (sorted key ids [m, h], see
    `counted_keys`) and how many events produced each [m]: the compact form of the count
    vectors, small enough to keep with a model as its replay set."""
    pairs = training_pairs(sequences, h)
    unique, inverse = distinct_rows(counted_keys(pairs.windows, pairs.targets))
    counts = np.bincount(inverse, weights=pairs.counts, minlength=len(unique))
    return unique, counts.astype(np.int64)


def training_count_vectors(
    sequences: Iterable[np.ndarray], h: int, vocab_size: int
) -> CountVectors:
    """One count vector per training event (the window ending at it), deduplicated."""
    rows, counts = training_count_rows(sequences, h)
    return CountVectors(key_counts(rows, vocab_size), counts)


def idf_weights(data: CountVectors) -> np.ndarray:
    """Inverse document frequency per key, log(N / windows holding the key) (Xu et al.,
    SOSP'09, weigh message counts this way): a key in every window says nothing about any
    one window. Keys in no training window get 0, since there is nothing to weigh them by."""
    holding = ((data.vectors > 0) * data.counts[:, None]).sum(axis=0)
    idf = np.zeros(data.vectors.shape[1], dtype=np.float64)
    present = holding > 0
    idf[present] = np.log(data.total / holding[present])
    return idf


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value v with at least a fraction q of the total weight at or below v
    (the inverted empirical CDF; q = 1 is the maximum)."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must lie in (0, 1], got {q}")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order], dtype=np.float64)
    index = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
    return float(values[order][min(index, len(values) - 1)])
