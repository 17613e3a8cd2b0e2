"""Events in, detections out: the adapter between host sequences and a next-key model."""

from __future__ import annotations

import numpy as np
import torch

from sidecar.encoding.vocabulary import UNKNOWN, Vocabulary, key_label
from sidecar.models.calibration import grade
from sidecar.models.frontend import (
    REASON_UNSEEN_KEY,
    BatchDetector,
    KeyEncoder,
    flagged_events,
    key_names,
    windowed,
)
from sidecar.models.nextkey.calibration import NextKeyCalibration
from sidecar.models.nextkey.core import NextKeyModel, NextKeyScores, count_bursts, score_next_keys
from sidecar.types import (
    Detection,
    DetectionBatch,
    ExpectedKey,
    HostSequence,
    LogEvent,
    TemplateMatch,
)
from sidecar.workflows.learn import WorkflowSet

__all__ = ["NextKeyDetector", "REASON_UNSEEN_KEY", "REASON_NOT_IN_TOP_G", "REASON_COUNT"]

REASON_NOT_IN_TOP_G = "not_in_top_g"
REASON_COUNT = "count_anomaly"
REASON_IMPROBABLE = "improbable"
# Grades of a top-g verdict are still on the calibrated scale: 50 at a p-value of 1e-4.
_DEFAULT_GRADE_THRESHOLD = 1e-4


class NextKeyDetector(BatchDetector):
    """DeepLog's and LogAnomaly's verdicts: the observed key against the model's next-key
    distribution, calibrated or top-g, plus LogAnomaly's count bursts."""

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
        workflows: WorkflowSet | None = None,
        calibration: NextKeyCalibration | None = None,
        threshold: float | None = None,
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
        # With a calibration and a threshold the verdict is calibrated (p-value at or below the
        # threshold); without, it is the papers' top-g rule.
        self.calibration = calibration
        self.threshold = threshold
        self.workflows = workflows
        self._device = device or torch.device("cpu")
        self.encode: KeyEncoder = encoder or (lambda events: (vocabulary.encode(events), {}))
        self._key_names = key_names(vocabulary)

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        h = self.window_size
        batch = windowed(spans, h, self.encode)
        windows, targets = batch.windows, batch.targets
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
        p_values = None
        if self.calibration is not None:
            p_values = self.calibration.p_values(targets, scores.probability, bursts)
        if p_values is not None and self.threshold is not None:
            anomalous = (p_values <= self.threshold) | bursts | improbable | (targets == UNKNOWN)
        else:
            anomalous = scores.anomalous | bursts | improbable
        detections = [
            self._detection(
                f.event,
                int(targets[f.row]),
                f.match,
                f.history,
                f.position,
                scores,
                f.row,
                None if p_values is None else float(p_values[f.row]),
                bool(bursts[f.row]),
            )
            for f in flagged_events(batch, anomalous, h)
        ]
        return DetectionBatch(detections, len(scores))

    def _reason(self, observed_id: int, scores: NextKeyScores, row: int, burst: bool) -> str:
        if observed_id == UNKNOWN:
            return REASON_UNSEEN_KEY
        if burst:
            return REASON_COUNT
        if self.threshold is None and scores.anomalous[row]:
            return REASON_NOT_IN_TOP_G
        return REASON_IMPROBABLE

    def _detection(
        self,
        event: LogEvent,
        observed_id: int,
        approximation: TemplateMatch | None,
        history: tuple[LogEvent, ...],
        position: int,
        scores: NextKeyScores,
        row: int,
        p_value: float | None = None,
        burst: bool = False,
    ) -> Detection:
        h = self.window_size
        window = history[max(0, position - h) : position]
        names = self._key_names
        expected = tuple(
            ExpectedKey(*names[key_id], prob)
            for key_id, prob in zip(
                scores.top_ids[row].tolist(), scores.top_probs[row].tolist(), strict=True
            )
            if names[key_id] is not None
        )
        probability = float(scores.probability[row])
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=h - len(window),
            reason=self._reason(observed_id, scores, row, burst),
            score=round(1.0 - probability, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=int(scores.rank[row]),
            observed_probability=probability,
            expected=expected,
            window_size=h,
            top_g=self.top_g,
            approximation=approximation,
            p_value=p_value,
            grade=None if p_value is None else self._grade(p_value),
        )

    def _grade(self, p_value: float) -> float:
        threshold = self.threshold if self.threshold is not None else _DEFAULT_GRADE_THRESHOLD
        return float(grade(np.asarray([p_value]), threshold)[0])
