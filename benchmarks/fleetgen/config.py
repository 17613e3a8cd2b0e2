"""What a fleet is made of (FleetConfig, the presets) and the clock it runs on.

Every other module measures time in epoch milliseconds from START_MS with these constants, so
they live here, at the bottom of the import graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# 2026-03-02 is a Monday; the history starts at midnight UTC.
START_MS = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
MINUTE = 60_000
SECOND = 1_000
DAY = 24 * HOUR

INCIDENT_KINDS = (
    "brute_force",
    "unseen_event",
    "wrong_order",
    "beacon",
    "host_quiet",
    "event_storm",
)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    seed: int = 1
    hosts: int = 60
    days: int = 2  # training history, whole days from midnight
    test_hours: int = 24  # the test period that follows
    events_per_host_day: int = 1_000  # fleet average of a host's events per day (roughly)
    incidents_per_kind: int | None = None  # None: 14 per 60 hosts, at least 2

    def incidents_each(self) -> int:
        if self.incidents_per_kind is not None:
            return self.incidents_per_kind
        return max(2, round(14 * self.hosts / 60))

    @property
    def train_end_ms(self) -> int:
        return START_MS + self.days * DAY

    @property
    def test_end_ms(self) -> int:
        return self.train_end_ms + self.test_hours * HOUR


PRESETS: dict[str, FleetConfig] = {
    # The everyday benchmark: 60 hosts, 48 h of history, ~1,000 events per host-day.
    "small": FleetConfig(hosts=60, days=2, test_hours=24, events_per_host_day=1_000),
    # Issue 16's workload: 60 hosts x 48 h of history, ~13,600 events per host (~800k events).
    "issue16": FleetConfig(hosts=60, days=2, test_hours=24, events_per_host_day=6_800),
}
