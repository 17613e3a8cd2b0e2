"""The count autoencoder's online update: DeepLog's idea (§3.3) on window count vectors.

A window an analyst marked as a false positive is rebuilt too badly by the network. A copy is
fine-tuned on the marked windows, mixed with the replay set kept with the model (its most
frequent training windows), until every marked window's error is a margin below the
threshold and the share of replay windows within the threshold is back near where it was.
The threshold itself stays: it is the scale the model was judged by, and moving it would
change the verdict on every window, not only on the marked ones.

A marked key the model has never seen gets a column of its own first (zero weights in, zero
reconstruction out), so the update can learn it as part of normal mixes.

Pure: tensors in, tensors out; the caller stores the result as a new model version.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.vocabulary import PAD, RESERVED, UNKNOWN, Vocabulary, key_label
from sidecar.models.countvector.autoencoder import AutoencoderConfig, CountAutoencoder
from sidecar.models.countvector.vectors import key_counts
from sidecar.models.replay import extend_vocabulary, fine_tune_with_replay

__all__ = ["AutoencoderUpdate", "grow_autoencoder", "marked_rows", "update_autoencoder"]


@dataclass(slots=True)
class AutoencoderUpdate:
    vocabulary: Vocabulary
    net: CountAutoencoder
    new_keys: list[str] = field(default_factory=list)
    epochs: int = 0
    # Each marked window's error over the threshold, before and after (> 1: flagged).
    ratios_before: list[float] = field(default_factory=list)
    ratios_after: list[float] = field(default_factory=list)
    # Weighted share of replay windows within the threshold, before and after.
    replay_within_before: float = 0.0
    replay_within_after: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "new_keys": self.new_keys,
            "epochs": self.epochs,
            "ratios_before": [round(r, 4) for r in self.ratios_before],
            "ratios_after": [round(r, 4) for r in self.ratios_after],
            "replay_within_before": round(self.replay_within_before, 6),
            "replay_within_after": round(self.replay_within_after, 6),
        }


def grow_autoencoder(net: CountAutoencoder, extra: int) -> CountAutoencoder:
    """A copy with `extra` more key columns: read with zero weights, rebuilt as zero."""
    grown = copy.deepcopy(net)
    if extra == 0:
        return grown
    with torch.no_grad():
        first: nn.Linear = grown.encoder[0]  # type: ignore[assignment]
        wider = nn.Linear(first.in_features + extra, first.out_features)
        wider.weight.zero_()
        wider.weight[:, : first.in_features] = first.weight
        wider.bias.copy_(first.bias)
        grown.encoder[0] = wider
        last: nn.Linear = grown.decoder[-1]  # type: ignore[assignment]
        taller = nn.Linear(last.in_features, last.out_features + extra)
        taller.weight.zero_()
        taller.bias.zero_()
        taller.weight[: last.out_features] = last.weight
        taller.bias[: last.out_features] = last.bias
        grown.decoder[-1] = taller
        grown.scale = torch.cat([grown.scale, torch.ones(extra, dtype=grown.scale.dtype)])
    return grown


def marked_rows(marked: Sequence[MarkedWindow], vocabulary: Vocabulary, h: int) -> np.ndarray:
    """The counted window of each mark (its event and the h-1 keys before it, left-padded,
    sorted: see countvectors.counted_keys) in the model's ids."""
    ids = {vocabulary.label_of(i): i for i in range(RESERVED, vocabulary.size)}
    rows = np.full((len(marked), h), PAD, dtype=np.int64)
    for row, mark in enumerate(marked):
        before = (
            [ids.get(label, UNKNOWN) for label in mark.window_keys[-(h - 1) :]] if h > 1 else []
        )
        keys = [*before, ids.get(key_label(*mark.observed), UNKNOWN)]
        rows[row, h - len(keys) :] = keys
    rows.sort(axis=1)
    return rows


def _errors(net: CountAutoencoder, vectors: torch.Tensor) -> torch.Tensor:
    return net(vectors).square().sum(dim=1)


def _within(
    net: CountAutoencoder, vectors: torch.Tensor, weights: torch.Tensor, threshold: float
) -> float:
    if len(weights) == 0:
        return 1.0
    with torch.inference_mode():
        inside = (_errors(net, vectors) <= threshold).to(weights.dtype)
    return float((inside * weights).sum() / weights.sum())


def update_autoencoder(
    vocabulary: Vocabulary,
    net: CountAutoencoder,
    config: AutoencoderConfig,
    marked: Sequence[MarkedWindow],
    replay_rows: np.ndarray,
    replay_counts: np.ndarray,
    *,
    margin: float = 0.8,
    marked_weight: float = 0.3,
    learning_rate: float = 1e-3,
    max_epochs: int = 60,
    steps_per_epoch: int = 20,
    forgetting_tolerance: float = 0.005,
) -> AutoencoderUpdate:
    """Fine-tune a copy of `net` until every marked window's error is below `margin` times
    the threshold and the replay set is back within `forgetting_tolerance` of its share
    within the threshold (or `max_epochs` epochs of `steps_per_epoch` steps)."""
    h = config.window_size
    grown_vocab, new = extend_vocabulary(vocabulary, [m.observed for m in marked])
    tuned = grow_autoencoder(net, grown_vocab.size - vocabulary.size)
    threshold = float(net.threshold)
    result = AutoencoderUpdate(grown_vocab, tuned, [key_label(*k) for k in new])
    size = grown_vocab.size
    marks_before = torch.from_numpy(key_counts(marked_rows(marked, vocabulary, h), vocabulary.size))
    marks = torch.from_numpy(key_counts(marked_rows(marked, grown_vocab, h), size))
    replay = torch.from_numpy(key_counts(replay_rows, size))
    weights = torch.from_numpy(replay_counts).double()
    with torch.inference_mode():
        result.ratios_before = (_errors(net, marks_before) / threshold).tolist()
    result.replay_within_before = _within(tuned, replay, weights, threshold)

    def done() -> bool:
        with torch.inference_mode():
            learned = bool((_errors(tuned, marks) <= margin * threshold).all())
        return learned and (
            _within(tuned, replay, weights, threshold)
            >= result.replay_within_before - forgetting_tolerance
        )

    result.epochs = fine_tune_with_replay(
        tuned,
        lambda: _errors(tuned, marks).mean(),
        lambda idx: _errors(tuned, replay[idx]),
        weights,
        done,
        seed=config.seed,
        batch_size=config.batch_size,
        learning_rate=learning_rate,
        marked_weight=marked_weight,
        max_epochs=max_epochs,
        steps_per_epoch=steps_per_epoch,
    )
    with torch.inference_mode():
        result.ratios_after = (_errors(tuned, marks) / threshold).tolist()
    result.replay_within_after = _within(tuned, replay, weights, threshold)
    return result
