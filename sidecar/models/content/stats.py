"""What the content detector knows of each template from training.

Per template: how many training messages it had, which tokens occurred in them and how often
(a sorted table of 64-bit (template, token) hashes with counts, capped), how often one of its
messages brought a token of each value class that none of its other messages had (its
*novelty rate*: a template with free text or fresh ids has a high one in that class, a fixed
statement none), its usual token count, length and mix of value classes, and the most common
tokens at each position (the "typical instead" of an annotation).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from sidecar.models.content.rows import Rows
from sidecar.models.content.tokens import CLASSES

__all__ = ["TemplateStats", "fit_stats", "class_counts", "TYPICAL_POSITIONS", "TYPICAL_TEMPLATES"]

# Positions per template whose usual tokens are kept for annotations, and tokens per position.
TYPICAL_POSITIONS = 24
_TYPICAL_TOKENS = 3
_TYPICAL_CHARS = 64
# Templates whose typical tokens the manifest keeps, the most common first: the manifest is one
# JSON document (in the cluster, one stored document), so it must not grow with the vocabulary.
TYPICAL_TEMPLATES = 2_000


@dataclass(frozen=True, slots=True)
class TemplateStats:
    hashes: np.ndarray  # [e] sorted (template, token) hashes
    counts: np.ndarray  # [e] training messages of the template holding the token
    messages: np.ndarray  # [v] training messages per key id
    # [v, classes] of them, bringing a token of the class no other message of the key had
    novel: np.ndarray
    token_mean: np.ndarray  # [v]
    token_std: np.ndarray  # [v]
    length_mean: np.ndarray  # [v] of log(1 + characters)
    length_std: np.ndarray  # [v]
    class_mean: np.ndarray  # [v, classes]
    dropped: int  # table entries left out by the cap (the rarest)
    # label -> position -> [(token, share)], the most common first
    typical: dict[str, dict[str, list[list[object]]]]

    @property
    def total(self) -> float:
        return float(self.messages.sum())

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The training count of each hash (0 where absent)."""
        if len(self.hashes) == 0:
            return np.zeros(len(hashes), dtype=np.int64)
        at = np.searchsorted(self.hashes, hashes).clip(0, len(self.hashes) - 1)
        return np.where(self.hashes[at] == hashes, self.counts[at], 0).astype(np.int64)


def class_counts(rows: Rows) -> np.ndarray:
    """[rows, classes]: how many tokens of each class each row has."""
    flat = np.bincount(
        rows.owner * len(CLASSES) + rows.token_class, minlength=len(rows) * len(CLASSES)
    )
    return flat.reshape(len(rows), len(CLASSES)).astype(np.float64)


def _weighted_by_key(values: np.ndarray, keys: np.ndarray, weights: np.ndarray, v: int):
    total = np.bincount(keys, weights, minlength=v)
    safe = np.maximum(total, 1e-12)
    if values.ndim == 1:
        mean = np.bincount(keys, weights * values, minlength=v) / safe
        var = np.bincount(keys, weights * values**2, minlength=v) / safe - mean**2
        return mean, np.sqrt(np.maximum(var, 0.0))
    cols = [
        np.bincount(keys, weights * values[:, c], minlength=v) / safe
        for c in range(values.shape[1])
    ]
    return np.stack(cols, axis=1), None


def fit_stats(rows: Rows, vocab_size: int, max_entries: int) -> TemplateStats:
    """The template statistics of training rows."""
    # Each row's distinct tokens: a token twice in one message is one message holding it.
    order = np.lexsort((rows.hashes, rows.owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (rows.owner[order][1:] != rows.owner[order][:-1]) | (
        rows.hashes[order][1:] != rows.hashes[order][:-1]
    )
    kept = order[first]
    owner, flat, flat_class = rows.owner[kept], rows.hashes[kept], rows.token_class[kept]
    table, inverse = np.unique(flat, return_inverse=True)
    counts = np.bincount(inverse, rows.counts[owner], minlength=len(table)).astype(np.int64)
    v = vocab_size
    messages = np.bincount(rows.keys, rows.counts, minlength=v).astype(np.float64)
    # A message met once with a token no other message of its key holds brought novelty, in
    # the class of that token: a template whose ids are always new may still never have
    # brought a new path or user name.
    single = (counts[inverse] == 1) & (rows.counts[owner] == 1)
    pairs = np.unique(owner[single] * len(CLASSES) + flat_class[single])
    novel = np.zeros((v, len(CLASSES)))
    np.add.at(novel, (rows.keys[pairs // len(CLASSES)], pairs % len(CLASSES)), 1.0)
    weights = rows.counts.astype(np.float64)
    n_tokens = np.fromiter((len(t) for t in rows.tokens), np.float64, len(rows.tokens))
    token_mean, token_std = _weighted_by_key(n_tokens, rows.keys, weights, v)
    length_mean, length_std = _weighted_by_key(np.log1p(rows.lengths), rows.keys, weights, v)
    class_mean, _ = _weighted_by_key(class_counts(rows), rows.keys, weights, v)
    dropped = 0
    if len(table) > max_entries:
        # Keep the most common: a dropped entry is a token met a few times at most, which a
        # new event then finds unseen, nearly what its count said anyway.
        keep = np.sort(np.argsort(-counts, kind="stable")[:max_entries])
        dropped = len(table) - len(keep)
        table, counts = table[keep], counts[keep]
    return TemplateStats(
        hashes=table,
        counts=counts,
        messages=messages,
        novel=novel,
        token_mean=token_mean,
        token_std=token_std,
        length_mean=length_mean,
        length_std=length_std,
        class_mean=class_mean,
        dropped=dropped,
        typical=_typical(rows),
    )


def _typical(rows: Rows) -> dict[str, dict[str, list[list[object]]]]:
    by_position: dict[str, list[Counter[str]]] = {}
    for label, toks, count in zip(rows.labels, rows.tokens, rows.counts.tolist(), strict=True):
        counters = by_position.setdefault(label, [])
        for j, token in enumerate(toks[:TYPICAL_POSITIONS]):
            if j == len(counters):
                counters.append(Counter())
            counters[j][token[:_TYPICAL_CHARS]] += count
    messages: Counter[str] = Counter()
    for label, count in zip(rows.labels, rows.counts.tolist(), strict=True):
        messages[label] += count
    kept = {label for label, _ in messages.most_common(TYPICAL_TEMPLATES)}
    out: dict[str, dict[str, list[list[object]]]] = {}
    for label, counters in by_position.items():
        if label not in kept:
            continue
        out[label] = {}
        for j, counter in enumerate(counters):
            total = sum(counter.values())
            out[label][str(j)] = [
                [token, round(n / total, 4)] for token, n in counter.most_common(_TYPICAL_TOKENS)
            ]
    return out
