"""The content detector's online update from analysts' false-positive marks.

A marked event's tokens join its template's statistics (so the same text is no longer unseen),
its features as a repeat of it would now have them join the replay sample kept from training,
the forest is refit on that sample and the autoencoder fine-tuned on it: the marked variation
stops being flagged while other unseen text of the same template still is. The held-out
slice's feature vectors, kept with the model, are scored again by the new forest and
autoencoder and give the new calibration: the budget keeps meaning what it says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.vocabulary import RESERVED, Vocabulary
from sidecar.models.calibration import Calibration, fit_calibration
from sidecar.models.content.features import features_of, token_counts
from sidecar.models.content.fit import (
    draw,
    labels_of,
    reference_surprise,
    train_autoencoder,
    weighted_cut,
)
from sidecar.models.content.forest import fit_forest, forest_scores
from sidecar.models.content.model import ContentConfig, ContentNet
from sidecar.models.content.rows import Rows, rows_of
from sidecar.models.content.stats import TemplateStats
from sidecar.models.fitting import TrainingSummary

__all__ = ["ContentUpdate", "update_content", "MARK_WEIGHT_SHARE"]

# Each marked event weighs this share of the replay sample in the refit: enough that the forest
# and the autoencoder learn its region, too little to move what they learned of the rest.
MARK_WEIGHT_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class ContentUpdate:
    net: ContentNet
    calibration: Calibration
    learned: int  # marks whose text was learned
    without: int  # marks without a message or of a key the model does not know
    epochs: int = 0


def _with_tokens(stats: TemplateStats, rows: Rows) -> TemplateStats:
    # One count per marked message holding the token (twice in one message counts once).
    owner, added = np.unique(np.stack([rows.owner, rows.hashes]), axis=1)
    table, inverse = np.unique(np.concatenate([stats.hashes, added]), return_inverse=True)
    counts = np.bincount(
        inverse, np.concatenate([stats.counts, rows.counts[owner]]), minlength=len(table)
    ).astype(np.int64)
    messages = stats.messages + np.bincount(rows.keys, rows.counts, minlength=len(stats.messages))
    return replace(stats, hashes=table, counts=counts, messages=messages)


def update_content(
    net: ContentNet,
    vocabulary: Vocabulary,
    typical: dict[str, dict[str, list[list[object]]]],
    marked: list[MarkedWindow],
    config: ContentConfig,
    calibration: Calibration,
) -> ContentUpdate:
    usable = [m for m in marked if m.message and vocabulary.id_of(*m.observed) >= RESERVED]
    if not usable:
        return ContentUpdate(net, calibration, 0, len(marked))
    keys = np.array([vocabulary.id_of(*m.observed) for m in usable], dtype=np.int64)
    rows = rows_of(keys, [m.message for m in usable], labels_of(vocabulary))
    stats = _with_tokens(net.stats(typical), rows)
    features = features_of(stats, rows, token_counts(stats, rows, leave_one_out=False))
    updated = ContentNet.shaped_like(vocabulary.size, net.sizes(), config)
    updated.load_state_dict(net.state_dict())
    updated.set_stats(stats)
    marks = updated.normalise(features)
    replay = updated.replay.numpy()
    weights = updated.replay_weight.numpy()
    mark_weight = np.full(len(marks), max(1.0, MARK_WEIGHT_SHARE * float(weights.sum())))
    x = np.vstack([replay, marks])
    w = np.concatenate([weights, mark_weight])
    sample = draw(w, config.sample_rows, config.seed)
    forest = fit_forest(x[sample], config.trees, config.max_samples, config.seed)
    # The gate keeps its share of the replay sample (training's occurrences), marks aside.
    cut = weighted_cut(forest_scores(forest, replay), weights, config.forest_share)
    updated.set_forest(forest, cut)
    # As in training, the autoencoder learns what the forest passes, and the marks.
    passed = np.where(forest_scores(forest, x) <= cut, w, 0.0)
    passed[len(replay) :] = mark_weight
    updated.replay = torch.from_numpy(x)
    updated.replay_weight = torch.from_numpy(w)
    # Fine-tuned from the trained weights under training's own schedule and stop rule.
    summary = TrainingSummary()
    train_autoencoder(updated, x, passed, config, summary, on_epoch=None)
    surprise = reference_surprise(updated, updated.held_out.numpy())
    held = np.repeat(surprise, np.rint(updated.held_out_weight.numpy()).astype(np.int64))
    recalibrated = fit_calibration(held, calibration.events_per_host_day)
    return ContentUpdate(
        updated, recalibrated, len(usable), len(marked) - len(usable), summary.epochs_run
    )
