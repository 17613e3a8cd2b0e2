"""The periodic model: a key a host suddenly logs at a steady period it does not normally keep
(a beacon calling home, a script polling a server), judged by the chains of
sidecar/models/periodic/chains.py and calibrated like every other model.

Real fleets are full of legitimate clocks: monitoring heartbeats, replication, health checks.
Training learns them as *known periods*: for each host group and key, the periods at which
chains in the fitting part of the training range were too regular to be chance. A chain at a
known period (within one 10% step either side) is not a verdict; one at a period the group
never kept for that key is scored by its surprise, and the held-out slice of the training range
gives its p-value. A beacon that copies a legitimate heartbeat's key and period exactly is not
found this way; that is the trade for staying quiet about every heartbeat in the fleet.

The network holds the chain rule (so a saved model scores as it was calibrated); the known
periods are JSON in the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from sidecar.models.base import JsonConfig
from sidecar.models.periodic.chains import ChainRule

__all__ = ["PeriodicConfig", "PeriodicNet", "KnownPeriods", "period_step"]

# Known periods are remembered in steps of 10%, the chain tolerance's width.
_STEP = math.log(1.1)


def period_step(period_ms: float) -> int:
    return round(math.log(max(period_ms, 1.0)) / _STEP)


@dataclass(frozen=True, slots=True)
class PeriodicConfig(JsonConfig):
    # The host's last events a chain is looked for in (the tail every cycle carries): at a
    # few dozen events an hour it spans an hour or two, a dozen beats of a two-minute beacon.
    window_size: int = 64
    # How hosts are grouped (sidecar/encoding/hostgroups.py); None: the name without its
    # trailing ordinal.
    host_group_pattern: str | None = None
    # A chain in training more surprising than this (nats; 10 is one in 22,000 by chance)
    # makes its period a known one for its key and group.
    known_surprise: float = 10.0


@dataclass(frozen=True, slots=True)
class KnownPeriods:
    """Period steps seen as legitimate, per host group and key, and fleet-wide per key (for
    hosts of a group training never saw)."""

    groups: Mapping[str, Mapping[str, frozenset[int]]] = field(default_factory=dict)
    fleet: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def knows(self, group: str, key: str, period_ms: float) -> bool:
        steps = self.groups.get(group, self.fleet)
        known = steps.get(key)
        if not known:
            return False
        step = period_step(period_ms)
        return step in known or step - 1 in known or step + 1 in known

    @classmethod
    def of(cls, seen: Mapping[str, Mapping[str, set[int]]]) -> KnownPeriods:
        fleet: dict[str, set[int]] = {}
        for keys in seen.values():
            for key, steps in keys.items():
                fleet.setdefault(key, set()).update(steps)
        return cls(
            {g: {k: frozenset(s) for k, s in keys.items()} for g, keys in seen.items()},
            {k: frozenset(s) for k, s in fleet.items()},
        )

    def to_json(self) -> dict[str, dict[str, list[int]]]:
        return {
            g: {k: sorted(s) for k, s in sorted(keys.items())} for g, keys in self.groups.items()
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, list[int]]]) -> KnownPeriods:
        return cls.of({g: {k: set(s) for k, s in keys.items()} for g, keys in data.items()})


class PeriodicNet(nn.Module):
    """The chain rule as buffers: min and max period, tolerance share and floor, candidates."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("rule", torch.zeros(5, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @classmethod
    def of(cls, rule: ChainRule) -> PeriodicNet:
        net = cls()
        net.rule[:] = torch.tensor(
            [
                rule.min_period_ms,
                rule.max_period_ms,
                rule.tolerance_share,
                rule.min_tolerance_ms,
                rule.candidates,
            ],
            dtype=torch.float64,
        )
        return net

    def chain_rule(self) -> ChainRule:
        lo, hi, share, floor, candidates = self.rule.tolist()
        return ChainRule(int(lo), int(hi), float(share), int(floor), int(candidates))
