"""Events in, detections out: the adapter between host sequences and a next-key model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sidecar.encoding.vocabulary import RESERVED, UNKNOWN, Vocabulary, key_label
from sidecar.encoding.windows import windows_with_targets
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.nextkey import NextKeyModel, NextKeyScores, score_next_keys
from sidecar.types import Detection, DetectionBatch, ExpectedKey, HostSequence, LogEvent

__all__ = ["NextKeyDetector", "REASON_UNSEEN_KEY", "REASON_NOT_IN_TOP_G"]

REASON_UNSEEN_KEY = "unseen_key"
REASON_NOT_IN_TOP_G = "not_in_top_g"


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
    ) -> None:
        self.name = name
        self.version = version
        self.vocabulary = vocabulary
        self.window_size = window_size
        self.top_g = top_g
        self._model = model
        self._device = device or torch.device("cpu")

    @classmethod
    def from_artifact(
        cls, artifact: ModelArtifact, top_g: int | None = None, device: torch.device | None = None
    ) -> NextKeyDetector:
        net = artifact.net.to(device or torch.device("cpu"))
        return cls(
            artifact.name,
            artifact.version,
            artifact.vocabulary,
            net,
            artifact.config.window_size,
            top_g if top_g is not None else artifact.config.top_g,
            device,
        )

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        h = self.window_size
        all_windows, all_targets, spans = [], [], []
        for seq in sequences:
            if not seq.events:
                continue
            context_keys = self.vocabulary.encode(seq.context[-h:])
            keys = self.vocabulary.encode(seq.events)
            windows, targets = windows_with_targets(context_keys, keys, h)
            all_windows.append(windows)
            all_targets.append(targets)
            spans.append(seq)
        if not spans:
            return DetectionBatch([], 0)
        scores = score_next_keys(
            self._model,
            np.concatenate(all_windows),
            np.concatenate(all_targets),
            self.top_g,
            device=self._device,
        )
        detections: list[Detection] = []
        offset = 0
        for seq in spans:
            n = len(seq.events)
            flagged = np.flatnonzero(scores.anomalous[offset : offset + n])
            if len(flagged):
                history = (*seq.context[-h:], *seq.events)
                base = len(history) - n
                for i in flagged:
                    detections.append(
                        self._detection(seq.events[i], history, base + int(i), scores, offset + i)
                    )
            offset += n
        return DetectionBatch(detections, len(scores))

    def _detection(
        self,
        event: LogEvent,
        history: tuple[LogEvent, ...],
        position: int,
        scores: NextKeyScores,
        row: int,
    ) -> Detection:
        h = self.window_size
        window = history[max(0, position - h) : position]
        observed_id = self.vocabulary.id_of(event.event_id, event.severity)
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
            reason=REASON_UNSEEN_KEY if observed_id == UNKNOWN else REASON_NOT_IN_TOP_G,
            score=round(1.0 - probability, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=int(scores.rank[row]),
            observed_probability=probability,
            expected=tuple(expected),
            window_size=h,
            top_g=self.top_g,
        )
