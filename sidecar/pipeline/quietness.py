"""How quiet the sidecar is on live data, in the units of the false-alarm budget (pure).

The operator sets `SIDECAR_ALERT_BUDGET` in incidents per host per day; training calibrates the
thresholds to it on held-out data (sidecar/models/calibration.py). Whether live data keeps to it is
measured here: flagged events per 10,000 events read, and incidents opened per host-day of log
time the hosts' cursors moved over, both over a rolling window of cycles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from sidecar.types import CycleReport, Detection, HostState, LogEvent

__all__ = ["QuietWindow", "Quietness", "covered_ms", "distinct_flagged"]

DAY_MS = 86_400_000
# Below one host-hour of log time a rate per host-day is mostly noise: not reported.
MIN_HOST_MS = 3_600_000


def covered_ms(previous: HostState, new: HostState, events: list[LogEvent] | None) -> int:
    """The log time a host's cursor moved over in a cycle; a host read for the first time
    covers the time from its first event read."""
    if new.cursor is None:
        return 0
    if previous.cursor is not None:
        return max(0, new.cursor.timestamp_ms - previous.cursor.timestamp_ms)
    if events:
        return max(0, new.cursor.timestamp_ms - events[0].timestamp_ms)
    return 0


def distinct_flagged(detections: Iterable[list[Detection]]) -> int:
    """Events flagged by at least one model (an event two models flag counts once)."""
    return len({(d.event.host, d.event.log_uuid) for batch in detections for d in batch})


@dataclass(frozen=True, slots=True)
class Quietness:
    events: int
    flagged: int
    incidents_opened: int
    host_ms: int

    @property
    def flagged_per_10k(self) -> float | None:
        return self.flagged / self.events * 10_000 if self.events else None

    @property
    def incidents_per_host_day(self) -> float | None:
        if self.host_ms < MIN_HOST_MS:
            return None
        return self.incidents_opened / (self.host_ms / DAY_MS)


class QuietWindow:
    """Sums of the cycles that finished within the last `seconds` (wall clock), kept as running
    totals: with a short interval a day holds tens of thousands of cycles."""

    def __init__(self, seconds: float = 86_400.0) -> None:
        self.seconds = seconds
        self._cycles: deque[tuple[float, Quietness]] = deque()
        self._total = Quietness(0, 0, 0, 0)

    def add(self, report: CycleReport, now_s: float) -> Quietness:
        cycle = Quietness(
            report.events_read,
            report.events_flagged,
            report.incidents_opened,
            report.host_ms_covered,
        )
        self._cycles.append((now_s, cycle))
        self._total = _plus(self._total, cycle, 1)
        while self._cycles and self._cycles[0][0] < now_s - self.seconds:
            self._total = _plus(self._total, self._cycles.popleft()[1], -1)
        return self._total


def _plus(total: Quietness, cycle: Quietness, sign: int) -> Quietness:
    return Quietness(
        total.events + sign * cycle.events,
        total.flagged + sign * cycle.flagged,
        total.incidents_opened + sign * cycle.incidents_opened,
        total.host_ms + sign * cycle.host_ms,
    )
