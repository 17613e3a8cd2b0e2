"""Events in, silences out: the adapter between host sequences and the volume model.

Each new event is judged by the span since the host's previous event (the saved tail's last
event for the first new one), so a silence that straddles two cycles is judged exactly as in
one: the verdict depends on two timestamps, never on where a cycle ended. A host's very first
event has no silence before it and is judged as none.
"""

from __future__ import annotations

import numpy as np

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import key_label
from sidecar.models.calibration import Calibration, grade
from sidecar.models.frontend import BatchDetector
from sidecar.models.volume.fit import silence_surprise
from sidecar.models.volume.rhythm import HOUR_MS, SLOTS, Rhythm
from sidecar.types import (
    Detection,
    DetectionBatch,
    HostSequence,
    LogEvent,
    ParameterDeviation,
    ParameterValue,
)

__all__ = ["VolumeDetector", "REASON_SILENCE"]

REASON_SILENCE = "silence"


class VolumeDetector(BatchDetector):
    def __init__(
        self,
        name: str,
        version: str,
        rhythm: Rhythm,
        grouping: HostGrouping,
        calibration: Calibration,
        threshold: float,
        window_size: int,
    ) -> None:
        self.name = name
        self.version = version
        self.rhythm = rhythm
        self.grouping = grouping
        self.calibration = calibration
        self.threshold = threshold
        self.window_size = window_size
        # The silence (expected events) at which the threshold is reached, for annotations.
        self.threshold_surprise = calibration.surprise_at(threshold)

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        detections: list[Detection] = []
        scored = 0
        for seq in spans:
            previous = seq.context[-1:]
            times = np.fromiter(
                (e.timestamp_ms for e in (*previous, *seq.events)),
                np.int64,
                len(previous) + len(seq.events),
            )
            rate = self.rhythm.rate_of(self.grouping.group_of(seq.host))
            surprise = silence_surprise(rate, times)
            if not previous:  # the host's first event ends no silence
                surprise = np.r_[0.0, surprise]
            scored += len(seq.events)
            p_values = self.calibration.p_values(surprise)
            for i in np.flatnonzero((p_values <= self.threshold) & (surprise > 0)):
                history = (*seq.context[-self.window_size :], *seq.events)
                position = len(history) - len(seq.events) + int(i)
                detections.append(
                    self._detection(history, position, rate, float(surprise[i]), float(p_values[i]))
                )
        return DetectionBatch(detections, scored)

    def _detection(
        self,
        history: tuple[LogEvent, ...],
        position: int,
        rate: np.ndarray,
        surprise: float,
        p_value: float,
    ) -> Detection:
        h = self.window_size
        event = history[position]
        window = history[max(0, position - h) : position]
        silent_ms = event.timestamp_ms - window[-1].timestamp_ms
        slot = (event.timestamp_ms // HOUR_MS) % SLOTS
        typical_gap = 3_600.0 / float(rate[slot]) if rate[slot] > 0 else float("inf")
        values = (
            ParameterValue(
                name="silence_seconds",
                source="time since the host's previous event",
                observed=round(silent_ms / 1000, 3),
                expected=round(min(typical_gap, 86_400.0), 3),
                deviation=None,
            ),
            ParameterValue(
                name="events_expected",
                source="events the host's group logs in such a span at these hours",
                observed=0.0,
                expected=round(surprise, 3),
                deviation=None,
            ),
        )
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=h - len(window),
            reason=REASON_SILENCE,
            score=round(1.0 - p_value, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=0,
            observed_probability=p_value,
            expected=(),
            window_size=h,
            top_g=0,
            parameters=ParameterDeviation(
                values=values,
                error=round(surprise, 6),
                threshold=round(self.threshold_surprise, 6),
                deviating="events_expected",
            ),
            p_value=p_value,
            grade=float(grade(np.asarray([p_value]), self.threshold)[0]),
        )
