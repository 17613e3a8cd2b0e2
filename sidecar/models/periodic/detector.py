"""Events in, beacons out: the adapter between host sequences and the periodic model.

Each new event is judged on the host's last `window_size` events before it (the saved tail for
the first new ones), so a chain that straddles two cycles is judged exactly as in one.
"""

from __future__ import annotations

import numpy as np

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import key_label
from sidecar.models.calibration import Calibration, grade, least_surprise
from sidecar.models.frontend import BatchDetector
from sidecar.models.periodic.chains import Chain, ChainRule
from sidecar.models.periodic.fit import scored_chains
from sidecar.models.periodic.model import KnownPeriods
from sidecar.types import (
    Detection,
    DetectionBatch,
    HostSequence,
    LogEvent,
    ParameterDeviation,
    ParameterValue,
)

__all__ = ["PeriodicDetector", "REASON_PERIODIC"]

REASON_PERIODIC = "periodic"
# Events before a flagged one shown in its annotation: enough to see a few beats.
_SHOWN = 10


class PeriodicDetector(BatchDetector):
    def __init__(
        self,
        name: str,
        version: str,
        rule: ChainRule,
        known: KnownPeriods,
        grouping: HostGrouping,
        calibration: Calibration,
        threshold: float,
        window_size: int,
    ) -> None:
        self.name = name
        self.version = version
        self.rule = rule
        self.known = known
        self.grouping = grouping
        self.calibration = calibration
        self.threshold = threshold
        self.window_size = window_size
        # The chain surprise at which the threshold is reached, for annotations.
        self.threshold_surprise = calibration.surprise_at(threshold)

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        detections: list[Detection] = []
        scored = 0
        for seq in spans:
            history = (*seq.context[-self.window_size :], *seq.events)
            first = len(history) - len(seq.events)
            group = self.grouping.group_of(seq.host)
            surprise, chains = scored_chains(
                history, first, self.window_size, self.rule, self.known, group
            )
            scored += len(seq.events)
            p_values = self.calibration.p_values(surprise)
            floor = max(least_surprise(self.threshold), 0.0)
            for i in np.flatnonzero((p_values <= self.threshold) & (surprise > floor)):
                chain = chains[i]
                assert chain is not None
                detections.append(
                    self._detection(history, first + int(i), chain, float(p_values[i]))
                )
        return DetectionBatch(detections, scored)

    def _detection(
        self, history: tuple[LogEvent, ...], position: int, chain: Chain, p_value: float
    ) -> Detection:
        event = history[position]
        window = history[max(0, position - _SHOWN) : position]
        values = (
            ParameterValue(
                name="period_seconds",
                source="steady gap between this event and earlier events of its key",
                observed=round(chain.period_ms / 1000, 3),
                expected=0.0,
                deviation=None,
            ),
            ParameterValue(
                name="beats",
                source="earlier events of the key in step with the period",
                observed=float(chain.gaps),
                expected=0.0,
                deviation=None,
            ),
            ParameterValue(
                name="key_events_in_window",
                source=f"events of the key among the host's last {self.window_size}",
                observed=float(chain.key_events),
                expected=0.0,
                deviation=None,
            ),
        )
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=tuple(window),
            padded=_SHOWN - len(window),
            reason=REASON_PERIODIC,
            score=round(1.0 - p_value, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=0,
            observed_probability=p_value,
            expected=(),
            window_size=_SHOWN,
            top_g=0,
            parameters=ParameterDeviation(
                values=values,
                error=round(chain.surprise, 6),
                threshold=round(self.threshold_surprise, 6),
                deviating="period_seconds",
            ),
            p_value=p_value,
            grade=float(grade(np.asarray([p_value]), self.threshold)[0]),
        )
