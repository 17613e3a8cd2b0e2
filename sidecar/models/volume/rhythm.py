"""A host group's daily rhythm: how many events its hosts log per hour of the day, and from it
how many events a silence should have held.

The rate is the group's events in an hour-of-day slot over the host-hours observed in that slot
(a host is observed from its first to its last event), so a group of 40 workstations and one
of 2 controllers each get the rate of one typical member. The expected number of events in a
span is the integral of that piecewise-constant rate over the span, which is also the Poisson
surprise of seeing none there, in nats: a silence where the group logs 130 events is
e^-130 likely under Poisson, one through the night where it logs 2 is e^-2. Real hosts are
burstier than Poisson; the held-out calibration (sidecar/models/calibration.py) measures by
how much, so the number is a ranking, and the budget sets the cut.

Pure: numpy in, numpy out. Times are epoch milliseconds, slots are hours of the day in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HOUR_MS",
    "DAY_MS",
    "SLOTS",
    "Rhythm",
    "fit_rhythm",
    "expected_events",
    "exposure",
    "crowding",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SLOTS = 24
# Host-hours a slot needs before its own rate is trusted; below, the group's mean rate
# over the day fills in (a group seen for one afternoon has no night to speak of).
_MIN_EXPOSURE_HOURS = 1.0


def exposure(first_ms: int, last_ms: int) -> np.ndarray:
    """Hours observed in each hour-of-day slot between two instants."""
    hours = np.zeros(SLOTS)
    if last_ms <= first_ms:
        return hours
    whole_days, rest = divmod(last_ms - first_ms, DAY_MS)
    hours += whole_days
    t, end = first_ms + whole_days * DAY_MS, last_ms
    while t < end:
        boundary = min(end, (t // HOUR_MS + 1) * HOUR_MS)
        hours[(t // HOUR_MS) % SLOTS] += (boundary - t) / HOUR_MS
        t = boundary
    return hours


def _cumulative(rate: np.ndarray, at_ms: np.ndarray) -> np.ndarray:
    """The integral of the daily rate from the epoch to each instant (events)."""
    day_total = float(rate.sum())
    cum = np.concatenate([[0.0], np.cumsum(rate)])
    days, within = np.divmod(at_ms.astype(np.int64), DAY_MS)
    hours = within / HOUR_MS
    slot = np.minimum(hours.astype(np.int64), SLOTS - 1)
    return days * day_total + cum[slot] + rate[slot] * (hours - slot)


def expected_events(rate: np.ndarray, start_ms: np.ndarray, end_ms: np.ndarray) -> np.ndarray:
    """Events the rate expects between each start and end (0 where end <= start)."""
    if len(start_ms) == 0:
        return np.zeros(0)
    spans = _cumulative(rate, np.asarray(end_ms)) - _cumulative(rate, np.asarray(start_ms))
    return np.maximum(spans, 0.0)


@dataclass(frozen=True, slots=True)
class Rhythm:
    """Events per host-hour by hour-of-day slot, per host group and for the whole fleet."""

    groups: dict[str, np.ndarray]
    fleet: np.ndarray

    def rate_of(self, group: str) -> np.ndarray:
        """The group's rate; a group training never saw gets the fleet's."""
        return self.groups.get(group, self.fleet)


def _rates(events: np.ndarray, hours: np.ndarray) -> np.ndarray:
    total = float(hours.sum())
    mean = float(events.sum()) / total if total > 0 else 0.0
    trusted = hours >= _MIN_EXPOSURE_HOURS
    return np.where(trusted, events / np.maximum(hours, 1e-12), mean)


def fit_rhythm(hosts: Iterable[tuple[str, np.ndarray]], group_of: Mapping[str, str]) -> Rhythm:
    """The rhythm of (host, sorted event times) pairs, hosts grouped by `group_of`."""
    events: dict[str, np.ndarray] = {}
    hours: dict[str, np.ndarray] = {}
    for host, times in hosts:
        if len(times) < 2 or times[-1] <= times[0]:
            continue  # no span observed: its events would count against no hours
        group = group_of[host]
        slots = (np.asarray(times, dtype=np.int64) // HOUR_MS) % SLOTS
        events[group] = events.get(group, np.zeros(SLOTS)) + np.bincount(slots, minlength=SLOTS)
        hours[group] = hours.get(group, np.zeros(SLOTS)) + exposure(int(times[0]), int(times[-1]))
    fleet_events = sum(events.values(), np.zeros(SLOTS))
    fleet_hours = sum(hours.values(), np.zeros(SLOTS))
    return Rhythm(
        {g: _rates(events[g], hours[g]) for g in sorted(events)},
        _rates(fleet_events, fleet_hours),
    )


def crowding(expected: np.ndarray, arrived: int | np.ndarray) -> np.ndarray:
    """The Poisson surprise (nats, the Chernoff bound of the upper tail) of `arrived` events
    where `expected` were due: k·log(k/μ) - k + μ when k > μ, else 0. A floor on μ keeps a
    slot the group never logs in from making any arrival infinitely surprising."""
    mu = np.maximum(np.asarray(expected, dtype=np.float64), 1e-9)
    k = np.broadcast_to(np.asarray(arrived, dtype=np.float64), mu.shape)
    return np.where(k > mu, k * np.log(np.maximum(k, 1e-300) / mu) - k + mu, 0.0)
