"""Events in, silences and bursts out: the adapter between host sequences and the volume model.

Each new event is judged by the span since the host's previous event (the saved tail's last
event for the first new one) and by the run of its key among the `burst_events` events ending
at it (bursts.py), so a silence or a burst that straddles two cycles is judged exactly as in
one: the verdicts depend on events the tail always holds, never on where a cycle ended. A
host's very first event has no silence before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import key_label
from sidecar.models.calibration import Calibration, grade, least_surprise
from sidecar.models.frontend import BatchDetector
from sidecar.models.volume.bursts import Burst, KeyShares, key_bursts
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

__all__ = ["VolumeDetector", "Verdict", "REASON_SILENCE", "REASON_BURST"]

REASON_SILENCE = "silence"
REASON_BURST = "burst"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verdict's calibration and the p-value threshold the budget gives it."""

    calibration: Calibration
    threshold: float

    @property
    def surprise(self) -> float:
        """The surprise at which the threshold is reached, for annotations."""
        return self.calibration.surprise_at(self.threshold)


class VolumeDetector(BatchDetector):
    def __init__(
        self,
        name: str,
        version: str,
        rhythm: Rhythm,
        grouping: HostGrouping,
        silence: Verdict,
        burst: Verdict | None,
        shares: KeyShares,
        shown: int,
        burst_events: int,
    ) -> None:
        self.name = name
        self.version = version
        self.rhythm = rhythm
        self.grouping = grouping
        self.silence = silence
        self.burst = burst
        self.shares = shares
        self.shown = shown
        self.burst_events = burst_events if burst is not None else 0
        # The tail each host must carry: the events a burst is judged on.
        self.window_size = max(shown, self.burst_events)

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        detections: list[Detection] = []
        scored = 0
        for seq in spans:
            context = seq.context[-max(1, self.burst_events - 1) :]
            history = (*context, *seq.events)
            first = len(context)
            times = [e.timestamp_ms for e in history]
            group = self.grouping.group_of(seq.host)
            rate = self.rhythm.rate_of(group)
            scored += len(seq.events)
            found: dict[int, Detection] = {}
            # silence_surprise judges events 1..n-1; the new ones start at `first`.
            silence = np.r_[0.0, silence_surprise(rate, np.asarray(times, np.int64))][first:]
            for i in self._flagged(silence, self.silence):
                found[first + i] = self._detection(
                    history, first + i, float(silence[i]), self.silence, REASON_SILENCE, rate
                )
            if self.burst is not None:
                keys = [key_label(e.event_id, e.severity) for e in history]
                bursts, runs = key_bursts(
                    times, keys, first, self.burst_events, rate, self.shares.of(group, seq.host)
                )
                for i in self._flagged(bursts, self.burst):
                    held = found.get(first + i)
                    detection = self._detection(
                        history, first + i, float(bursts[i]), self.burst, REASON_BURST, runs[i]
                    )
                    # An event both verdicts flag keeps the rarer.
                    if held is None or (detection.p_value or 0.0) < (held.p_value or 0.0):
                        found[first + i] = detection
            detections.extend(found[i] for i in sorted(found))
        return DetectionBatch(detections, scored)

    @staticmethod
    def _flagged(surprise: np.ndarray, verdict: Verdict) -> list[int]:
        p_values = verdict.calibration.p_values(surprise)
        floor = max(least_surprise(verdict.threshold), 0.0)
        return [
            int(i) for i in np.flatnonzero((p_values <= verdict.threshold) & (surprise > floor))
        ]

    def _detection(
        self,
        history: tuple[LogEvent, ...],
        position: int,
        surprise: float,
        verdict: Verdict,
        reason: str,
        evidence: np.ndarray | Burst | None,
    ) -> Detection:
        h = self.shown
        event = history[position]
        window = history[max(0, position - h) : position]
        p_value = float(verdict.calibration.p_values(np.asarray([surprise]))[0])
        if isinstance(evidence, Burst):
            values = self._burst_values(evidence)
        else:
            assert isinstance(evidence, np.ndarray)
            values = self._silence_values(event, window[-1], evidence, surprise)
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=h - len(window),
            reason=reason,
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
                threshold=round(verdict.surprise, 6),
                deviating=values[-1].name,
            ),
            p_value=p_value,
            grade=float(grade(np.asarray([p_value]), verdict.threshold)[0]),
        )

    @staticmethod
    def _silence_values(
        event: LogEvent, before: LogEvent, rate: np.ndarray, surprise: float
    ) -> tuple[ParameterValue, ...]:
        silent_ms = event.timestamp_ms - before.timestamp_ms
        slot = (event.timestamp_ms // HOUR_MS) % SLOTS
        typical_gap = 3_600.0 / float(rate[slot]) if rate[slot] > 0 else float("inf")
        return (
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

    def _burst_values(self, run: Burst) -> tuple[ParameterValue, ...]:
        return (
            ParameterValue(
                name="burst_seconds",
                source=f"span of the key's events among the host's last {self.burst_events}",
                observed=round(run.span_ms / 1000, 3),
                expected=0.0,
                deviation=None,
            ),
            ParameterValue(
                name="events_in_burst",
                source="events of the key in that span; expected: the key's share of the "
                "host's events (its group's, as far as training saw little of the host) times "
                "the group's rhythm over it",
                observed=float(run.events),
                expected=round(run.due, 3),
                deviation=None,
            ),
        )
