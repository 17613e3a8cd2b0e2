"""What every model kind's online update shares: the replay set stored with a model (its most
frequent training items), the marked items joined to it, new keys appended to a vocabulary, and
fine-tuning on marked items mixed with replayed ones so that learning a mark does not make the
model forget what it knew (sidecar/models/nextkey/online.py, countvector/online.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from sidecar.encoding.vocabulary import UNKNOWN, Vocabulary

__all__ = [
    "REPLAY_PAIRS",
    "replay_set",
    "replay_with_marks",
    "extend_vocabulary",
    "fine_tune_with_replay",
]

# Replay pairs kept with a model: enough to anchor the common paths of a large fleet, small
# enough (REPLAY_PAIRS x (h + 2) int64) to store with every version.
REPLAY_PAIRS = 20_000


def replay_set(
    columns: Mapping[str, np.ndarray], counts: np.ndarray, limit: int = REPLAY_PAIRS
) -> dict[str, torch.Tensor]:
    """The `limit` most frequent items (rows of each column, with their counts), as the
    tensors stored with a model for its online updates."""
    keep = np.argsort(-counts, kind="stable")[:limit]
    return {
        **{name: torch.from_numpy(values[keep].copy()) for name, values in columns.items()},
        "counts": torch.from_numpy(counts[keep].copy()),
    }


def replay_with_marks(
    columns: Mapping[str, np.ndarray], counts: np.ndarray, marked: Mapping[str, np.ndarray]
) -> dict[str, torch.Tensor]:
    """The replay set with the marked items joined, each counted like a median replay item,
    so a later update does not undo what this one learned."""
    added = len(next(iter(marked.values())))
    weight = int(np.median(counts)) if len(counts) else 1
    merged = {name: np.concatenate([columns[name], values]) for name, values in marked.items()}
    all_counts = np.concatenate([counts, np.full(added, weight, dtype=np.int64)])
    return replay_set(merged, all_counts, REPLAY_PAIRS + added)


def extend_vocabulary(
    vocabulary: Vocabulary, keys: Sequence[tuple[str, str]]
) -> tuple[Vocabulary, list[tuple[str, str]]]:
    """The vocabulary with the keys it does not know appended (existing ids unchanged), and
    those keys in order."""
    new = [k for k in dict.fromkeys(keys) if vocabulary.id_of(*k) == UNKNOWN]
    if not new:
        return vocabulary, []
    known = [vocabulary.key_of(i) for i in range(2, vocabulary.size)]
    grown = Vocabulary([*known, *new], [*_counts(vocabulary), *([0] * len(new))])  # type: ignore[list-item]
    return grown, new


def _counts(vocabulary: Vocabulary) -> list[int]:
    data = vocabulary.to_json()["keys"]
    return [int(k.get("count", 0)) for k in data]  # type: ignore[union-attr]


def fine_tune_with_replay(
    net: nn.Module,
    marked_loss: Callable[[], torch.Tensor],
    replay_loss: Callable[[torch.Tensor], torch.Tensor],
    replay_weights: torch.Tensor,
    done: Callable[[], bool],
    *,
    seed: int,
    batch_size: int,
    learning_rate: float,
    marked_weight: float,
    max_epochs: int,
    steps_per_epoch: int,
) -> int:
    """The online update's loop, for any model: each step's loss is `marked_weight` times the
    marked items' mean loss plus the rest times a weighted replay batch's (`replay_loss(idx)`
    per item, `replay_weights` per replay item); after each epoch of `steps_per_epoch` steps,
    `done()` is asked in eval mode. Returns the epochs run; leaves `net` in eval mode."""
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    replayed = len(replay_weights)
    net.train()
    for epoch in range(1, max_epochs + 1):
        for _ in range(steps_per_epoch):
            loss = marked_loss() * marked_weight
            if replayed:  # a model saved without a replay set learns the marks alone
                idx = torch.randint(replayed, (min(replayed, batch_size),), generator=generator)
                w = replay_weights[idx]
                loss = loss + (replay_loss(idx) * w).sum() / w.sum() * (1 - marked_weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        net.eval()
        if done():
            return epoch
        net.train()
    net.eval()
    return max_epochs
