"""Events in, detections out, for models that judge window count vectors (PCA, autoencoder).

Each event is judged by the count vector of the h events ending at it, the host's saved tail
included, so windows span cycles exactly as DeepLog's do. A verdict depends only on the
window's multiset of keys, so each distinct one is scored once per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from sidecar.encoding.vocabulary import RESERVED, UNKNOWN, Vocabulary, key_label
from sidecar.encoding.windows import distinct_rows
from sidecar.models.countvector.vectors import counted_keys, key_counts
from sidecar.models.frontend import (
    REASON_UNSEEN_KEY,
    BatchDetector,
    flagged_events,
    key_names,
    windowed,
)
from sidecar.types import Detection, DetectionBatch, ExpectedKey, HostSequence, LogEvent

__all__ = [
    "CountModel",
    "CountScores",
    "CountVectorDetector",
    "REASON_COUNT_VECTOR",
    "score_count_windows",
]

REASON_COUNT_VECTOR = "count_vector"
# How many keys a detection names as deviating most from the reconstruction.
EXPECTED_KEYS = 5


class CountModel(Protocol):
    threshold: torch.Tensor  # scalar: an error above it is anomalous

    def __call__(self, counts: torch.Tensor) -> torch.Tensor:
        """Residuals [n, vocabulary size]: each window minus its reconstruction."""
        ...


@dataclass(frozen=True, slots=True)
class CountScores:
    """Per event: the error over the threshold; per distinct window: the deviating keys."""

    ratio: np.ndarray  # [n] error / threshold
    anomalous: np.ndarray  # [n] bool: unseen key, or error above the threshold
    window: np.ndarray  # [n] index of the event's distinct window
    top_ids: np.ndarray  # [u, EXPECTED_KEYS] keys by their share of the error, largest first
    top_shares: np.ndarray  # [u, EXPECTED_KEYS]

    def __len__(self) -> int:
        return len(self.ratio)


def score_count_windows(
    model: CountModel,
    windows: np.ndarray,
    targets: np.ndarray,
    vocab_size: int,
    *,
    batch_size: int = 8_192,
    device: torch.device | None = None,
) -> CountScores:
    """Scores for windows [n, h] of the keys before each event and the events' keys [n]."""
    n = len(targets)
    top = min(EXPECTED_KEYS, max(vocab_size - RESERVED, 0))
    if n == 0:
        return CountScores(
            np.empty(0),
            np.empty(0, dtype=bool),
            np.empty(0, dtype=np.int64),
            np.empty((0, top), dtype=np.int64),
            np.empty((0, top)),
        )
    unique, inverse = distinct_rows(counted_keys(windows, targets))
    device = device or torch.device("cpu")
    errors, top_ids, top_shares = [], [], []
    with torch.inference_mode():
        threshold = float(model.threshold)
        for start in range(0, len(unique), batch_size):
            counts = torch.from_numpy(key_counts(unique[start : start + batch_size], vocab_size))
            residual = model(counts.to(device)).to(torch.float64)
            squared = residual.square()
            error = squared.sum(dim=1)
            # Padding and the unknown slot are no keys to name.
            shares = squared[:, RESERVED:] / error.clamp(min=1e-300).unsqueeze(1)
            values, ids = torch.topk(shares, top, dim=1)
            errors.append(error.cpu().numpy())
            top_ids.append(ids.cpu().numpy() + RESERVED)
            top_shares.append(values.cpu().numpy())
    ratio = np.concatenate(errors)[inverse] / threshold
    anomalous = (targets == UNKNOWN) | (ratio > 1.0)
    return CountScores(
        ratio, anomalous, inverse, np.concatenate(top_ids), np.concatenate(top_shares)
    )


class CountVectorDetector(BatchDetector):
    """PCA's and the autoencoder's verdicts: the window's key counts against what the model
    reconstructs of them."""

    def __init__(
        self,
        name: str,
        version: str,
        vocabulary: Vocabulary,
        model: CountModel,
        window_size: int,
        device: torch.device | None = None,
        batch_size: int = 8_192,
    ) -> None:
        self.name = name
        self.version = version
        self.vocabulary = vocabulary
        self.model = model
        self.window_size = window_size
        self.batch_size = batch_size
        self._device = device or torch.device("cpu")
        self._key_names = key_names(vocabulary)

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        h = self.window_size
        # The counted window holds the event and the h-1 before it; the tail feeds those.
        batch = windowed(spans, h, lambda events: (self.vocabulary.encode(events), {}))
        targets = batch.targets
        scores = score_count_windows(
            self.model,
            batch.windows,
            targets,
            self.vocabulary.size,
            batch_size=self.batch_size,
            device=self._device,
        )
        detections = [
            self._detection(
                f.event, int(targets[f.row]) == UNKNOWN, f.history, f.position, scores, f.row
            )
            for f in flagged_events(batch, scores.anomalous, h)
        ]
        return DetectionBatch(detections, len(scores))

    def _detection(
        self,
        event: LogEvent,
        unseen: bool,
        history: tuple[LogEvent, ...],
        position: int,
        scores: CountScores,
        row: int,
    ) -> Detection:
        counted = self.window_size - 1
        window = history[max(0, position - counted) : position]
        names = self._key_names
        distinct = scores.window[row]
        # `probability` of an expected key here is its share of the window's squared error
        # (0..1, the shares of all keys sum to 1): the keys whose counts the model could least
        # reconcile with normal windows, too many or too few, come first.
        expected = tuple(
            ExpectedKey(*names[key_id], share)
            for key_id, share in zip(
                scores.top_ids[distinct].tolist(), scores.top_shares[distinct].tolist(), strict=True
            )
            if names[key_id] is not None and share > 0.0
        )
        ratio = float(scores.ratio[row])
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=counted - len(window),
            reason=REASON_UNSEEN_KEY if unseen else REASON_COUNT_VECTOR,
            # The window's error over the model's threshold: above 1 is anomalous. An unseen
            # key is anomalous whatever its window's error, so it scores at least 1.
            score=round(max(ratio, 1.0) if unseen else ratio, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=0,
            observed_probability=0.0,
            expected=expected,
            window_size=self.window_size,
            top_g=0,
        )
