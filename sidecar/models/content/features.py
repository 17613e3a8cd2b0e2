"""An event's features relative to its template's statistics (sidecar/models/content/stats.py),
so "rare for this template" is what the forest and the autoencoder see:
- unseen: tokens never seen with this template; rarest: −log of the rarest token's share;
- novelty: −log of the template's novelty rate in the class of the event's unseen token (an
  unseen path where the template never brought a new path is what a familiar key with
  unfamiliar text is, however often its ids are new);
- token count, length and each class's count against the template's mean;
- the template's own frequency and a few bits of its hash (the template among the features).
Training rows are measured leaving their own occurrence out, so a token seen once in training
is unseen to the row that holds it, as it would be to a new event.
"""

from __future__ import annotations

import zlib

import numpy as np

from sidecar.models.content.rows import Rows
from sidecar.models.content.stats import TemplateStats, class_counts
from sidecar.models.content.tokens import CLASSES

__all__ = ["FEATURES", "PER_TEMPLATE", "token_counts", "features_of"]

_KEY_BITS = 8
FEATURES = (
    "unseen",
    "rarest",
    "novelty",
    "tokens",
    "length",
    *(f"class_{c}" for c in CLASSES),
    "template_frequency",
    *(f"template_bit_{i}" for i in range(_KEY_BITS)),
)
_CLASS_CLIP = 8.0
# Features already measured against their own template (token count and length in the
# template's deviations, class counts as differences): scaling them again by their spread
# over all templates would blow up the small wobble of free-text templates into outliers.
PER_TEMPLATE = frozenset({"tokens", "length", *(f"class_{c}" for c in CLASSES)})


def token_counts(stats: TemplateStats, rows: Rows, leave_one_out: bool) -> np.ndarray:
    """[tokens] each token's training count with its template (less the row's own occurrence
    for training rows)."""
    found = stats.lookup(rows.hashes)
    return np.maximum(found - 1, 0) if leave_one_out else found


def _per_row_min(values: np.ndarray, owners: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """The least value of each row's tokens (`empty` for a row without one)."""
    out = empty.astype(np.float64).copy()
    np.minimum.at(out, owners, values)
    return out


def _key_bits(labels: list[str]) -> np.ndarray:
    crc = np.array([zlib.crc32(label.encode("utf-8", "surrogatepass")) for label in labels])
    return ((crc[:, None] >> np.arange(_KEY_BITS)) & 1).astype(np.float64)


def features_of(stats: TemplateStats, rows: Rows, counts: np.ndarray) -> np.ndarray:
    """[rows, len(FEATURES)] features of rows against the statistics of their templates."""
    r = len(rows)
    keys = rows.keys
    n = np.maximum(stats.messages[keys], 1.0)
    out = np.zeros((r, len(FEATURES)))
    unseen = counts == 0
    out[:, 0] = np.log1p(np.bincount(rows.owner, unseen, minlength=r))
    least = _per_row_min(counts.astype(np.float64), rows.owner, n)
    out[:, 1] = -np.log((least + 0.5) / (n + 1.0))
    # Novelty: the least novel class among the row's unseen tokens decides.
    owners = rows.owner[unseen]
    novel = stats.novel[keys[owners], rows.token_class[unseen]]
    rarest_rate = _per_row_min(novel, owners, np.full(r, np.inf))
    has = np.isfinite(rarest_rate)
    rate = (np.where(has, rarest_rate, 0.0) + 1.0) / (stats.messages[keys] + 2.0)
    out[:, 2] = np.where(has, -np.log(rate), 0.0)
    n_tokens = np.diff(rows.bounds).astype(np.float64)
    out[:, 3] = (n_tokens - stats.token_mean[keys]) / np.maximum(stats.token_std[keys], 1.0)
    out[:, 4] = (np.log1p(rows.lengths) - stats.length_mean[keys]) / np.maximum(
        stats.length_std[keys], 0.1
    )
    c0 = 5
    classes = class_counts(rows) - stats.class_mean[keys]
    out[:, c0 : c0 + len(CLASSES)] = classes.clip(-_CLASS_CLIP, _CLASS_CLIP)
    f = c0 + len(CLASSES)
    out[:, f] = np.log(n / max(stats.total, 1.0))
    unique, inverse = np.unique(keys, return_inverse=True)
    labels = {k: label for k, label in zip(keys.tolist(), rows.labels, strict=True)}
    out[:, f + 1 :] = _key_bits([labels[k] for k in unique.tolist()])[inverse]
    return out
