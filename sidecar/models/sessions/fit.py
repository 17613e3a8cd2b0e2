"""Fitting the sessions model: link counts, and the calibration of link surprise cross-fitted
over the held-out folds (sidecar/models/calibration.py's `holdout_folds`): each fold's events
are scored by the counts of the other four, so every training event calibrates as one the
counts never saw, five times the sample a single held-out slice gives (a thin tail sample put
the model alone at several times its budget on fresh days). Events of any fold still serve as
the links of the events after them: only what is counted and what is scored are kept apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
from sidecar.models.sessions.model import LinkCounts, SessionsConfig, SessionsNet, worst
from sidecar.types import LogEvent

__all__ = ["FittedSessions", "fit_sessions"]


@dataclass(frozen=True, slots=True)
class FittedSessions:
    net: SessionsNet
    counts: LinkCounts
    calibration: Calibration
    summary: TrainingSummary


def fit_sessions(streams: Mapping[str, list[LogEvent]], config: SessionsConfig) -> FittedSessions:
    started = time.perf_counter()
    hosts = {
        host: sorted(stream, key=lambda e: (e.timestamp_ms, e.log_uuid))
        for host, stream in streams.items()
        if stream
    }
    linked = {host: links(events, 0, config.window_size) for host, events in hosts.items()}
    folds = {host: holdout_folds(host, len(events)) for host, events in hosts.items()}
    by_fold = [
        LinkCounts.count(
            observed
            for host, found in linked.items()
            for observed, fold in zip(found, folds[host], strict=True)
            if fold == k
        )
        for k in range(HOLDOUT_SHARE)
    ]
    counts = LinkCounts.merged(by_fold)
    # Cross-fitted: each fold scored by the counts of the others, so the calibration sees
    # every training event as unseen data (the final counts, from all folds, only make
    # familiar orders more familiar: the estimate errs towards quiet).
    apart = [LinkCounts.merged(by_fold[:k] + by_fold[k + 1 :]) for k in range(HOLDOUT_SHARE)]
    held_out = [
        worst(apart[fold], key, found)
        for host, observed in linked.items()
        for (key, found), fold in zip(observed, folds[host], strict=True)
    ]
    rate = events_per_host_day(
        [(e[0].timestamp_ms, e[-1].timestamp_ms, len(e)) for e in hosts.values()]
    )
    calibration = fit_calibration(np.asarray(held_out, dtype=np.float64), rate)
    events = sum(len(e) for e in hosts.values())
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
