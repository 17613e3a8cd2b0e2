"""LogAnomaly (Meng et al., IJCAI'19): next-key prediction from two views of the window.

- Sequential pattern: an LSTM over the semantic vectors of the window's templates, so keys
  with similar wording behave alike.
- Quantitative pattern: an LSTM over the window's running key-count vectors (step t holds how
  often each key occurred up to t). It sees "the same familiar event, many times" directly,
  which is what bursts (many failed logons in a row) look like.
Their last hidden states are concatenated and mapped to next-key logits; top-g as in DeepLog.

Template approximation: an event whose key was never seen in training gets its template from
its MESSAGE; when that template's vector is close enough to a known key's (cosine at least
`similarity_threshold`), the event is read as that key instead of being flagged blindly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sidecar.encoding.semantics import SemanticSpace, mask_message
from sidecar.encoding.vocabulary import PAD, RESERVED, UNKNOWN, Vocabulary
from sidecar.models.nextkey.core import NextKeyConfig
from sidecar.types import LogEvent, TemplateMatch

__all__ = [
    "LogAnomalyConfig",
    "LogAnomalyNet",
    "TemplateMatcher",
    "count_limits",
    "key_text",
]


@dataclass(frozen=True, slots=True)
class LogAnomalyConfig(NextKeyConfig):
    semantic_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 2
    similarity_threshold: float = 0.9


class LogAnomalyNet(nn.Module):
    def __init__(
        self, vocab_size: int, semantic_dim: int, hidden_size: int, num_layers: int, words: int
    ) -> None:
        super().__init__()
        # Fixed inputs, saved with the weights: template vectors per key id (PAD and UNKNOWN
        # are zero) and the word vectors that embed unseen templates at scoring time.
        self.register_buffer("key_vectors", torch.zeros(vocab_size, semantic_dim))
        self.register_buffer("word_vectors", torch.zeros(words, semantic_dim))
        # The most times each key occurred in one window-plus-next-event in training: the
        # simplest count invariant. A key repeating past it is a burst whatever the LSTMs say.
        self.register_buffer("count_limits", torch.zeros(vocab_size, dtype=torch.long))
        self.vocab_size = vocab_size
        self.sequential = nn.LSTM(semantic_dim, hidden_size, num_layers, batch_first=True)
        self.quantitative = nn.LSTM(vocab_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(2 * hidden_size, vocab_size)

    @classmethod
    def from_config(cls, vocab_size: int, config: LogAnomalyConfig, words: int) -> LogAnomalyNet:
        return cls(vocab_size, config.semantic_dim, config.hidden_size, config.num_layers, words)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        semantic = self.key_vectors[windows]
        counts = F.one_hot(windows, self.vocab_size).float()
        counts[..., PAD] = 0.0
        counts = counts.cumsum(dim=1)
        seq_out, _ = self.sequential(semantic)
        qty_out, _ = self.quantitative(counts)
        return self.head(torch.cat([seq_out[:, -1, :], qty_out[:, -1, :]], dim=1))


def count_limits(windows: np.ndarray, targets: np.ndarray, vocab_size: int) -> np.ndarray:
    """Per key, its largest count in any (window, next key) of the training pairs."""
    counts = (windows == targets[:, None]).sum(axis=1) + 1
    limits = np.zeros(vocab_size, dtype=np.int64)
    np.maximum.at(limits, targets, counts)
    return limits


def key_text(template: str, severity: str) -> str:
    """What a key means in words: its EVENTID's template plus its severity."""
    return f"{template} {severity}".strip()


class TemplateMatcher:
    """Encodes events to key ids, approximating unseen keys by their nearest known template."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        space: SemanticSpace,
        key_vectors: np.ndarray,
        key_templates: Sequence[str],
        threshold: float,
        cache_size: int = 10_000,
    ) -> None:
        self.vocabulary = vocabulary
        self.space = space
        self.key_vectors = key_vectors  # [vocab size, d], unit rows (zeros for reserved ids)
        self.key_templates = list(key_templates)  # indexed by key id
        self.threshold = threshold
        self._cache: OrderedDict[tuple[str, str, str], TemplateMatch] = OrderedDict()
        self._cache_size = cache_size

    def match(self, event: LogEvent) -> TemplateMatch:
        template = mask_message(event.message or "")
        cache_key = (event.event_id, event.severity, template)
        cached = self._cache.get(cache_key)
        if cached is not None:
            self._cache.move_to_end(cache_key)
            return cached
        vector = self.space.vector(key_text(template, event.severity))
        best_id, best = UNKNOWN, 0.0
        if self.vocabulary.known and np.any(vector):
            similarities = self.key_vectors[RESERVED:] @ vector
            i = int(np.argmax(similarities))
            best_id, best = RESERVED + i, float(similarities[i])
        matched = best_id if best >= self.threshold else UNKNOWN
        result = TemplateMatch(
            template=template,
            key_id=matched,
            closest_key=self.vocabulary.label_of(best_id) if best_id != UNKNOWN else None,
            closest_template=self.key_templates[best_id] if best_id != UNKNOWN else None,
            similarity=round(best, 6),
        )
        self._cache[cache_key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def encode(self, events: Sequence[LogEvent]) -> tuple[np.ndarray, dict[int, TemplateMatch]]:
        ids = self.vocabulary.encode(events)
        matches: dict[int, TemplateMatch] = {}
        for i in np.flatnonzero(ids == UNKNOWN):
            match = self.match(events[i])
            matches[int(i)] = match
            ids[i] = match.key_id
        return ids, matches
