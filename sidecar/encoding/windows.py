"""Sliding windows of h keys, each paired with the key that follows it."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sidecar.encoding.vocabulary import PAD

__all__ = ["windows_with_targets"]


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
