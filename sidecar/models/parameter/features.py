"""A batch of events laid out for the parameter model: key ids and hosts in one array, the timing
and number features of every event, and each event's previous events of the same key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.parameter.slots import (
    log_seconds,
    number_slots,
    signed_log,
)
from sidecar.types import LogEvent

__all__ = [
    "Layout",
    "Features",
    "layout_of",
    "features_of",
    "previous_of_same_key",
    "history_matrix",
]


@dataclass(frozen=True, slots=True)
class Layout:
    """Several hosts' events end to end, oldest first per host."""

    events: list[LogEvent]
    keys: np.ndarray  # [n] key ids
    host: np.ndarray  # [n] host number
    first: np.ndarray  # [n] bool: the host's first event here (nothing before it is known)


def layout_of(runs: Sequence[Sequence[LogEvent]], vocabulary: Vocabulary) -> Layout:
    events = [e for run in runs for e in run]
    lengths = np.array([len(run) for run in runs], dtype=np.int64)
    host = np.repeat(np.arange(len(runs)), lengths)
    first = np.zeros(len(events), dtype=bool)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(runs) else np.empty(0)
    first[starts[lengths > 0].astype(np.int64)] = True
    return Layout(events, vocabulary.encode(events), host, first)


@dataclass(frozen=True, slots=True)
class Features:
    raw: np.ndarray  # [n, dims] seconds and numbers as read (NaN where not observed)
    values: np.ndarray  # [n, dims] transformed (log) features, 0 where not observed
    observed: np.ndarray  # [n, dims] bool


def features_of(layout: Layout, slots: Sequence[Sequence[str]], dims: int) -> Features:
    """Timing for every event, values for events of keys with slots."""
    n = len(layout.events)
    raw = np.full((n, dims), np.nan)
    stamps = np.fromiter((e.timestamp_ms for e in layout.events), dtype=np.float64, count=n)
    gaps = np.empty(n)
    gaps[0:1] = np.nan
    gaps[1:] = stamps[1:] - stamps[:-1]
    gaps[layout.first] = np.nan
    raw[:, 0] = gaps / 1000.0
    for i in np.flatnonzero([len(slots[k]) > 0 for k in layout.keys.tolist()]):
        key_slots = slots[int(layout.keys[i])]
        found = dict(number_slots(layout.events[i].message))
        for d, slot in enumerate(key_slots, start=1):
            raw[i, d] = found.get(slot, np.nan)
    observed = ~np.isnan(raw)
    values = np.zeros((n, dims))
    values[:, 0] = np.where(observed[:, 0], log_seconds(np.nan_to_num(raw[:, 0]) * 1000.0), 0.0)
    values[:, 1:] = np.where(observed[:, 1:], signed_log(np.nan_to_num(raw[:, 1:])), 0.0)
    return Features(raw, values, observed)


def previous_of_same_key(layout: Layout, lags: int) -> np.ndarray:
    """[n, lags]: the index of the j-th previous event of the same key on the same host, -1
    where there is none (vectorised: a stable sort by (host, key) keeps time order)."""
    n = len(layout.keys)
    group = layout.host.astype(np.int64) * (int(layout.keys.max(initial=0)) + 1) + layout.keys
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    previous = np.full((n, lags), -1, dtype=np.int64)
    for j in range(1, lags + 1):
        same = ordered[j:] == ordered[:-j]
        previous[order[j:][same], j - 1] = order[:-j][same]
    return previous


def history_matrix(normalised: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """[n, lags·dims]: the key's previous normalised vectors, most recent first; missing ones
    are the key's mean (0)."""
    n, dims = normalised.shape
    padded = np.vstack([normalised, np.zeros((1, dims))])  # row -1 -> zeros
    return padded[previous].reshape(n, previous.shape[1] * dims)
