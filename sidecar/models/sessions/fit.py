"""Fitting the sessions model: link counts from the fitting part of the training range, then
the calibration of link surprise on the held-out slice (sidecar/models/calibration.py's
`holdout_mask`). Held-out events still serve as the links of the events after them: only what
is counted and what is calibrated are kept apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sidecar.models.calibration import (
    Calibration,
    events_per_host_day,
    fit_calibration,
    holdout_mask,
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
    masks = {host: holdout_mask(host, len(events)) for host, events in hosts.items()}
    counts = LinkCounts.count(
        observed
        for host, found in linked.items()
        for observed, held in zip(found, masks[host], strict=True)
        if not held
    )
    held_out = [
        worst(counts, key, found)
        for host, observed in linked.items()
        for (key, found), held in zip(observed, masks[host], strict=True)
        if held
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
