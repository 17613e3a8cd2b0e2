"""Fitting the periodic model: known periods from the fitting part of the training range, then
the calibration of chain surprise on the held-out slice (sidecar/models/calibration.py's
`holdout_mask`), with known periods already forgiven, as the detector will score.

Learning the known periods from the held-out slice too would forgive every clock in it and
calibrate the threshold on a tail with the fleet's real periodic noise removed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
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
from sidecar.models.periodic.chains import Chain, ChainRule, chain_surprise
from sidecar.models.periodic.model import KnownPeriods, PeriodicConfig, PeriodicNet, period_step
from sidecar.types import LogEvent

__all__ = ["FittedPeriodic", "fit_periodic", "scored_chains"]


@dataclass(frozen=True, slots=True)
class FittedPeriodic:
    net: PeriodicNet
    known: KnownPeriods
    calibration: Calibration
    summary: TrainingSummary


def scored_chains(
    events: Sequence[LogEvent],
    first: int,
    window: int,
    rule: ChainRule,
    known: KnownPeriods,
    group: str,
) -> tuple[np.ndarray, list[Chain | None]]:
    """Chain surprise of events first..n-1 of one host, 0 where the chain keeps a known
    period of its key in the host's group."""
    keys = [key_label(e.event_id, e.severity) for e in events]
    surprise, chains = chain_surprise([e.timestamp_ms for e in events], keys, first, window, rule)
    for i, chain in enumerate(chains):
        if chain is not None and known.knows(group, keys[first + i], chain.period_ms):
            surprise[i] = 0.0
    return surprise, chains


def fit_periodic(
    streams: Mapping[str, list[LogEvent]], config: PeriodicConfig, rule: ChainRule | None = None
) -> FittedPeriodic:
    started = time.perf_counter()
    rule = rule or ChainRule()
    grouping = HostGrouping(config.host_group_pattern)
    hosts = {
        host: sorted(stream, key=lambda e: (e.timestamp_ms, e.log_uuid))
        for host, stream in streams.items()
        if stream
    }
    seen: dict[str, dict[str, set[int]]] = {}
    for host, events in hosts.items():
        surprise, chains = scored_chains(events, 0, config.window_size, rule, KnownPeriods(), "")
        fitting = ~holdout_mask(host, len(events))
        for i in np.flatnonzero(fitting & (surprise > config.known_surprise)):
            chain = chains[i]
            assert chain is not None
            key = key_label(events[i].event_id, events[i].severity)
            group = seen.setdefault(grouping.group_of(host), {})
            group.setdefault(key, set()).add(period_step(chain.period_ms))
    known = KnownPeriods.of(seen)
    held_out = []
    for host, events in hosts.items():
        mask = holdout_mask(host, len(events))
        if mask.any():
            surprise, _ = scored_chains(
                events, 0, config.window_size, rule, known, grouping.group_of(host)
            )
            held_out.append(surprise[mask])
    rate = events_per_host_day(
        [(e[0].timestamp_ms, e[-1].timestamp_ms, len(e)) for e in hosts.values()]
    )
    calibration = fit_calibration(np.concatenate(held_out) if held_out else np.empty(0), rate)
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
    return FittedPeriodic(PeriodicNet.of(rule), known, calibration, summary)
