"""Fitting the content detector: template statistics over the whole training range, the forest
and the autoencoder on the fitting part, the calibration on the held-out slice.

Every training event is measured leaving its own occurrence out (sidecar/models/content/
stats.py), so the held-out slice sees tokens met once in training as unseen, which is what
a new event with a one-off token looks like; the forest and the autoencoder never see the
held-out slice (sidecar/models/calibration.py's `holdout_mask`), whose surprises calibrate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.calibration import (
    Calibration,
    events_per_host_day,
    fit_calibration,
    holdout_mask,
)
from sidecar.models.content.features import FEATURES, PER_TEMPLATE, features_of, token_counts
from sidecar.models.content.forest import fit_forest, forest_scores
from sidecar.models.content.model import ContentConfig, ContentNet
from sidecar.models.content.rows import Rows, rows_of
from sidecar.models.content.stats import TemplateStats, fit_stats
from sidecar.models.fitting import (
    EpochHook,
    TrainingSummary,
    current_training_device,
    fit_weighted,
    one_thread,
)
from sidecar.types import LogEvent

__all__ = [
    "FittedContent",
    "fit_content",
    "surprise_of",
    "reference_surprise",
    "gate_of",
    "labels_of",
    "draw",
    "distinct_vectors",
    "weighted_cut",
    "train_autoencoder",
    "FEATURE_STD_FLOOR",
]

# A feature constant in training (a template bit, a class no template uses) must not turn the
# faintest change into many standard deviations.
FEATURE_STD_FLOOR = 0.1
# How far (normalised units) beyond the fitting rows' range a feature must lie to go to the
# second stage whatever the forest says (sidecar/models/content/model.py).
BOX_MARGIN = 1.0


@dataclass(frozen=True, slots=True)
class FittedContent:
    net: ContentNet
    stats: TemplateStats
    calibration: Calibration
    summary: TrainingSummary
    gated_share: float  # of held-out events, the share the forest sent to the second stage


def labels_of(vocabulary: Vocabulary) -> list[str]:
    return [vocabulary.label_of(i) for i in range(vocabulary.size)]


def weighted_cut(scores: np.ndarray, weights: np.ndarray, share: float) -> float:
    """The forest's gate: about `share` of the weight scores above it. Training rows repeat,
    so many share one score; the cut lies halfway to the next higher score (or to 1), so a
    new event whose features differ from a training row's by a rounding does not fall on the
    other side of it."""
    order = np.argsort(scores)
    cumulative = np.cumsum(weights[order])
    if len(cumulative) == 0 or cumulative[-1] <= 0:
        return 1.0
    at = min(int(np.searchsorted(cumulative, (1.0 - share) * cumulative[-1])), len(order) - 1)
    quantile = float(scores[order[at]])
    higher = scores[scores > quantile]
    return (quantile + (float(higher.min()) if len(higher) else 1.0)) / 2.0


def draw(weights: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Row indices drawn by weight (with replacement), at most n, sorted."""
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    size = int(min(n, total))
    return np.sort(rng.choice(len(weights), size=size, replace=True, p=weights / total))


