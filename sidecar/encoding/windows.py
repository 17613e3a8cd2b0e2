"""Sliding windows of h keys, each paired with the key that follows it."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sidecar.encoding.vocabulary import PAD

__all__ = ["windows_with_targets", "windows_for_streams"]


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
