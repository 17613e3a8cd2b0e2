"""Workflows of log keys learned from normal data, per host group (DeepLog, CCS'17, the section
on workflow construction from multi-task execution, used to help diagnose an anomaly).

What is built: for every host group, a first-order transition graph over log keys
(EVENTID/SEVERITY labels): how often key b directly followed key a on a host of the group.
Transitions seen fewer than `min_count` times, or making up less than `min_share` of what
follows a key, are pruned: noise in the training window must not become "normal". The kept
edges' counts give P(b | a). Keys a task starts with ("entry keys") are read off the graph: a
key that no single key leads to at least half of the time follows whatever task ended before
it, and a key no kept edge leads to (but one leaves) can only start something. `main_path`
walks the most likely successors and prints a repeated key (a self-loop) or a repeated block
(a walk that comes back to a key it passed) as a loop instead of unrolling it. A fleet-wide
graph over all streams stands in for hosts whose group was not seen in training.

What the paper does that this does not:
- Separating concurrent tasks. DeepLog asks its LSTM which keys are predicted with similar
  probability after the same history and, when both orders of a pair occur, treats the pair as
  concurrent (and a change in the predicted set as a new task). Here interleaved tasks simply
  show up as extra edges of the one graph per group.
- Task boundaries. DeepLog's workflows are per task (an OpenStack VM life cycle); host
  streams carry no task id, so the graph spans task boundaries and entry keys are a heuristic.
- Higher-order context. The LSTM conditions on h keys; the graph conditions on one, so it can
  explain "what usually follows this key", not "what follows this history".
- The density-based variant (clustering keys by co-occurrence within a distance) is not built.

Pure: no I/O; `to_json`/`from_json` give plain JSON for the model manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import key_label
from sidecar.types import LogEvent

__all__ = [
    "FLEET_GROUP",
    "FORMAT",
    "Successor",
    "Walk",
    "Workflow",
    "WorkflowSet",
    "learn_workflow",
    "learn_workflows",
]

FLEET_GROUP = "*"  # the graph over every host, for hosts whose group training never saw
FORMAT = 1

# A key is an entry key when no single predecessor accounts for this share of its arrivals.
ENTRY_MAX_PREDECESSOR_SHARE = 0.5


class Successor(NamedTuple):
    key: str
    probability: float
    count: int


class Walk(NamedTuple):
    """The most likely continuation from a key, without the key itself."""

    keys: tuple[str, ...]
    # Keys on the walk (the start included) whose kept edges include a self-loop.
    repeats: frozenset[str]
    # The key the walk came back to (a repeated block), or None when it ran out of steps or
    # successors.
    loops_to: str | None


Transitions = Counter[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Workflow:
    """One group's normal workflow. `edges[a][b]` is how often b followed a (kept edges only)."""

    group: str
    hosts: int
    events: int
    keys: Mapping[str, int]  # occurrences of each key
    edges: Mapping[str, Mapping[str, int]]
    entries: tuple[str, ...]
    pruned_edges: int = 0  # distinct rare transitions dropped
    pruned_transitions: int = 0  # how often they occurred
    _totals: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Successor probabilities are asked for once per anomaly; the totals are fixed.
        totals = {a: sum(out.values()) for a, out in self.edges.items()}
        object.__setattr__(self, "_totals", totals)

    def knows(self, key: str) -> bool:
        return key in self.keys

    def has_edge(self, a: str, b: str) -> bool:
        return b in self.edges.get(a, {})

    def successors(self, key: str) -> tuple[Successor, ...]:
        """What normally follows `key`, most likely first (ties by key)."""
        out = self.edges.get(key, {})
        total = self._totals.get(key, 0)
        ranked = sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))
        return tuple(Successor(b, n / total, n) for b, n in ranked)

    def main_path(self, start: str, steps: int) -> Walk:
        """Up to `steps` most likely successors from `start`. A self-loop does not advance the
        walk (the key is marked as repeating and its best other successor taken); reaching a
        key already passed ends the walk as a loop back to that key."""
        keys: list[str] = []
        repeats: set[str] = set()
        seen = {start}
        current = start
        for _ in range(steps):
            following = [s for s in self.successors(current) if s.key != current]
            if self.has_edge(current, current):
                repeats.add(current)
            if not following:
                return Walk(tuple(keys), frozenset(repeats), None)
            current = following[0].key
            if current in seen:
                return Walk(tuple(keys), frozenset(repeats), current)
            seen.add(current)
            keys.append(current)
        if self.has_edge(current, current):
            repeats.add(current)
        return Walk(tuple(keys), frozenset(repeats), None)

    @property
    def edge_count(self) -> int:
        return sum(len(out) for out in self.edges.values())

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "hosts": self.hosts,
            "events": self.events,
            "keys": dict(sorted(self.keys.items())),
            "edges": {a: dict(sorted(out.items())) for a, out in sorted(self.edges.items())},
            "entries": list(self.entries),
            "pruned": {"edges": self.pruned_edges, "transitions": self.pruned_transitions},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Workflow:
        keys = _counts(data.get("keys"))
        edges_json = data.get("edges") or {}
        assert isinstance(edges_json, dict)
        pruned = data.get("pruned") or {}
        assert isinstance(pruned, dict)
        entries = data.get("entries") or []
        assert isinstance(entries, list)
        return cls(
            group=str(data["group"]),
            hosts=int(data.get("hosts", 0)),  # type: ignore[call-overload]
            events=int(data.get("events", 0)),  # type: ignore[call-overload]
            keys=keys,
            edges={str(a): _counts(out) for a, out in edges_json.items()},
            entries=tuple(str(k) for k in entries),
            pruned_edges=int(pruned.get("edges", 0)),
            pruned_transitions=int(pruned.get("transitions", 0)),
        )


