"""Events in, detections out: the adapter between host sequences and a next-key model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from sidecar.encoding.vocabulary import RESERVED, UNKNOWN, Vocabulary, key_label
from sidecar.encoding.windows import windows_with_targets
from sidecar.models.loganomaly import count_bursts
from sidecar.models.nextkey import NextKeyModel, NextKeyScores, score_next_keys
from sidecar.types import (
    Detection,
    DetectionBatch,
    ExpectedKey,
    HostSequence,
    LogEvent,
    TemplateMatch,
)

# Events -> key ids, plus how unseen keys were read (LogAnomaly's template approximation).
KeyEncoder = Callable[[Sequence[LogEvent]], tuple[np.ndarray, dict[int, TemplateMatch]]]

__all__ = ["NextKeyDetector", "REASON_UNSEEN_KEY", "REASON_NOT_IN_TOP_G"]

REASON_UNSEEN_KEY = "unseen_key"
REASON_NOT_IN_TOP_G = "not_in_top_g"
REASON_COUNT = "count_anomaly"
REASON_IMPROBABLE = "improbable"


class NextKeyDetector:
    """Scores every event of every sequence in one batched pass (all hosts together)."""

    def __init__(
        self,
        name: str,
        version: str,
        vocabulary: Vocabulary,
        model: NextKeyModel,
        window_size: int,
        top_g: int,
        device: torch.device | None = None,
        encoder: KeyEncoder | None = None,
        batch_size: int = 4_096,
        count_limits: np.ndarray | None = None,
        min_probability: float = 0.0,
    ) -> None:
        self.name = name
        self.version = version
        self.vocabulary = vocabulary
        self.window_size = window_size
        self.top_g = top_g
        self.model = model
        self.batch_size = batch_size
        self.count_limits = count_limits
        self.min_probability = min_probability
        self._device = device or torch.device("cpu")
        self.encode: KeyEncoder = encoder or (lambda events: (vocabulary.encode(events), {}))

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        h = self.window_size
        all_windows, all_targets, spans = [], [], []
        for seq in sequences:
            if not seq.events:
                continue
            context_keys, _ = self.encode(seq.context[-h:])
            keys, matches = self.encode(seq.events)
            windows, targets = windows_with_targets(context_keys, keys, h)
            all_windows.append(windows)
            all_targets.append(targets)
            spans.append((seq, keys, matches))
        if not spans:
            return DetectionBatch([], 0)
        windows, targets = np.concatenate(all_windows), np.concatenate(all_targets)
        scores = score_next_keys(
            self.model,
            windows,
            targets,
            self.top_g,
            batch_size=self.batch_size,
            device=self._device,
        )
        bursts = np.zeros(len(targets), dtype=bool)
        if self.count_limits is not None:
            bursts = count_bursts(windows, targets, self.count_limits) & (targets != UNKNOWN)
        improbable = (scores.probability < self.min_probability) & (targets != UNKNOWN)
        anomalous = scores.anomalous | bursts | improbable
        detections: list[Detection] = []
        offset = 0
        for seq, keys, matches in spans:
            n = len(seq.events)
            flagged = np.flatnonzero(anomalous[offset : offset + n])
            if len(flagged):
                history = (*seq.context[-h:], *seq.events)
                base = len(history) - n
                for i in flagged:
                    detections.append(
                        self._detection(
                            seq.events[i],
                            int(keys[i]),
                            matches.get(int(i)),
                            history,
                            base + int(i),
                            scores,
                            offset + int(i),
                        )
                    )
            offset += n
        return DetectionBatch(detections, len(scores))

    def _reason(self, observed_id: int, scores: NextKeyScores, row: int) -> str:
        if observed_id == UNKNOWN:
            return REASON_UNSEEN_KEY
        if scores.anomalous[row]:
            return REASON_NOT_IN_TOP_G
        if scores.probability[row] < self.min_probability:
            return REASON_IMPROBABLE
        return REASON_COUNT

    def _detection(
        self,
        event: LogEvent,
        observed_id: int,
        approximation: TemplateMatch | None,
        history: tuple[LogEvent, ...],
        position: int,
        scores: NextKeyScores,
        row: int,
    ) -> Detection:
        h = self.window_size
        window = history[max(0, position - h) : position]
        expected = []
        for key_id, prob in zip(scores.top_ids[row], scores.top_probs[row], strict=True):
            key = self.vocabulary.key_of(int(key_id)) if key_id >= RESERVED else None
            if key is not None:
                expected.append(
                    ExpectedKey(self.vocabulary.label_of(int(key_id)), key[0], key[1], float(prob))
                )
        probability = float(scores.probability[row])
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=h - len(window),
            reason=self._reason(observed_id, scores, row),
            score=round(1.0 - probability, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=int(scores.rank[row]),
            observed_probability=probability,
            expected=tuple(expected),
            window_size=h,
            top_g=self.top_g,
            approximation=approximation,
        )
