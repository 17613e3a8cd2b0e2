"""Regular chains: how surprising it is that an event repeats one of its key's recent events at
a steady period.

A beacon (malware calling home, a forgotten script polling a server) is a key the host logs at
a fixed period, on top of what it normally logs with that key. Its order is familiar and its
count may be too; what gives it away is the clock. For each event this module walks back
through the same key's events among the host's last `window` events and finds the longest
*chain*: earlier events of that key at the same period, each within a tolerance of where the
period puts it. A chain of m gaps whose period was set by its first gap has m - 1 confirmations;
under events of the key arriving at random at their observed rate λ, each confirmation has
probability 1 - exp(-2·tol·λ) of happening by chance, so the chain's surprise is
(m - 1)·-log(1 - exp(-2·tol·λ)) nats. A busy key confirms any period cheaply; a key that fires
a few times an hour pays dearly for each confirmation, and a beacon that dominates its key pays
about 1.7 nats per beat, so fifteen beats cost as much as a one-in-10^11 coincidence.

The tolerance is relative to the period (plus a floor for clock resolution), because beacons
jitter in proportion to their sleep. The verdict only looks at the host's last `window` events,
which every cycle has as context, so where a cycle ends never changes it.

Pure: Python lists and numpy in, numpy out. Times are epoch milliseconds.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Chain", "ChainRule", "chain_surprise", "longest_chain"]


@dataclass(frozen=True, slots=True)
class ChainRule:
    """What counts as a period and as keeping it."""

    # Periods outside these bounds are not looked for: below, repetition is a burst or a
    # loop (the sequence models' and the volume model's job); above, a host window rarely
    # spans enough beats to tell.
    min_period_ms: int = 5_000
    max_period_ms: int = 3_600_000
    # A beat may land this share of the period away from where the period puts it ...
    tolerance_share: float = 0.1
    # ... and never less than this (timestamps are often whole seconds).
    min_tolerance_ms: int = 1_000
    # Most recent same-key events tried as the chain's first gap; a beacon's previous beat is
    # among them unless more than this many other events of its key come between two beats.
    candidates: int = 4

    def tolerance(self, period_ms: float) -> float:
        return max(float(self.min_tolerance_ms), self.tolerance_share * period_ms)


@dataclass(frozen=True, slots=True)
class Chain:
    """The most surprising chain ending at one event."""

    period_ms: float
    gaps: int  # beats before the event that keep the period (the first one sets it)
    key_events: int  # events of the key in the window, the event included
    surprise: float  # nats


def _walk(times: Sequence[int], start: int, period: float, rule: ChainRule) -> tuple[int, float]:
    """Gaps in the chain that starts with times[start] -> (now) at `period`, going back through
    the sorted same-key `times` before `start`; returns (gaps, mean period)."""
    gaps, at, first = 1, times[start], times[start] + period
    while True:
        tol = rule.tolerance(period)
        target = at - period
        i = bisect_left(times, target - tol, 0, start)
        best = -1
        while i < start and times[i] <= target + tol:
            if best < 0 or abs(times[i] - target) < abs(times[best] - target):
                best = i
            i += 1
        if best < 0:
            return gaps, period
        start, at, gaps = best, times[best], gaps + 1
        period = (first - at) / gaps  # the mean keeps jitter from walking the period away


def longest_chain(now: int, earlier: Sequence[int], span_ms: int, rule: ChainRule) -> Chain | None:
    """The most surprising regular chain ending at `now`, through `earlier` (same-key times in
    the window before it, sorted); `span_ms` is the window's duration, for the key's rate."""
    if len(earlier) < 2 or span_ms <= 0:
        return None
    rate = (len(earlier) + 1) / span_ms
    best: Chain | None = None
    tried = 0
    for j in range(len(earlier) - 1, -1, -1):
        period = now - earlier[j]
        if period < rule.min_period_ms:
            continue
        if period > rule.max_period_ms or tried == rule.candidates:
            break
        tried += 1
        gaps, mean = _walk(earlier, j, float(period), rule)
        if gaps < 2:
            continue
        chance = -math.expm1(-2.0 * rule.tolerance(mean) * rate)
        surprise = (gaps - 1) * -math.log(chance) if chance > 0 else math.inf
        if best is None or surprise > best.surprise:
            best = Chain(mean, gaps, len(earlier) + 1, surprise)
    return best


def chain_surprise(
    times: Sequence[int],
    keys: Sequence[Hashable],
    first: int,
    window: int,
    rule: ChainRule,
) -> tuple[np.ndarray, list[Chain | None]]:
    """For events first..n-1 of one host (times sorted, keys alike), each one's chain among the
    `window` events before it: (surprise per event, the chain behind each)."""
    n = len(times)
    surprise = np.zeros(max(0, n - first))
    chains: list[Chain | None] = [None] * len(surprise)
    by_key: dict[Hashable, list[int]] = {}  # key -> positions in the current window
    lo = max(0, first - window)
    for p in range(lo, n):
        if p >= first:
            lo_p = p - window
            same = by_key.get(keys[p], [])
            drop = bisect_left(same, lo_p) if same else 0
            if drop:
                del same[:drop]
            if len(same) >= 2:
                chain = longest_chain(
                    times[p],
                    [times[q] for q in same],
                    times[p] - times[max(0, lo_p)],
                    rule,
                )
                if chain is not None:
                    surprise[p - first] = chain.surprise
                    chains[p - first] = chain
        by_key.setdefault(keys[p], []).append(p)
    return surprise, chains
