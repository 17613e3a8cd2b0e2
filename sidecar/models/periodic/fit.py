"""Fitting the periodic model: known periods from the whole training range, and the calibration
of chain surprise cross-fitted over the held-out folds (sidecar/models/calibration.py's
`holdout_folds`): each fold's chains are judged with the periods the other four folds taught,
as the detector will judge new data, so every training event calibrates as unseen.

Judging a fold with periods learned from itself would forgive every clock in it and calibrate
the threshold on a tail with the fleet's real periodic noise removed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import key_label
from sidecar.models.calibration import (
    HOLDOUT_SHARE,
    Calibration,
    events_per_host_day,
    fit_calibration,
    holdout_folds,
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


def _union(parts: list[dict[str, dict[str, set[int]]]]) -> dict[str, dict[str, set[int]]]:
    merged: dict[str, dict[str, set[int]]] = {}
    for part in parts:
        for group, keys in part.items():
            for key, steps in keys.items():
                merged.setdefault(group, {}).setdefault(key, set()).update(steps)
    return merged


def fit_periodic(
    streams: Mapping[str, list[LogEvent]], config: PeriodicConfig, rule: ChainRule | None = None
) -> FittedPeriodic:
    started = time.perf_counter()
    rule = rule or ChainRule()
    grouping = HostGrouping(config.host_group_pattern)
    # Host by host, one host's events in memory at a time (streams may be on disk,
    # sidecar/files/spill.py): every chain once, then the known periods per fold (what each
    # fold's clocks teach).
    seen: list[dict[str, dict[str, set[int]]]] = [{} for _ in range(HOLDOUT_SHARE)]
    spans: list[tuple[int, int, int]] = []
    # Per host: its group, every event's surprise, and for the chained events (surprise > 0)
    # their positions, folds, key codes and periods, as arrays: a few bytes an event.
    scored: list[tuple[str, np.ndarray, tuple[np.ndarray, ...]]] = []
    codes: dict[str, int] = {}
    for host, stream in streams.items():
        if not stream:
            continue
        events = sorted(stream, key=lambda e: (e.timestamp_ms, e.log_uuid))
        spans.append((events[0].timestamp_ms, events[-1].timestamp_ms, len(events)))
        surprise, chains = scored_chains(events, 0, config.window_size, rule, KnownPeriods(), "")
        folds = holdout_folds(host, len(events))
        group = grouping.group_of(host)
        chained = np.flatnonzero(surprise > 0)
        keys = [key_label(events[i].event_id, events[i].severity) for i in chained.tolist()]
        periods = [chains[i].period_ms for i in chained.tolist()]  # type: ignore[union-attr]
        for i, key, period_ms in zip(chained.tolist(), keys, periods, strict=True):
            if surprise[i] > config.known_surprise:
                steps = seen[folds[i]].setdefault(group, {}).setdefault(key, set())
                steps.add(period_step(period_ms))
        arrays = (
            chained.astype(np.int32),
            folds[chained].astype(np.int8),
            np.fromiter((codes.setdefault(k, len(codes)) for k in keys), np.int32, len(keys)),
            np.asarray(periods, dtype=np.int64),
        )
        scored.append((group, surprise, arrays))
    known = KnownPeriods.of(_union(seen))
    # Cross-fitted: each fold's chains judged with the periods the other four taught.
    apart = [KnownPeriods.of(_union(seen[:k] + seen[k + 1 :])) for k in range(HOLDOUT_SHARE)]
    names = list(codes)
    held_out = []
    for group, judged, (chained, folds, keys, periods) in scored:
        for i, fold, code, period_ms in zip(
            chained.tolist(), folds.tolist(), keys.tolist(), periods.tolist(), strict=True
        ):
            if apart[fold].knows(group, names[code], period_ms):
                judged[i] = 0.0  # in place: the surprise is not needed again
        held_out.append(judged)
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
    return FittedPeriodic(PeriodicNet.of(rule), known, calibration, summary)
