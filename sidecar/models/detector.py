"""Events in, detections out: the adapter between host sequences and a next-key model."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from sidecar.calibration import grade
from sidecar.encoding.vocabulary import RESERVED, UNKNOWN, Vocabulary, key_label
from sidecar.encoding.windows import windows_for_streams
from sidecar.encoding.workflow import WorkflowSet
from sidecar.models.loganomaly import count_bursts
from sidecar.models.nextkey import NextKeyModel, NextKeyScores, score_next_keys
from sidecar.models.nextkey_calibration import NextKeyCalibration
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
# Grades of a top-g verdict are still on the calibrated scale: 50 at a p-value of 1e-4.
_DEFAULT_GRADE_THRESHOLD = 1e-4


def key_names(vocabulary: Vocabulary) -> list[tuple[str, str, str] | None]:
    """(label, EVENTID, SEVERITY) by key id, None for the reserved slots."""
    return [None] * RESERVED + [
        (vocabulary.label_of(i), *vocabulary.key_of(i))  # type: ignore[misc]
        for i in range(RESERVED, vocabulary.size)
    ]


def lay_out(
    spans: Sequence[HostSequence], h: int
) -> tuple[list[LogEvent], list[tuple[int, int, int]]]:
    """Every host's last h context events and new events in one list, with (start, first new,
    end) per host: one encode call and one windowing pass keep per-host Python work O(hosts)
    and per-event work in numpy."""
    layout: list[LogEvent] = []
    bounds = []
    for seq in spans:
        start = len(layout)
        layout.extend(seq.context[-h:])
        middle = len(layout)
        layout.extend(seq.events)
        bounds.append((start, middle, len(layout)))
    return layout, bounds


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
        # The normal workflows learned with the model, for the pipeline's anomaly summaries.
        self.workflows = workflows
        self._device = device or torch.device("cpu")
        self.encode: KeyEncoder = encoder or (lambda events: (vocabulary.encode(events), {}))
        self._key_names = key_names(vocabulary)

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        # Detections are acyclic; a cyclic-GC pass over a heap of live events costs more than
        # building them, so collection waits until the batch is done.
        with gc_paused():
            return self._detect(sequences)

    def _detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        h = self.window_size
        spans = [seq for seq in sequences if seq.events]
        if not spans:
            return DetectionBatch([], 0)
        layout, bounds = lay_out(spans, h)
        ids, all_matches = self.encode(layout)
        contexts = [ids[a:b] for a, b, _ in bounds]
        streams = [ids[b:c] for _, b, c in bounds]
        windows, targets = windows_for_streams(contexts, streams, h)
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
        detections: list[Detection] = []
        offset = 0
        for seq, (_, middle, _) in zip(spans, bounds, strict=True):
            n = len(seq.events)
            flagged = np.flatnonzero(anomalous[offset : offset + n])
            if len(flagged):
                history = (*seq.context[-h:], *seq.events)
                base = len(history) - n
                for i in flagged:
                    detections.append(
                        self._detection(
                            seq.events[i],
                            int(targets[offset + i]),
                            all_matches.get(middle + int(i)),
                            history,
                            base + int(i),
                            scores,
                            offset + int(i),
                            None if p_values is None else float(p_values[offset + int(i)]),
                            bool(bursts[offset + int(i)]),
                        )
                    )
            offset += n
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
