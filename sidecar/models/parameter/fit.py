"""Fitting the parameter model: which number slots each key gets, the per-key normalisation,
the ridge predictors of each key's vector from its history, and the held-out error quantiles
that set its thresholds."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sidecar.encoding.vocabulary import RESERVED, Vocabulary
from sidecar.models.fitting import TrainingSummary
from sidecar.models.parameter.features import (
    Layout,
    features_of,
    history_matrix,
    layout_of,
    previous_of_same_key,
)
from sidecar.models.parameter.model import (
    QUANTILE_LEVELS,
    ParameterConfig,
    ParameterNet,
    normalise,
    score_vectors,
)
from sidecar.models.parameter.slots import (
    choose_slots,
    is_counter,
    number_slots,
)
from sidecar.types import LogEvent

__all__ = ["FittedParameters", "fit_parameter_model", "held_out_mask"]


@dataclass(frozen=True, slots=True)
class FittedParameters:
    net: ParameterNet
    slots: list[list[str]]  # by key id
    summary: TrainingSummary
    stats: dict[str, object]


def _choose_key_slots(layout: Layout, members: np.ndarray, config: ParameterConfig) -> list[str]:
    parsed = [number_slots(layout.events[i].message) for i in members.tolist()]
    candidates = choose_slots(parsed, config.min_share, 2 * config.max_values)
    chosen: list[str] = []
    for slot, _share in candidates:
        runs: dict[int, list[float]] = {}
        for i, slots in zip(members.tolist(), parsed, strict=True):
            value = dict(slots).get(slot)
            if value is not None:
                runs.setdefault(int(layout.host[i]), []).append(value)
        if not is_counter(runs.values()):
            chosen.append(slot)
        if len(chosen) == config.max_values:
            break
    return chosen


def held_out_mask(keys: np.ndarray, every: int) -> np.ndarray:
    """Every `every`-th occurrence of each key (in layout order) is held out: spread over the
    whole period, so drift does not put all held-out vectors in one regime."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys)
    occurrence = np.empty(len(keys), dtype=np.int64)
    occurrence[order] = np.arange(len(keys)) - np.repeat(np.cumsum(counts) - counts, counts)
    return occurrence % every == every - 1


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares with an L2 penalty on every input but the bias (the last column)."""
    penalty = np.full(x.shape[1], ridge)
    penalty[-1] = 0.0
    gram = x.T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ y)


def fit_parameter_model(
    streams: Mapping[str, list[LogEvent]], vocabulary: Vocabulary, config: ParameterConfig
) -> FittedParameters:
    started = time.perf_counter()
    layout = layout_of(list(streams.values()), vocabulary)
    size, dims = vocabulary.size, config.dims
    net = ParameterNet.from_config(size, config)
    counts = np.bincount(layout.keys, minlength=size)
    by_key = np.argsort(layout.keys, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    candidates = [k for k in range(RESERVED, size) if counts[k] >= config.min_count]

    slots: list[list[str]] = [[] for _ in range(size)]
    for k in candidates:
        slots[k] = _choose_key_slots(layout, by_key[bounds[k] : bounds[k + 1]], config)
    features = features_of(layout, slots, dims)

    mean = np.zeros((size, dims))
    std = np.ones((size, dims))
    active = np.zeros((size, dims), dtype=bool)
    floors = np.array([config.timing_min_std] + [config.value_min_std] * config.max_values)
    for k in candidates:
        members = by_key[bounds[k] : bounds[k + 1]]
        active[k, : 1 + len(slots[k])] = True
        for d in np.flatnonzero(active[k]):
            seen = features.values[members, d][features.observed[members, d]]
            if len(seen):
                mean[k, d], std[k, d] = seen.mean(), max(seen.std(), floors[d])
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(mean))
        net.std.copy_(torch.from_numpy(std))
        net.active.copy_(torch.from_numpy(active))
        net.train_count.copy_(torch.from_numpy(counts))

    normalised = normalise(features, layout.keys, net)
    usable = features.observed & active[layout.keys]
    history = history_matrix(normalised, previous_of_same_key(layout, config.history))
    inputs = np.hstack([history, np.ones((len(history), 1))])
    held_out = held_out_mask(layout.keys, config.holdout_every)

    weights = np.zeros((size, inputs.shape[1], dims))
    modelled = np.zeros(size, dtype=bool)
    fit_rows = held_rows = 0
    for k in candidates:
        members = by_key[bounds[k] : bounds[k + 1]]
        train = members[~held_out[members]]
        for d in np.flatnonzero(active[k]):
            rows = train[usable[train, d]]
            if len(rows):
                weights[k, :, d] = _ridge(inputs[rows], normalised[rows, d], config.ridge)
        fit_rows += len(train)
    with torch.no_grad():
        net.weights.copy_(torch.from_numpy(weights))
        net.modelled.copy_(torch.from_numpy(np.isin(np.arange(size), candidates)))
    scores = score_vectors(
        net,
        normalised,
        usable,
        history,
        layout.keys,
        config.confidence,
        config.min_error,
        early_counts=True,
    )
    error_mean = np.zeros(size)
    error_std = np.zeros(size)
    error_quantiles = np.zeros((size, len(QUANTILE_LEVELS)))
    for k in candidates:
        members = by_key[bounds[k] : bounds[k + 1]]
        rows = members[held_out[members] & scores.judged[members]]
        if len(rows) < 5:
            continue  # too few held-out errors for a spread: not modelled
        roots = np.cbrt(scores.error[rows])
        error_mean[k], error_std[k] = roots.mean(), roots.std(ddof=1)
        error_quantiles[k] = np.quantile(roots, QUANTILE_LEVELS)
        modelled[k] = True
        held_rows += len(rows)
    with torch.no_grad():
        net.modelled.copy_(torch.from_numpy(modelled))
        net.error_mean.copy_(torch.from_numpy(error_mean))
        net.error_std.copy_(torch.from_numpy(error_std))
        net.error_quantiles.copy_(torch.from_numpy(error_quantiles))
    net.eval()

    train_rows = ~held_out & scores.judged
    final = score_vectors(
        net, normalised, usable, history, layout.keys, config.confidence, config.min_error
    )
    held = held_out & final.judged
    summary = TrainingSummary(
        windows=int(final.judged.sum()),
        distinct_windows=int(final.judged.sum()),
        epochs_run=1,
        losses=[float(scores.error[train_rows].mean()) if train_rows.any() else 0.0],
        seconds=time.perf_counter() - started,
    )
    stats = {
        "modelled_keys": int(modelled.sum()),
        "rare_keys": int(vocabulary.known - len(candidates)),
        "fitted_vectors": int(fit_rows),
        "held_out_vectors": int(held_rows),
        # The flag rate of the held-out vectors at the trained confidence: the false-alarm
        # rate to expect on data like the training data.
        "held_out_flag_rate": round(float(final.flagged[held].mean()), 6) if held.any() else None,
    }
    return FittedParameters(net, [list(s) for s in slots], summary, stats)
