"""Events in, out-of-order sessions out: the adapter between host sequences and the sessions
model.

Each new event's links are looked for among the host's last `window_size` events before it
(the saved tail for the first new ones), so a session that straddles two cycles is judged
exactly as in one.
"""

from __future__ import annotations

import numpy as np

from sidecar.models.calibration import Calibration, grade
from sidecar.models.frontend import BatchDetector
from sidecar.models.sessions.links import identifiers, links
from sidecar.models.sessions.model import LinkCounts, worst
from sidecar.types import (
    Detection,
    DetectionBatch,
    ExpectedKey,
    HostSequence,
    LogEvent,
    ParameterDeviation,
    ParameterValue,
)

__all__ = ["SessionsDetector", "REASON_SESSION_ORDER"]

REASON_SESSION_ORDER = "session_order"
# Events before a flagged one shown in its annotation.
_SHOWN = 10
# Keys shown as what usually follows the linked key.
_EXPECTED = 3


def _split(key: str) -> tuple[str, str]:
    event_id, slash, severity = key.rpartition("/")
    return (event_id, severity) if slash else (key, "")


class SessionsDetector(BatchDetector):
    def __init__(
        self,
        name: str,
        version: str,
        counts: LinkCounts,
        calibration: Calibration,
        threshold: float,
        window_size: int,
    ) -> None:
        self.name = name
        self.version = version
        self.counts = counts
        self.calibration = calibration
        self.threshold = threshold
        self.window_size = window_size
        # The link surprise at which the threshold is reached, for annotations.
        self.threshold_surprise = calibration.surprise_at(threshold)

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        detections: list[Detection] = []
        scored = 0
        for seq in spans:
            history = (*seq.context[-self.window_size :], *seq.events)
            first = len(history) - len(seq.events)
            observed = links(history, first, self.window_size)
            surprise = np.fromiter(
                (worst(self.counts, key, found) for key, found in observed),
                np.float64,
                len(observed),
            )
            scored += len(seq.events)
            p_values = self.calibration.p_values(surprise)
            # No least_surprise floor here: a link's surprise is one key's improbability after
            # another, not the odds of a whole run, so the calibrated p-value alone decides.
            for i in np.flatnonzero((p_values <= self.threshold) & (surprise > 0)):
                key, found = observed[i]
                detections.append(
                    self._detection(
                        history, first + int(i), key, found, float(surprise[i]), float(p_values[i])
                    )
                )
        return DetectionBatch(detections, scored)

    def _detection(
        self,
        history: tuple[LogEvent, ...],
        position: int,
        key: str,
        found: list[str | None],
        surprise: float,
        p_value: float,
    ) -> Detection:
        event = history[position]
        window = history[max(0, position - _SHOWN) : position]
        ids = identifiers(event.message)
        worst_at = max(range(len(found)), key=lambda i: self.counts.surprise(key, found[i]))
        linked = found[worst_at]
        probability = float(np.exp(-surprise))
        expected = tuple(
            ExpectedKey(k, *_split(k), round(share, 6))
            for k, share in self.counts.followers(linked, _EXPECTED)
        )
        via = ids[worst_at]
        how = (
            f"identifier {via} shared with an earlier event"
            if linked is not None
            else f"identifier {via}, new among the host's last {self.window_size} events"
        )
        values = (
            ParameterValue(
                name="linked_by",
                source=how,
                observed=None,
                expected=0.0,
                deviation=None,
            ),
            ParameterValue(
                name="link_probability",
                source=f"share of events after {linked or 'a new identifier'} that are {key}",
                observed=round(probability, 9),
                expected=round(expected[0].probability, 6) if expected else 0.0,
                deviation=None,
            ),
        )
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=_SHOWN - len(window),
            reason=REASON_SESSION_ORDER,
            score=round(1.0 - p_value, 6),
            observed_key=key,
            observed_rank=0,
            observed_probability=probability,
            expected=expected,
            window_size=_SHOWN,
            top_g=0,
            parameters=ParameterDeviation(
                values=values,
                error=round(surprise, 6),
                threshold=round(self.threshold_surprise, 6),
                deviating="link_probability",
            ),
            p_value=p_value,
            grade=float(grade(np.asarray([p_value]), self.threshold)[0]),
        )
