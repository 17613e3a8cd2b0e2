"""Sliding windows of h keys, each paired with the key that follows it; the distinct pairs a
model trains on, and the exact window cache scoring deduplicates with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sidecar.encoding.vocabulary import PAD

__all__ = [
    "windows_with_targets",
    "windows_for_streams",
    "distinct_rows",
    "TrainingPairs",
    "training_pairs",
]


def windows_with_targets(
    context: np.ndarray, keys: np.ndarray, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """One window per key in `keys`: the h keys before it, taken from `context` then `keys`.

    `context` is what the host logged before (the saved tail); when fewer than h keys precede
    an event the window is left-padded with PAD, so the first events of a stream are scored
    too and the model learns what a stream's start looks like.
    Returns (windows [n, h], targets [n]) as int64 arrays.
    """
    n = len(keys)
    if n == 0:
        return np.empty((0, h), dtype=np.int64), np.empty(0, dtype=np.int64)
    tail = context[-h:] if h else context[:0]
    padded = np.concatenate(
        [np.full(h - len(tail), PAD, dtype=np.int64), tail.astype(np.int64), keys.astype(np.int64)]
    )
    windows = sliding_window_view(padded[:-1], h) if h else np.empty((n, 0), dtype=np.int64)
    return np.ascontiguousarray(windows), keys.astype(np.int64, copy=False)


def windows_for_streams(
    contexts: list[np.ndarray], streams: list[np.ndarray], h: int
) -> tuple[np.ndarray, np.ndarray]:
    """`windows_with_targets` for many streams at once, without a Python loop per window.

    Each stream is laid out as [padding, context tail, keys] in one flat array; every window is
    then a row of one sliding view over it, gathered in a single fancy index.
    """
    lengths = np.fromiter((len(k) for k in streams), dtype=np.int64, count=len(streams))
    total = int(lengths.sum())
    if total == 0:
        return np.empty((0, h), dtype=np.int64), np.empty(0, dtype=np.int64)
    pieces = []
    for context, keys in zip(contexts, streams, strict=True):
        tail = context[-h:]
        pieces.append(np.full(h - len(tail), PAD, dtype=np.int64))
        pieces.append(tail.astype(np.int64, copy=False))
        pieces.append(keys.astype(np.int64, copy=False))
    flat = np.concatenate(pieces)
    # Stream i occupies flat[offset_i : offset_i + h + n_i]; its j-th window starts at offset_i + j.
    offsets = np.concatenate([[0], np.cumsum(lengths + h)[:-1]])
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = np.repeat(offsets, lengths) + (np.arange(total) - np.repeat(firsts, lengths))
    windows = sliding_window_view(flat, h)[rows]
    return np.ascontiguousarray(windows), flat[rows + h]


_MIX = np.random.default_rng(20261122).integers(1, 2**62, size=4_096, dtype=np.uint64) | 1


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, index of each row's distinct row): an exact window cache.

    Rows are hashed to one uint64 each, so the dedup is a 1-D sort instead of a row-wise
    lexicographic one; every row is then compared with its representative and any hash
    collision falls back to the exact row-wise method.
    """
    if len(rows) == 0 or rows.shape[1] > len(_MIX):
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1)
    with np.errstate(over="ignore"):
        hashes = (rows.astype(np.uint64) * _MIX[: rows.shape[1]]).sum(axis=1, dtype=np.uint64)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    unique = rows[first]
    if not np.array_equal(unique[inverse], rows):
        unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


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


def training_pairs(
    sequences: Iterable[np.ndarray], h: int, keep: Iterable[np.ndarray] | None = None
) -> TrainingPairs:
    """Distinct pairs of every sequence; with `keep` (a mask per sequence), only the pairs whose
    target it keeps (the rest is held out), each window still built from the whole sequence.

    Each sequence's pairs are made distinct before they are gathered, and the gathered ones
    again whenever they pass MERGE_ROWS: memory follows the distinct pairs, not the events
    (a fleet's hosts repeat the same windows)."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    gathered = 0
    masks = iter(keep) if keep is not None else None
    for keys in sequences:
        windows, targets = windows_with_targets(np.empty(0, dtype=np.int64), keys, h)
        if masks is not None:
            mask = next(masks)
            windows, targets = windows[mask], targets[mask]
        if len(targets):
            rows = np.concatenate([windows, targets[:, None]], axis=1)
            parts.append(_distinct(rows, np.ones(len(rows), dtype=np.int64)))
            gathered += len(parts[-1][0])
            if gathered > MERGE_ROWS and len(parts) > 1:
                parts = [_merged(parts)]
                gathered = len(parts[0][0])
    if not parts:
        raise ValueError("no training windows: the training data holds no events")
    rows, counts = _merged(parts)
    return TrainingPairs(rows[:, :h].copy(), rows[:, h].copy(), counts)


# Distinct rows gathered before they are merged (each row h + 1 int64s): merging costs a few
# times what it merges, so this bounds the peak at tens of MB, not the events.
MERGE_ROWS = 250_000


def _distinct(rows: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows, in np.unique's order, with the summed counts of each."""
    distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(distinct))
    return distinct, summed.astype(np.int64)


def _merged(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return _distinct(np.concatenate([r for r, _ in parts]), np.concatenate([c for _, c in parts]))