def gate_of(net: ContentNet, normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(forest score, sent to the second stage) of each row: the forest's score past its cut,
    or a feature beyond the fitting rows' range (sidecar/models/content/model.py)."""
    scores = forest_scores(net.forest(), normalised)
    outside = (normalised < net.feature_low.numpy() - BOX_MARGIN) | (
        normalised > net.feature_high.numpy() + BOX_MARGIN
    )
    return scores, (scores > float(net.forest_cut[0])) | outside.any(axis=1)


def _summed(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return np.zeros((0, x.shape[1])), np.zeros(0)
    unique, inverse = np.unique(x, axis=0, return_inverse=True)
    return unique, np.bincount(inverse.ravel(), weights, minlength=len(unique))


def distinct_vectors(
    x: np.ndarray, weights: np.ndarray, cap: int, seed: int, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of x with summed weights (rows of weight 0 left out). Over `cap`,
    the rows `keep` marks all stay and the others are drawn by weight, their weights rescaled
    to the same total."""
    present = weights > 0
    marked = present & (np.zeros(len(x), bool) if keep is None else keep)
    kept, kept_w = _summed(x[marked], weights[marked])
    rest, rest_w = _summed(x[present & ~marked], weights[present & ~marked])
    room = max(cap - len(kept), 1)
    if len(rest) > room:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(rest), size=room, replace=False, p=rest_w / rest_w.sum()))
        total = rest_w.sum()
        rest, rest_w = rest[pick], rest_w[pick] * (total / rest_w[pick].sum())
    return np.vstack([kept, rest]), np.concatenate([kept_w, rest_w])


def surprise_of(net: ContentNet, normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(forest score, surprise) of each row: half the autoencoder's squared error for rows
    the gate sends on, 0 for rows the first stage finds ordinary. Half a squared error in
    standard deviations is the negative log-likelihood of a Gaussian residual (in nats, up to
    a constant), the unit the calibration's tail is fitted in."""
    scores, gated = gate_of(net, normalised)
    surprise = np.zeros(len(normalised))
    surprise[gated] = 0.5 * net.errors(normalised[gated])
    return scores, surprise


def reference_surprise(net: ContentNet, normalised: np.ndarray) -> np.ndarray:
    """What the calibration is fitted on: every held-out row's surprise as if the gate had
    sent it on. Fitted on the gated rows alone, the tail would rest on the few dozen a
    held-out slice sends on, and a mass of zeros beneath them would shrink its scale; the
    autoencoder's errors on all held-out rows make a tail estimate from thousands, which
    can only be the more cautious (the gate stops rows, it never adds surprise)."""
    return 0.5 * net.errors(normalised)


def train_autoencoder(
    net: ContentNet,
    normalised: np.ndarray,
    weights: np.ndarray,
    config: ContentConfig,
    summary: TrainingSummary,
    on_epoch: EpochHook | None,
) -> None:
    x = torch.from_numpy(normalised).float().to(current_training_device())
    with one_thread():
        fit_weighted(
            net.autoencoder,
            torch.from_numpy(weights).float(),
            lambda idx: net.autoencoder(x[idx]).square().sum(dim=1),
            config,
            summary,
            on_epoch,
        )


def _layout(
    streams: Mapping[str, list[LogEvent]], vocabulary: Vocabulary
) -> tuple[Rows, np.ndarray, list[tuple[int, int, int]]]:
    keys, messages, held = [], [], []
    spans = []
    for host, stream in streams.items():
        if not stream:
            continue
        keys.append(vocabulary.encode(stream))
        messages.extend(e.message for e in stream)
        held.append(holdout_mask(host, len(stream)))
        spans.append((stream[0].timestamp_ms, stream[-1].timestamp_ms, len(stream)))
    all_keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    rows = rows_of(all_keys, messages, labels_of(vocabulary))
    return rows, np.concatenate(held) if held else np.zeros(0, bool), spans


def fit_content(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: ContentConfig,
    on_epoch: EpochHook | None = None,
) -> FittedContent:
    started = time.perf_counter()
    rows, held, spans = _layout(streams, vocabulary)
    r = len(rows.keys)
    stats = fit_stats(rows, vocabulary.size, config.max_entries)
    features = features_of(stats, rows, token_counts(stats, rows, leave_one_out=True))
    judged = stats.messages[rows.keys] >= config.min_messages
    if not judged.any():
        judged[:] = True  # a tiny training range: judge what there is rather than nothing
    fit_w = np.bincount(rows.row_of[~held], minlength=r).astype(np.float64) * judged
    held_w = np.bincount(rows.row_of[held], minlength=r).astype(np.float64) * judged
    torch.manual_seed(config.seed)  # the autoencoder's first weights: the same every run
    net = _shaped(vocabulary.size, stats, config)
    total = max(fit_w.sum(), 1.0)
    mean = (features * fit_w[:, None]).sum(axis=0) / total
    std = np.sqrt(((features - mean) ** 2 * fit_w[:, None]).sum(axis=0) / total)
    own = np.array([f in PER_TEMPLATE for f in FEATURES])
    net.feature_mean = torch.from_numpy(np.where(own, 0.0, mean))
    net.feature_std = torch.from_numpy(np.where(own, 1.0, np.maximum(std, FEATURE_STD_FLOOR)))
    normalised = net.normalise(features)
    fitting = normalised[fit_w > 0]
    if len(fitting):
        net.feature_low = torch.from_numpy(fitting.min(axis=0))
        net.feature_high = torch.from_numpy(fitting.max(axis=0))
    sample = draw(fit_w, config.sample_rows, config.seed)
    forest = fit_forest(normalised[sample], config.trees, config.max_samples, config.seed)
    scores = forest_scores(forest, normalised)
    net.set_forest(forest, weighted_cut(scores, fit_w, config.forest_share))
    _, gate = gate_of(net, normalised)
    # The autoencoder learns what the forest passes as normal (the paper's filtering).
    passed = np.where(gate, 0.0, fit_w)
    summary = TrainingSummary(
        events=len(rows.row_of), windows=int(passed.sum()), distinct_windows=int((passed > 0).sum())
    )
    train_autoencoder(net, normalised, passed, config, summary, on_epoch)
    reference = reference_surprise(net, normalised)
    rate = events_per_host_day(spans)
    calibration = fit_calibration(np.repeat(reference, held_w.astype(np.int64)), rate)
    replay, replay_w = distinct_vectors(normalised, fit_w, config.replay_rows, config.seed + 1)
    net.replay, net.replay_weight = torch.from_numpy(replay), torch.from_numpy(replay_w)
    held, held_vw = distinct_vectors(
        normalised, held_w, config.held_out_rows, config.seed + 2, keep=gate
    )
    net.held_out, net.held_out_weight = torch.from_numpy(held), torch.from_numpy(held_vw)
    summary.seconds = time.perf_counter() - started
    gated = float(held_w[gate].sum() / max(held_w.sum(), 1.0))
    return FittedContent(net, stats, calibration, summary, gated)


def _shaped(vocab_size: int, stats: TemplateStats, config: ContentConfig) -> ContentNet:
    net = ContentNet(vocab_size, 0, 0, 0, config)
    net.set_stats(stats)
    return net
