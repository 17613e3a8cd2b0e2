"""DeepLog's online update (Du et al., CCS'17, §3.3): when an analyst marks a detection as a
false positive, the model is updated incrementally on that window and key, so the same pattern
is no longer flagged, without retraining from scratch.

The update fine-tunes a copy of the network on the marked (window, key) pairs, mixed with the
replay set stored with the model (its most frequent training pairs), so that learning the new
pattern does not make it forget the old ones. It stops as soon as every marked key is within
the top g again with some margin, or after `max_epochs`. A marked key the model has never seen
(an `unseen_key` verdict, typically a new event type after an upgrade) first grows the
vocabulary and the network by one slot per new key.

Pure: tensors in, tensors out; the caller stores the result as a new model version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.vocabulary import PAD, UNKNOWN, Vocabulary, key_label
from sidecar.encoding.windows import TrainingPairs
from sidecar.models.nextkey.core import NextKeyConfig, score_next_keys
from sidecar.models.nextkey.deeplog import DeepLogNet
from sidecar.models.nextkey.loganomaly import LogAnomalyNet
from sidecar.models.replay import (
    extend_vocabulary,
    fine_tune_with_replay,
)

__all__ = [
    "OnlineUpdate",
    "marked_pairs",
    "grow_vocabulary",
    "online_update",
]



@dataclass(slots=True)
class OnlineUpdate:
    vocabulary: Vocabulary
    net: nn.Module
    new_keys: list[str] = field(default_factory=list)
    epochs: int = 0
    # Rank of each marked key before and after (0 = unknown to the model).
    ranks_before: list[int] = field(default_factory=list)
    ranks_after: list[int] = field(default_factory=list)
    # Share of replay pairs whose key is within the top g, before and after: forgetting shows.
    replay_top_g_before: float = 0.0
    replay_top_g_after: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "new_keys": self.new_keys,
            "epochs": self.epochs,
            "ranks_before": self.ranks_before,
            "ranks_after": self.ranks_after,
            "replay_top_g_before": round(self.replay_top_g_before, 6),
            "replay_top_g_after": round(self.replay_top_g_after, 6),
        }


def grow_vocabulary(
    vocabulary: Vocabulary,
    net: nn.Module,
    keys: Sequence[tuple[str, str]],
    key_vectors: np.ndarray | None = None,
) -> tuple[Vocabulary, nn.Module, list[tuple[str, str]]]:
    """The vocabulary and a copy of the network with a slot for each key not yet known.

    New output rows start at the mean of the existing ones (bias included), so a new key
    begins as "as likely as a typical key" and the fine-tuning moves it from there. LogAnomaly
    also needs each new key's template vector (`key_vectors`, one row per new key).
    """
    grown, new = extend_vocabulary(vocabulary, keys)
    net = copy.deepcopy(net)
    if not new:
        return vocabulary, net, []
    extra = len(new)
    with torch.no_grad():
        net.head = _grow_rows(net.head, extra)
        if isinstance(net, DeepLogNet):
            old = net.embed
            embed = nn.Embedding(old.num_embeddings + extra, old.embedding_dim, padding_idx=PAD)
            embed.weight[: old.num_embeddings] = old.weight
            embed.weight[old.num_embeddings :] = old.weight[2:].mean(dim=0)
            net.embed = embed
        elif isinstance(net, LogAnomalyNet):
            if key_vectors is None or len(key_vectors) != extra:
                raise ValueError("LogAnomaly needs a template vector for each new key")
            vectors = torch.from_numpy(np.asarray(key_vectors, dtype=np.float32))
            net.key_vectors = torch.cat([net.key_vectors, vectors])
            net.count_limits = torch.cat(
                [net.count_limits, torch.ones(extra, dtype=net.count_limits.dtype)]
            )
            # Only the first layer reads the count vector; a new key's column starts at zero.
            lstm = net.quantitative
            weight = lstm.weight_ih_l0
            wider = torch.zeros(weight.shape[0], weight.shape[1] + extra)
            wider[:, : weight.shape[1]] = weight
            lstm.weight_ih_l0 = nn.Parameter(wider)
            lstm.input_size += extra
            net.vocab_size += extra
        else:
            raise ValueError(f"cannot grow {type(net).__name__}")
    return grown, net, new


def _grow_rows(head: nn.Linear, extra: int) -> nn.Linear:
    grown = nn.Linear(head.in_features, head.out_features + extra)
    grown.weight[: head.out_features] = head.weight
    grown.weight[head.out_features :] = head.weight[2:].mean(dim=0)
    grown.bias[: head.out_features] = head.bias
    grown.bias[head.out_features :] = head.bias[2:].mean()
    return grown


def marked_pairs(
    marked: Sequence[MarkedWindow], vocabulary: Vocabulary, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """(windows [n, h], targets [n]) in the model's ids; short windows are left-padded."""
    ids = {vocabulary.label_of(i): i for i in range(2, vocabulary.size)}
    windows = np.full((len(marked), h), PAD, dtype=np.int64)
    targets = np.empty(len(marked), dtype=np.int64)
    for row, mark in enumerate(marked):
        keys = [ids.get(label, UNKNOWN) for label in mark.window_keys[-h:]]
        if keys:
            windows[row, h - len(keys) :] = keys
        targets[row] = ids.get(key_label(*mark.observed), UNKNOWN)
    return windows, targets


