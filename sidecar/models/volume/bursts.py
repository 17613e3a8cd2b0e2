"""Bursts: a key the host logs far faster than its share of the group's rhythm allows.

A storm of one familiar event (a retry loop, a handle leak, a flood of connections) keeps the
order models quiet: every event is expected after the one before it. What gives it away is
the rate. For each event, the events of its key among the host's last `window` events are
its *run*: n events from the first of them to it. The group's rhythm (rhythm.py) and the key's
share of the group's events in training say how many events of that key the span should hold
(μ); the burst's surprise is the Poisson crowding of the n - 1 arrivals after the first where
μ were due (rhythm.crowding). Judging the key and not the host keeps ordinary busy moments
(a file copy's open-read-close triplets, a reboot's service starts) apart from a storm: their
keys take turns, so no one key is crowded.

Three guards keep the verdict on the storm itself. A run needs at least a quarter of the
window (fewer events say little about a rate). The event must keep the run's pace: its own gap
to the previous event of its key at most _PACE times the median gap of the run's last quarter.
And the surprise is the lesser of the whole run's crowding and its last quarter's, so the
ordinary events of that key after a storm, which keep their own slower pace, do not inherit
the storm's crowding while it is still in their window.

Pure: numpy and lists in, numpy out. Times are epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sidecar.models.volume.rhythm import crowding, expected_events

__all__ = ["HOST_PRIOR_EVENTS", "KeyShares", "Burst", "key_bursts"]

# A host's own key counts weigh as much against its group's shares as this many events: one
# burst window's worth, so a host is judged as itself once training saw a few windows of it.
HOST_PRIOR_EVENTS = 64
# An event keeps a burst's pace when its own gap is at most this many times the run's recent
# mean gap (jittered bursts, such as password guessing, vary by about that much).
_PACE = 3


@dataclass(frozen=True, slots=True)
class KeyShares:
    """Each key's share of a host group's events in training, of the fleet's, and of each
    host's own.

    Host names often say nothing of a host's role (host-017, ip-10-0-3-7), and then one group
    holds domain controllers and workstations alike: a controller's ordinary run of Kerberos
    tickets is a storm next to the group's share. So a host training saw is judged by its own
    shares, shrunk towards its group's by HOST_PRIOR_EVENTS (a host with a few events in
    training is judged as its group, one with thousands as itself), and never below its
    group's: the host's own counts excuse the keys it logs more of, they do not make the keys
    it rarely logs a storm when they come in the group's measure."""

    groups: Mapping[str, Mapping[str, int]]
    fleet: Mapping[str, int]
    hosts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @classmethod
    def count(
        cls,
        groups: Mapping[str, Mapping[str, int]],
        hosts: Mapping[str, Mapping[str, int]] | None = None,
    ) -> KeyShares:
        fleet: dict[str, int] = {}
        for keys in groups.values():
            for key, n in keys.items():
                fleet[key] = fleet.get(key, 0) + n
        own = {h: dict(k) for h, k in (hosts or {}).items()}
        return cls({g: dict(k) for g, k in groups.items()}, fleet, own)

    def of(self, group: str, host: str | None = None) -> Callable[[str], float]:
        """Key -> its share of the host's events: the group's (the fleet's for a group
        training never saw), where a key never seen counts as one event so its share is small
        but not zero; blended with the host's own counts when training saw the host."""
        counts = self.groups.get(group, self.fleet)
        total = sum(counts.values()) + 1
        own = self.hosts.get(host) if host is not None else None
        if not own:
            return lambda key: (counts.get(key, 0) + 1) / total
        weight = sum(own.values()) + HOST_PRIOR_EVENTS

        def share(key: str) -> float:
            group = (counts.get(key, 0) + 1) / total
            # Never below the group's: a host's own counts excuse what it logs more than its
            # group; a key it rarely logged keeps the group's measure (a storm of it is one).
            return max(group, (own.get(key, 0) + HOST_PRIOR_EVENTS * group) / weight)

        return share

    def to_json(self) -> dict[str, dict[str, int]]:
        return {g: dict(sorted(k.items())) for g, k in sorted(self.groups.items())}

    def hosts_json(self) -> dict[str, dict[str, int]]:
        return {h: dict(sorted(k.items())) for h, k in sorted(self.hosts.items())}

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Mapping[str, int]],
        hosts: Mapping[str, Mapping[str, int]] | None = None,
    ) -> KeyShares:
        def parsed(table: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
            return {str(g): {str(k): int(n) for k, n in keys.items()} for g, keys in table.items()}

        return cls.count(parsed(data), parsed(hosts or {}))


@dataclass(frozen=True, slots=True)
class Burst:
    """The run behind one event's burst surprise."""

    events: int  # events of the key in the window, the event included
    span_ms: int  # from the run's first event to this one
    due: float  # events of the key the rhythm expects in that span


def key_bursts(
    times: Sequence[int],
    keys: Sequence[str],
    first: int,
    window: int,
    rate: np.ndarray,
    share: Callable[[str], float],
) -> tuple[np.ndarray, list[Burst | None]]:
    """Burst surprise of events first..n-1 of one host (times sorted, keys alike), each judged
    on the `window` events ending at it; `share` gives each key's share of the group's events."""
    n = len(times)
    surprise = np.zeros(max(0, n - first))
    runs: list[Burst | None] = [None] * len(surprise)
    least = max(2, window // 4)
    by_key: dict[str, list[int]] = {}
    # Runs worth judging, gathered first so the rhythm's integrals are taken in one pass.
    at: list[int] = []
    starts: list[int] = []
    recent_starts: list[int] = []
    sizes: list[int] = []
    shares: list[float] = []
    for p in range(max(0, first - window + 1), n):
        same = by_key.setdefault(keys[p], [])
        same.append(p)
        if p < first:
            continue
        drop = 0
        while same[drop] <= p - window:
            drop += 1
        if drop:
            del same[:drop]
        if len(same) < least:
            continue
        recent = [times[q] for q in same[-least:]]
        if times[p] - times[same[-2]] > _PACE * float(np.median(np.diff(recent))):
            continue
        at.append(p)
        starts.append(times[same[0]])
        recent_starts.append(recent[0])
        sizes.append(len(same))
        shares.append(share(keys[p]))
    if not at:
        return surprise, runs
    ends = np.asarray([times[p] for p in at], dtype=np.int64)
    share_of = np.asarray(shares)
    due = share_of * expected_events(rate, np.asarray(starts, dtype=np.int64), ends)
    due_recent = share_of * expected_events(rate, np.asarray(recent_starts, dtype=np.int64), ends)
    whole = crowding(due, np.asarray(sizes) - 1)
    last_quarter = crowding(due_recent, least - 1)
    for i, p in enumerate(at):
        surprise[p - first] = min(float(whole[i]), float(last_quarter[i]))
        runs[p - first] = Burst(sizes[i], int(ends[i] - starts[i]), float(due[i]))
    return surprise, runs