def _counts(data: object) -> dict[str, int]:
    if not data:
        return {}
    assert isinstance(data, dict)
    return {str(k): int(v) for k, v in data.items()}


@dataclass(frozen=True, slots=True)
class WorkflowSet:
    """Every group's workflow, the fleet-wide one, and the rules they were learned with."""

    grouping: HostGrouping
    groups: Mapping[str, Workflow]
    fleet: Workflow
    min_count: int
    min_share: float
    # Groups left out by the cap on how many are kept (their hosts use the fleet's workflow).
    dropped_groups: int = 0

    def group_of(self, host: str) -> str:
        return self.grouping.group_of(host)

    def for_host(self, host: str) -> Workflow:
        """The host's group's workflow, or the fleet's when training never saw its group."""
        return self.groups.get(self.group_of(host), self.fleet)

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "grouping": self.grouping.to_json(),
            "min_count": self.min_count,
            "min_share": self.min_share,
            "dropped_groups": self.dropped_groups,
            "groups": {name: w.to_json() for name, w in sorted(self.groups.items())},
            "fleet": self.fleet.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> WorkflowSet:
        if data.get("format") != FORMAT:
            raise ValueError(f"workflow format {data.get('format')!r}, expected {FORMAT}")
        grouping = data.get("grouping") or {}
        groups = data.get("groups") or {}
        fleet = data["fleet"]
        assert isinstance(grouping, dict) and isinstance(groups, dict)
        assert isinstance(fleet, dict)
        return cls(
            grouping=HostGrouping.from_json(grouping),
            groups={str(name): Workflow.from_json(w) for name, w in groups.items()},
            fleet=Workflow.from_json(fleet),
            min_count=int(data.get("min_count", 1)),  # type: ignore[call-overload]
            min_share=float(data.get("min_share", 0.0)),  # type: ignore[arg-type]
            dropped_groups=int(data.get("dropped_groups", 0)),  # type: ignore[call-overload]
        )

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, object]) -> WorkflowSet | None:
        """The workflows saved in a model manifest; None for a model trained without them."""
        data = manifest.get("workflow")
        return cls.from_json(data) if isinstance(data, dict) else None


