"""The sessions model: the order of events that share an identifier, inside a host's
interleaved stream (links from sidecar/models/sessions/links.py), calibrated like every other
model.

Training counts, fleet-wide, how often each key follows each key along one identifier (and how
often a key is the first one an identifier shows in a window). An event's surprise is
-log P(key | linked key), the worst over its identifiers, with the link counts smoothed towards
the key's overall frequency so a rare but familiar key after a rare predecessor is not
maximal. A logoff whose logon ID just logged on, a handle closed after it was opened, are
ordinary; special privileges for a logon ID no logon announced, or a session logged backwards,
are orders the fleet never showed. Keys training never saw are left to the sequence models,
which report them as unseen; events without identifiers are not scored.

Counts are JSON in the manifest (only the pairs seen); the network is empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from sidecar.models.base import JsonConfig

__all__ = ["SessionsConfig", "SessionsNet", "LinkCounts", "START", "worst"]

# The link of an identifier new in the window, as counted and stored.
START = ""
# Weight of the key's overall frequency in a link's smoothed probability, in events.
_PRIOR_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class SessionsConfig(JsonConfig):
    # The host's last events an identifier's previous event is looked for in (the tail every
    # cycle carries).
    window_size: int = 64


class LinkCounts:
    """How often each key followed each linked key (START: none) in training."""

    __slots__ = ("pairs", "keys", "_totals", "_events")

    def __init__(self, pairs: Mapping[tuple[str, str], int], keys: Mapping[str, int]) -> None:
        self.pairs = dict(pairs)
        self.keys = dict(keys)
        self._totals: dict[str, int] = {}
        for (linked, _key), n in self.pairs.items():
            self._totals[linked] = self._totals.get(linked, 0) + n
        self._events = sum(self.keys.values())

    def knows(self, key: str) -> bool:
        return key in self.keys

    def surprise(self, key: str, linked: str | None) -> float:
        """-log P(key | linked key), nats."""
        prior = (self.keys.get(key, 0) + 1) / (self._events + len(self.keys) + 1)
        source = START if linked is None else linked
        seen = self.pairs.get((source, key), 0)
        total = self._totals.get(source, 0)
        return -math.log((seen + _PRIOR_WEIGHT * prior) / (total + _PRIOR_WEIGHT))

    def followers(self, linked: str | None, top: int) -> list[tuple[str, float]]:
        """The keys that most often followed `linked` along an identifier, with their share."""
        source = START if linked is None else linked
        total = self._totals.get(source, 0)
        if not total:
            return []
        seen = sorted(((n, key) for (a, key), n in self.pairs.items() if a == source), reverse=True)
        return [(key, n / total) for n, key in seen[:top]]

    @classmethod
    def count(cls, observed: Iterable[tuple[str, list[str | None]]]) -> LinkCounts:
        pairs: dict[tuple[str, str], int] = {}
        keys: dict[str, int] = {}
        for one in observed:
            tally(one, pairs, keys)
        return cls(pairs, keys)

    @classmethod
    def merged(cls, parts: Iterable[LinkCounts]) -> LinkCounts:
        pairs: dict[tuple[str, str], int] = {}
        keys: dict[str, int] = {}
        for part in parts:
            for pair, n in part.pairs.items():
                pairs[pair] = pairs.get(pair, 0) + n
            for key, n in part.keys.items():
                keys[key] = keys.get(key, 0) + n
        return cls(pairs, keys)

    def to_json(self) -> dict[str, object]:
        return {
            "keys": dict(sorted(self.keys.items())),
            "pairs": [[a, b, n] for (a, b), n in sorted(self.pairs.items())],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LinkCounts:
        keys = data["keys"]
        pairs = data["pairs"]
        assert isinstance(keys, dict) and isinstance(pairs, list)
        return cls(
            {(str(a), str(b)): int(n) for a, b, n in pairs},
            {str(k): int(n) for k, n in keys.items()},
        )


class SessionsNet(nn.Module):
    """No parameters: the model is its counts (manifest JSON)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def tally(
    observed: tuple[str, list[str | None]],
    pairs: dict[tuple[str, str], int],
    keys: dict[str, int],
) -> None:
    """Count one event (its key and the links of its identifiers) into `pairs` and `keys`."""
    key, found = observed
    keys[key] = keys.get(key, 0) + 1
    for linked in found:
        pair = (START if linked is None else linked, key)
        pairs[pair] = pairs.get(pair, 0) + 1


def worst(counts: LinkCounts, key: str, found: list[str | None]) -> float:
    """An event's surprise: its least likely link; 0 without identifiers or for a key training
    never saw (the sequence models' verdict)."""
    if not found or not counts.knows(key):
        return 0.0
    return max(counts.surprise(key, linked) for linked in found)
