"""Fitting the volume model: the groups' daily rhythm, then the calibration of silences on the
held-out slice of the training range.

The rhythm is 24 averages per host group, fitted on the whole range: a table of hourly means
over a group's host-days cannot learn one particular silence by heart, and leaving the
held-out chunks out would leave holes in the hours it averages over. The calibration reads
only the held-out slice (sidecar/models/calibration.py's `holdout_mask`), as every model's does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.models.calibration import (
    Calibration,
    events_per_host_day,
    fit_calibration,
    holdout_mask,
)
from sidecar.models.fitting import TrainingSummary
from sidecar.models.volume.model import VolumeConfig, VolumeNet
from sidecar.models.volume.rhythm import Rhythm, expected_events, fit_rhythm
from sidecar.types import LogEvent

__all__ = ["FittedVolume", "fit_volume", "silence_surprise"]


@dataclass(frozen=True, slots=True)
class FittedVolume:
    net: VolumeNet
    groups: list[str]
    calibration: Calibration
    summary: TrainingSummary


def silence_surprise(rate: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For events 1..n-1 of one host (times sorted), the events the rate expects between each
    and the one before it: the surprise of the silence each event ends."""
    times = np.asarray(times, dtype=np.int64)
    return expected_events(rate, times[:-1], times[1:])


def _times(stream: list[LogEvent]) -> np.ndarray:
    return np.sort(np.fromiter((e.timestamp_ms for e in stream), np.int64, len(stream)))


def fit_volume(streams: Mapping[str, list[LogEvent]], config: VolumeConfig) -> FittedVolume:
    started = time.perf_counter()
    grouping = HostGrouping(config.host_group_pattern)
    times = {host: _times(stream) for host, stream in streams.items() if stream}
    group_of = {host: grouping.group_of(host) for host in times}
    rhythm: Rhythm = fit_rhythm(times.items(), group_of)
    held_out = []
    for host, t in times.items():
        mask = holdout_mask(host, len(t))[1:]  # an event ends the silence before it
        if mask.any():
            held_out.append(silence_surprise(rhythm.rate_of(group_of[host]), t)[mask])
    rate = events_per_host_day([(int(t[0]), int(t[-1]), len(t)) for t in times.values()])
    surprise = np.concatenate(held_out) if held_out else np.empty(0)
    calibration = fit_calibration(surprise, rate)
    net, names = VolumeNet.of(rhythm)
    events = sum(len(t) for t in times.values())
    seconds = time.perf_counter() - started
    summary = TrainingSummary(
        events=events,
        windows=events,
        distinct_windows=0,
        epochs_run=1,
        losses=[0.0],
        best_epoch=1,
        stopped="closed_form",
        seconds=seconds,
    )
    return FittedVolume(net, names, calibration, summary)