def _top_g_share(net: nn.Module, windows: np.ndarray, targets: np.ndarray, g: int) -> float:
    if len(targets) == 0:
        return 1.0
    scores = score_next_keys(net, windows, targets, g)
    return float(np.mean(~scores.anomalous))


def online_update(
    vocabulary: Vocabulary,
    net: nn.Module,
    config: NextKeyConfig,
    marked: Sequence[MarkedWindow],
    replay: TrainingPairs | None,
    *,
    top_g: int,
    min_probability: float = 0.0,
    key_vectors_for: Callable[[list[tuple[str, str]]], np.ndarray] | None = None,
    learning_rate: float = 1e-3,
    max_epochs: int = 60,
    marked_weight: float = 0.3,
    steps_per_epoch: int = 20,
    forgetting_tolerance: float = 0.005,
) -> OnlineUpdate:
    """Fine-tune a copy of `net` until every marked key is within the top g of its window.

    `marked_weight`: the marked pairs' share of each step's loss (the rest is a replay batch),
    enough to learn them in tens of steps without drowning what the replay set anchors. An
    epoch here is `steps_per_epoch` steps, after which the verdicts are checked: it stops
    once the marked keys are learned and the replay set's top-g share is within
    `forgetting_tolerance` of where it was (a few more mixed steps bring back what the first
    ones disturbed).
    `key_vectors_for(keys) -> array` gives LogAnomaly the template vectors of new keys.
    """
    new_keys = [m.observed for m in marked]
    vectors = None
    if isinstance(net, LogAnomalyNet):
        missing = [k for k in dict.fromkeys(new_keys) if vocabulary.id_of(*k) == UNKNOWN]
        vectors = key_vectors_for(missing) if missing and key_vectors_for else None
    grown_vocab, tuned, added = grow_vocabulary(vocabulary, net, new_keys, vectors)
    h = config.window_size
    before_windows, before_targets = marked_pairs(marked, vocabulary, h)
    result = OnlineUpdate(grown_vocab, tuned, [key_label(*k) for k in added])
    result.ranks_before = score_next_keys(net, before_windows, before_targets, top_g).rank.tolist()
    windows, targets = marked_pairs(marked, grown_vocab, h)
    replay_w = replay.windows if replay is not None else np.empty((0, h), np.int64)
    replay_t = replay.targets if replay is not None else np.empty(0, np.int64)
    replay_c = replay.counts if replay is not None else np.empty(0, np.int64)
    result.replay_top_g_before = _top_g_share(net, replay_w, replay_t, top_g)

    loss_fn = nn.CrossEntropyLoss(reduction="none")
    marked_x, marked_y = torch.from_numpy(windows), torch.from_numpy(targets)
    replay_x, replay_y = torch.from_numpy(replay_w), torch.from_numpy(replay_t)

    def done() -> bool:
        scores = score_next_keys(tuned, windows, targets, top_g)
        # Margin: within the top g and not improbable, so the verdict does not flip back
        # on the next, slightly different occurrence of the same pattern.
        learned = bool(np.all(scores.rank <= max(1, top_g - 1))) and bool(
            np.all(scores.probability >= max(min_probability * 2, 1e-3))
        )
        return learned and (
            _top_g_share(tuned, replay_w, replay_t, top_g)
            >= result.replay_top_g_before - forgetting_tolerance
        )

    result.epochs = fine_tune_with_replay(
        tuned,
        lambda: loss_fn(tuned(marked_x), marked_y).mean(),
        lambda idx: loss_fn(tuned(replay_x[idx]), replay_y[idx]),
        torch.from_numpy(replay_c).float(),
        done,
        seed=config.seed,
        batch_size=config.batch_size,
        learning_rate=learning_rate,
        marked_weight=marked_weight,
        max_epochs=max_epochs,
        steps_per_epoch=steps_per_epoch,
    )
    result.ranks_after = score_next_keys(tuned, windows, targets, top_g).rank.tolist()
    result.replay_top_g_after = _top_g_share(tuned, replay_w, replay_t, top_g)
    return result