class _Tally:
    """Keys, transitions, hosts and events of streams, counted one stream at a time."""

    __slots__ = ("keys", "transitions", "hosts", "events")

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.transitions: Transitions = Counter()
        self.hosts = 0
        self.events = 0

    def add(self, stream: list[str]) -> None:
        if not stream:
            return
        self.hosts += 1
        self.events += len(stream)
        self.keys.update(stream)
        self.transitions.update(zip(stream, stream[1:], strict=False))


def learn_workflow(
    group: str,
    keyed_streams: Iterable[list[str]],
    *,
    min_count: int = 2,
    min_share: float = 0.01,
) -> Workflow:
    """The workflow of streams of key labels (one list per host, in time order)."""
    tally = _Tally()
    for stream in keyed_streams:
        tally.add(stream)
    return _workflow(group, tally, min_count, min_share)


def _workflow(group: str, tally: _Tally, min_count: int, min_share: float) -> Workflow:
    keys, transitions, hosts, events = tally.keys, tally.transitions, tally.hosts, tally.events
    out_totals: Counter[str] = Counter()
    in_totals: Counter[str] = Counter()
    for (a, b), n in transitions.items():
        out_totals[a] += n
        in_totals[b] += n
    edges: dict[str, dict[str, int]] = {}
    best_in: Counter[str] = Counter()  # the largest kept in-edge count per key
    pruned_edges = pruned_transitions = 0
    for (a, b), n in sorted(transitions.items()):
        if n < min_count or n < min_share * out_totals[a]:
            pruned_edges += 1
            pruned_transitions += n
            continue
        edges.setdefault(a, {})[b] = n
        best_in[b] = max(best_in[b], n)
    entries = tuple(
        key
        for key, _ in sorted(keys.items(), key=lambda kv: (-kv[1], kv[0]))
        if 0 < best_in[key] < ENTRY_MAX_PREDECESSOR_SHARE * in_totals[key]
        or (not best_in[key] and key in edges)  # only pruned edges lead here, kept ones leave
    )
    return Workflow(
        group=group,
        hosts=hosts,
        events=events,
        keys=dict(keys),
        edges=edges,
        entries=entries,
        pruned_edges=pruned_edges,
        pruned_transitions=pruned_transitions,
    )


def learn_workflows(
    streams: Mapping[str, Sequence[LogEvent]],
    grouping: HostGrouping | None = None,
    *,
    min_count: int = 2,
    min_share: float = 0.01,
    max_groups: int = 256,
) -> WorkflowSet:
    """Per-group workflows of per-host streams (each in time order), plus the fleet's.

    Only the `max_groups` groups with the most events are kept: a naming scheme the grouping
    rule does not understand makes one group per host, and the manifest must stay small.
    """
    grouping = grouping or HostGrouping()
    # One host's keys in memory at a time (streams may be on disk, sidecar/files/spill.py),
    # in host-name order, each counted into its group's tally and the fleet's.
    tallies: dict[str, _Tally] = {}
    fleet_tally = _Tally()
    for host in sorted(streams):
        keyed = [key_label(e.event_id, e.severity) for e in streams[host]]
        tallies.setdefault(grouping.group_of(host), _Tally()).add(keyed)
        fleet_tally.add(keyed)
    sizes = {g: t.events for g, t in tallies.items()}
    kept = sorted((g for g in tallies if sizes[g]), key=lambda g: (-sizes[g], g))[:max_groups]
    groups = {g: _workflow(g, tallies[g], min_count, min_share) for g in kept}
    fleet = _workflow(FLEET_GROUP, fleet_tally, min_count, min_share)
    return WorkflowSet(
        grouping=grouping,
        groups=groups,
        fleet=fleet,
        min_count=min_count,
        min_share=min_share,
        dropped_groups=sum(1 for g in tallies if sizes[g]) - len(kept),
    )
