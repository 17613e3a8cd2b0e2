"""Events as the content detector scores them: one row per distinct (template, text shape), and
every row's tokens end to end in flat arrays so per-token work runs in numpy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from sidecar.models.content.tokens import classes_of, shape_of, token_hashes, tokens_of

__all__ = ["Rows", "rows_of"]


@dataclass(frozen=True, slots=True)
class Rows:
    keys: np.ndarray  # [r] key ids
    labels: list[str]  # [r] the key's label (what token hashes are seeded with)
    tokens: list[list[str]]  # [r]
    lengths: np.ndarray  # [r] characters of the shape
    counts: np.ndarray  # [r] events per row
    row_of: np.ndarray  # [n] row of each event
    # Tokens of all rows end to end: [t] each
    owner: np.ndarray  # its row
    token_class: np.ndarray  # its index in CLASSES
    hashes: np.ndarray  # its (template, token) hash
    bounds: np.ndarray  # [r + 1] row r's tokens are [bounds[r], bounds[r + 1])

    def __len__(self) -> int:
        return len(self.keys)

    def of_row(self, values: np.ndarray, r: int) -> np.ndarray:
        """Row r's slice of a flat per-token array."""
        return values[self.bounds[r] : self.bounds[r + 1]]


def rows_of(keys: np.ndarray, messages: Sequence[str | None], labels: Sequence[str]) -> Rows:
    """Events (key ids, messages) as distinct rows; `labels` by key id."""
    index: dict[tuple[int, str], int] = {}
    add = index.setdefault
    # len(index) is read before setdefault inserts: a new row gets the next number.
    row_of = np.fromiter(
        (add((k, shape_of(m)), len(index)) for k, m in zip(keys.tolist(), messages, strict=True)),
        np.int64,
        len(messages),
    )
    distinct = list(index)
    r = len(distinct)
    tokens = [tokens_of(shape) for _, shape in distinct]
    row_labels = [labels[k] for k, _ in distinct]
    lengths = np.fromiter((len(t) for t in tokens), np.int64, r)
    total = int(lengths.sum())
    return Rows(
        keys=np.fromiter((k for k, _ in distinct), np.int64, r),
        labels=row_labels,
        tokens=tokens,
        lengths=np.fromiter((len(s) for _, s in distinct), np.float64, r),
        counts=np.bincount(row_of, minlength=r).astype(np.int64),
        row_of=row_of,
        owner=np.repeat(np.arange(r), lengths),
        token_class=np.fromiter(classes_of(chain.from_iterable(tokens)), np.int64, total),
        hashes=np.fromiter(
            chain.from_iterable(
                token_hashes(label, t) for label, t in zip(row_labels, tokens, strict=True)
            ),
            np.int64,
            total,
        ),
        bounds=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
    )
