"""Fitting the volume model: the groups' daily rhythm, then the calibration of silences and of
bursts on the held-out slice of the training range, each apart (a burst's surprise runs to
hundreds of nats, a silence's to tens: one scale would let bursts crowd silences out).

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
from sidecar.encoding.vocabulary import key_label
from sidecar.models.calibration import (
    Calibration,
    events_per_host_day,
    fit_calibration,
    holdout_mask,
)
from sidecar.models.fitting import TrainingSummary
from sidecar.models.volume.bursts import KeyShares, key_bursts
from sidecar.models.volume.model import VolumeConfig, VolumeNet
from sidecar.models.volume.rhythm import Rhythm, expected_events, fit_rhythm
from sidecar.types import LogEvent

__all__ = ["FittedVolume", "fit_volume", "silence_surprise"]


@dataclass(frozen=True, slots=True)
class FittedVolume:
    net: VolumeNet
    groups: list[str]
    calibration: Calibration
    burst_calibration: Calibration
    shares: KeyShares
    summary: TrainingSummary


def silence_surprise(rate: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For events 1..n-1 of one host (times sorted), the events the rate expects between each
    and the one before it: the surprise of the silence each event ends."""
    times = np.asarray(times, dtype=np.int64)
    return expected_events(rate, times[:-1], times[1:])


def _ordered(stream: list[LogEvent]) -> tuple[np.ndarray, list[str]]:
    events = sorted(stream, key=lambda e: (e.timestamp_ms, e.log_uuid))
    times = np.fromiter((e.timestamp_ms for e in events), np.int64, len(events))
    return times, [key_label(e.event_id, e.severity) for e in events]


def fit_volume(streams: Mapping[str, list[LogEvent]], config: VolumeConfig) -> FittedVolume:
    started = time.perf_counter()
    grouping = HostGrouping(config.host_group_pattern)
    # Host by host, one host's events in memory at a time (streams may be on disk,
    # sidecar/files/spill.py); what stays is each event's time and a small key code.
    labels: dict[str, int] = {}
    ordered: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for host, stream in streams.items():
        if stream:
            t, keys = _ordered(stream)
            codes = np.fromiter((labels.setdefault(k, len(labels)) for k in keys), np.int32, len(t))
            ordered[host] = (t, codes)
    names = list(labels)
    times = {host: t for host, (t, _) in ordered.items()}
    group_of = {host: grouping.group_of(host) for host in times}
    rhythm: Rhythm = fit_rhythm(times.items(), group_of)

    def tally(codes: np.ndarray) -> dict[str, int]:
        return {names[c]: int(n) for c, n in enumerate(np.bincount(codes)) if n}

    own = {host: tally(c) for host, (_, c) in ordered.items()}
    # A group's counts are its hosts' summed.
    counts: dict[str, dict[str, int]] = {}
    for host, keys in own.items():
        group = counts.setdefault(group_of[host], {})
        for key, n in keys.items():
            group[key] = group.get(key, 0) + n
    masks = {host: holdout_mask(host, len(t)) for host, (t, _) in ordered.items()}
    shares = KeyShares.count(counts, own)
    # The calibration judges the held-out chunks by shares the host's other chunks gave, so a
    # burst held out is not already half of its host's own share.
    fitting = KeyShares.count(
        counts, {host: tally(c[~masks[host]]) for host, (_, c) in ordered.items()}
    )
    held_out, held_out_bursts = [], []
    for host, (t, codes) in ordered.items():
        mask = masks[host]
        group = group_of[host]
        if mask[1:].any():  # an event ends the silence before it
            held_out.append(silence_surprise(rhythm.rate_of(group), t)[mask[1:]])
        if mask.any():
            keys = [names[c] for c in codes.tolist()]
            bursts, _ = key_bursts(
                t.tolist(),
                keys,
                0,
                config.burst_events,
                rhythm.rate_of(group),
                fitting.of(group, host),
            )
            held_out_bursts.append(bursts[mask])
    rate = events_per_host_day([(int(t[0]), int(t[-1]), len(t)) for t in times.values()])
    surprise = np.concatenate(held_out) if held_out else np.empty(0)
    calibration = fit_calibration(surprise, rate)
    bursts = np.concatenate(held_out_bursts) if held_out_bursts else np.empty(0)
    burst_calibration = fit_calibration(bursts, rate)
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
    return FittedVolume(net, names, calibration, burst_calibration, shares, summary)
