"""The volume model: what only counts and timing reveal about a host, judged against its host
group's daily rhythm (sidecar/models/volume/rhythm.py) and calibrated like every other model.

Its verdicts are a **silence**: an event that ends a span in which the host's group normally
logs many events, and a **burst**: an event that ends a run of `burst_events` events crowded
into a span in which the group logs a handful (a storm of one familiar event, which no order
model notices). The surprise of a silence is the number of events the group's rhythm expects
in it (the Poisson surprise of seeing none, in nats); that of a burst the Poisson surprise of
so many arrivals (rhythm.crowding). The held-out slice of the training range gives each its
p-values, each calibrated apart, and the false-alarm budget their thresholds. A workstation
that stops logging for four hours of a working day is flagged when it logs again; the same four
hours at night, when its group is quiet too, are not.

The network is a table: one row of 24 hourly rates per group (row 0 the fleet's, for hosts of
a group training never saw), kept as a buffer so the artifact machinery stores and checks it as
any other state_dict; the group names are JSON in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sidecar.models.base import JsonConfig
from sidecar.models.volume.rhythm import SLOTS, Rhythm

__all__ = ["VolumeConfig", "VolumeNet"]


@dataclass(frozen=True, slots=True)
class VolumeConfig(JsonConfig):
    # Host events before a flagged event shown in its annotation (the event before a silence
    # is the one that matters; a few more give the analyst the host's last activity).
    window_size: int = 10
    # How hosts are grouped (sidecar/encoding/hostgroups.py); None: the name without its
    # trailing ordinal.
    host_group_pattern: str | None = None
    # A burst is judged on this many of the host's events ending at the event (the tail every
    # cycle carries): all of them in a span where the group's rhythm expects a handful.
    burst_events: int = 64


class VolumeNet(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.register_buffer("rates", torch.zeros(groups + 1, SLOTS, dtype=torch.float64))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.rates[rows]

    @classmethod
    def of(cls, rhythm: Rhythm) -> tuple[VolumeNet, list[str]]:
        names = sorted(rhythm.groups)
        net = cls(len(names))
        net.rates[0] = torch.from_numpy(rhythm.fleet)
        for i, name in enumerate(names, start=1):
            net.rates[i] = torch.from_numpy(rhythm.groups[name])
        return net, names

    def rhythm(self, names: list[str]) -> Rhythm:
        rates = self.rates.detach().cpu().numpy()
        return Rhythm({name: rates[i] for i, name in enumerate(names, start=1)}, rates[0])
