"""Template semantics for LogAnomaly (template2vec idea, Meng et al., IJCAI'19), built from the
log corpus itself: nothing is downloaded.

- A template is a MESSAGE with its variable parts masked (numbers, hex ids, addresses, paths,
  uuids); with EVENTID present there is one template per EVENTID (its most frequent form).
- Word vectors come from the corpus: a positive-PMI co-occurrence matrix of the template words,
  reduced with a truncated SVD (a count-based embedding; see Levy & Goldberg, NIPS'14, on its
  relation to word2vec).
- A template's vector is the IDF-weighted mean of its word vectors, L2-normalised, so cosine
  similarity compares templates; an unseen template close to a known one can be matched to it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sidecar.types import CONTEXT_MESSAGE_CHARS, LogEvent

__all__ = [
    "mask_message",
    "template_text",
    "template_words",
    "SemanticSpace",
    "fit_semantic_space",
    "most_common_templates",
]

_MASKS = [
    re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"),  # IPv4[:port]
    re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b"),  # IPv6
    re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.$~-]+){2,}[\\/]?"),  # paths, Windows or POSIX
    re.compile(r"\bblk_-?\d+\b"),  # HDFS block ids
    re.compile(r"\b0[xX][0-9a-fA-F]+\b"),
    re.compile(r"\b[0-9a-fA-F]{16,}\b"),  # long hex ids
    re.compile(r"[-+]?\b\d+(?:[.,:]\d+)*\b"),
]
_WORD = re.compile(r"[A-Za-z][A-Za-z]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
MASK = "<*>"


def mask_message(message: str) -> str:
    """The message's first CONTEXT_MESSAGE_CHARS with variable parts replaced by <*>."""
    text = message[:CONTEXT_MESSAGE_CHARS]
    for pattern in _MASKS:
        text = pattern.sub(MASK, text)
    return re.sub(r"(?:<\*>\s*){2,}", "<*> ", text).strip()


def template_text(event: LogEvent) -> str | None:
    """The template of an event's message as shown to people (what a saved tail keeps of it)."""
    return mask_message(event.message) if event.message else None


def template_words(template: str) -> list[str]:
    """Lower-case words of a template; camelCase is split, masks and one-letter tokens drop."""
    words: list[str] = []
    for token in _WORD.findall(template.replace(MASK, " ")):
        words.extend(part.lower() for part in _CAMEL.split(token) if len(part) > 1)
    return words


def most_common_templates(
    pairs: Iterable[tuple[str, str | None]], sample_per_key: int = 200
) -> dict[str, str]:
    """One template per key: the most frequent masked form of its messages (ties: shortest).

    Only the first `sample_per_key` messages of each key are masked: a key's wording does not
    change between its thousandth and millionth occurrence, and masking is the costly part.
    """
    seen: dict[str, Counter[str]] = {}
    for key, message in pairs:
        counts = seen.setdefault(key, Counter())
        if message and counts.total() < sample_per_key:
            counts[mask_message(message)] += 1
    return {
        key: min(counts.items(), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))[0]
        for key, counts in seen.items()
        if counts
    }


@dataclass(frozen=True, slots=True)
class SemanticSpace:
    words: tuple[str, ...]
    word_vectors: np.ndarray  # [V, d], rows L2-normalised
    idf: np.ndarray  # [V]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})

    @property
    def dim(self) -> int:
        return int(self.word_vectors.shape[1])

    def vector(self, template: str) -> np.ndarray:
        """IDF-weighted mean of known word vectors, normalised; zeros if no word is known."""
        ids = [self._index[w] for w in template_words(template) if w in self._index]
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        weights = self.idf[ids][:, None]
        mean = (self.word_vectors[ids] * weights).sum(axis=0) / weights.sum()
        norm = float(np.linalg.norm(mean))
        return (mean / norm if norm > 0 else mean).astype(np.float32)

    def vectors(self, templates: Sequence[str]) -> np.ndarray:
        if not templates:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.vector(t) for t in templates])

    def to_json(self) -> dict[str, object]:
        return {"words": list(self.words), "idf": [round(float(x), 6) for x in self.idf]}


def fit_semantic_space(
    templates: Sequence[str], corpus: Iterable[str] = (), dim: int = 32, window: int = 3
) -> SemanticSpace:
    """Word vectors from co-occurrences in `templates` plus extra `corpus` messages."""
    documents = [template_words(t) for t in templates]
    extra = [template_words(mask_message(m)) for m in corpus]
    vocab = sorted({w for doc in documents + extra for w in doc})
    if not vocab:
        return SemanticSpace((), np.zeros((0, 1), dtype=np.float32), np.zeros(0, dtype=np.float32))
    index = {w: i for i, w in enumerate(vocab)}
    v = len(vocab)
    cooc = np.zeros((v, v), dtype=np.float64)
    for doc in documents + extra:
        ids = [index[w] for w in doc]
        for i, a in enumerate(ids):
            cooc[a, a] += 1.0  # a word co-occurs with itself: keeps rare words non-zero
            for b in ids[max(0, i - window) : i]:
                cooc[a, b] += 1.0
                cooc[b, a] += 1.0
    total = cooc.sum()
    row = cooc.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((cooc * total) / (row @ row.T))
    ppmi = np.nan_to_num(np.maximum(pmi, 0.0), nan=0.0, posinf=0.0)
    u, s, _vt = np.linalg.svd(ppmi, full_matrices=False)
    k = max(1, min(dim, v))
    vectors = u[:, :k] * np.sqrt(s[:k])
    if vectors.shape[1] < dim:  # tiny corpora: pad so the model's input width is fixed
        vectors = np.pad(vectors, ((0, 0), (0, dim - vectors.shape[1])))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.where(norms > 0, vectors / np.where(norms > 0, norms, 1), vectors)
    df = Counter(w for doc in documents for w in set(doc))
    n_docs = max(1, len(documents))
    idf = np.array([math.log((1 + n_docs) / (1 + df.get(w, 0))) + 1.0 for w in vocab])
    return SemanticSpace(tuple(vocab), vectors.astype(np.float32), idf.astype(np.float32))
