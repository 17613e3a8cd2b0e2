"""Fitting the sessions model: link counts, and the calibration of link surprise cross-fitted
over the held-out folds (sidecar/models/calibration.py's `holdout_folds`): each fold's events
are scored by the counts of the other four, so every training event calibrates as one the
counts never saw, five times the sample a single held-out slice gives (a thin tail sample put
the model alone at several times its budget on fresh days). Events of any fold still serve as
the links of the events after them: only what is counted and what is scored are kept apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from sidecar.models.calibration import (
    HOLDOUT_SHARE,
    Calibration,
    events_per_host_day,
    fit_calibration,
    holdout_folds,
)
from sidecar.models.fitting import TrainingSummary
from sidecar.models.sessions.links import links
from sidecar.models.sessions.model import (
    LinkCounts,
    SessionsConfig,
    SessionsNet,
    tally,
    worst,
)
from sidecar.types import LogEvent

__all__ = ["FittedSessions", "fit_sessions"]


@dataclass(frozen=True, slots=True)
class FittedSessions:
    net: SessionsNet
    counts: LinkCounts
    calibration: Calibration
    summary: TrainingSummary


def fit_sessions(streams: Mapping[str, list[LogEvent]], config: SessionsConfig) -> FittedSessions:
    """One walk over the hosts, one host's events in memory at a time (streams may be on
    disk, sidecar/files/spill.py): each fold's links are counted and every event's links kept
    as small codes; then every event is scored by the other folds' counts."""
    started = time.perf_counter()
    codes = _Codes()
    pairs: list[dict[tuple[str, str], int]] = [{} for _ in range(HOLDOUT_SHARE)]
    keys: list[dict[str, int]] = [{} for _ in range(HOLDOUT_SHARE)]
    spans: list[tuple[int, int, int]] = []
    hosts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for host, stream in streams.items():
        events = sorted(stream, key=lambda e: (e.timestamp_ms, e.log_uuid))
        if not events:
            continue
        spans.append((events[0].timestamp_ms, events[-1].timestamp_ms, len(events)))
        # The range starts mid-stream: sessions it cuts are not orders to learn.
        found = links(events, 0, config.window_size, cut=True)
        folds = holdout_folds(host, len(events))
        for observed, fold in zip(found, folds, strict=True):
            tally(observed, pairs[fold], keys[fold])
        hosts.append((folds, *codes.encode(found)))
    by_fold = [LinkCounts(p, k) for p, k in zip(pairs, keys, strict=True)]
    counts = LinkCounts.merged(by_fold)
    # Cross-fitted: each fold scored by the counts of the others, so the calibration sees
    # every training event as unseen data (the final counts, from all folds, only make
    # familiar orders more familiar: the estimate errs towards quiet).
    apart = [LinkCounts.merged(by_fold[:k] + by_fold[k + 1 :]) for k in range(HOLDOUT_SHARE)]
    held_out = [
        np.fromiter(
            (
                worst(apart[fold], key, found)
                for fold, (key, found) in zip(folds.tolist(), codes.decode(k, o, ln), strict=True)
            ),
            np.float64,
            len(folds),
        )
        for folds, k, o, ln in hosts
    ]
    rate = events_per_host_day(spans)
    calibration = fit_calibration(np.concatenate(held_out) if held_out else np.empty(0), rate)
    events = sum(n for _, _, n in spans)
    summary = TrainingSummary(
        events=events,
        windows=events,
        distinct_windows=0,
        epochs_run=1,
        losses=[0.0],
        best_epoch=1,
        stopped="closed_form",
        seconds=time.perf_counter() - started,
    )
    return FittedSessions(SessionsNet(), counts, calibration, summary)


class _Codes:
    """Keys as small integers, so every event's links fit in a few bytes between the walk
    that counts them and the scoring that follows (-1: a link to nothing seen)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._names: list[str] = []

    def _id(self, key: str | None) -> int:
        if key is None:
            return -1
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._names)
            self._names.append(key)
        return found

    def encode(
        self, found: list[tuple[str, list[str | None]]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(each event's key, where its links start, all links), as int32 arrays."""
        keys = np.fromiter((self._id(k) for k, _ in found), np.int32, len(found))
        lengths = np.fromiter((len(ln) for _, ln in found), np.int32, len(found))
        offsets = np.zeros(len(found) + 1, np.int32)
        np.cumsum(lengths, out=offsets[1:])
        linked = np.fromiter(
            (self._id(x) for _, ln in found for x in ln), np.int32, int(offsets[-1])
        )
        return keys, offsets, linked

    def decode(
        self, keys: np.ndarray, offsets: np.ndarray, linked: np.ndarray
    ) -> Iterator[tuple[str, list[str | None]]]:
        names, bounds, links_ = self._names, offsets.tolist(), linked.tolist()
        for i, key in enumerate(keys.tolist()):
            yield (
                names[key],
                [names[x] if x >= 0 else None for x in links_[bounds[i] : bounds[i + 1]]],
            )
