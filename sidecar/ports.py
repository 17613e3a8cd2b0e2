"""Every port in one place: the pipeline's view of the outside world (sources, sinks,
checkpoints, event keys, detectors) and the stores the lifecycle and template mining keep their
state in. The cluster and JSON-lines adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sidecar.types import (
    Cursor,
    DetectionBatch,
    HostSequence,
    HostState,
    InputStats,
    LatenessPlan,
    LogEvent,
    MiningStats,
    Rebuilt,
    StoredIncident,
    Withdrawn,
)

if TYPE_CHECKING:  # the shapes ports name; nothing is loaded at run time
    from sidecar.templates.drain import TemplateMiner
    from sidecar.workflows.learn import WorkflowSet

__all__ = [
    "Page",
    "WriteResult",
    "Labelled",
    "EventSource",
    "AnomalySink",
    "CheckpointStore",
    "EventKeys",
    "Detector",
    "Activation",
    "ModelStore",
    "MinerStore",
    "NoticeStore",
    "VerdictStore",
]


@dataclass(frozen=True, slots=True)
class Page:
    """Events of one host in (timestamp, log_uuid) order, and the position read up to."""

    events: list[LogEvent]
    last: Cursor
    # Documents read per lateness bucket (rejected ones included: the cluster counts them).
    counts: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    created: int
    already_present: int
    # Refused for good by the cluster and kept in the dead-letter store instead.
    dead_lettered: int = 0
    # Older than the results' retention: counted, not written (their partition may be gone).
    expired: int = 0
    expired_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Labelled:
    """Events with their keys set, and how many of those keys were mined from MESSAGE."""

    events: list[LogEvent]
    mined: int = 0
    mining: MiningStats | None = None  # how the miner fared on these events


class EventSource(Protocol):
    def hosts_with_new(
        self,
        states: Mapping[str, HostState],
        new_host_from_ms: int | None,
        upper_ms: int,
        stats: InputStats | None = None,
    ) -> list[str]:
        """Hosts with events after their cursor and at or before `upper_ms`.

        Hosts without a cursor count only events from `new_host_from_ms` on (None: all).
        """
        ...

    def read(
        self,
        host: str,
        after: Cursor | None,
        from_ms: int | None,
        upper_ms: int,
        stats: InputStats,
        plan: LatenessPlan | None = None,
    ) -> Iterator[Page]:
        """The host's events after `after` (or from `from_ms`), up to `upper_ms`, in pages.

        With a plan, each page also counts its documents per lateness bucket.
        """
        ...

    def late_buckets(
        self, states: Mapping[str, HostState], plan: LatenessPlan
    ) -> dict[str, tuple[int, int]]:
        """Hosts holding more documents in a bucket up to `plan.checked_through_ms` than their
        state counted: host -> (the earliest such bucket, how many more documents in all)."""
        ...

    def unreadable(self, future_ms: int, stats: InputStats) -> dict[str, int]:
        """Documents no read can reach (no timestamp, no host, a timestamp past `future_ms` or
        not epoch-based), by reason, with a sample each in `stats`."""
        ...

    def events_before(
        self, before: Mapping[str, int], count: int, stats: InputStats
    ) -> dict[str, list[LogEvent]]:
        """Each named host's last `count` events before its time (host -> ms), oldest first.

        Seeds the context of a host seen for the first time, or re-read from a late bucket, so
        its first events are judged against what it logged before instead of against padding.
        Asked for many hosts at once: a cycle can need it for hundreds.
        """
        ...


class AnomalySink(Protocol):
    def write(self, documents: Sequence[tuple[str, dict[str, object]]]) -> WriteResult:
        """Store (id, document) pairs; returns only when every one is acknowledged."""
        ...


class VerdictStore(Protocol):
    """The verdicts earlier cycles stored, so that a re-read after late documents can take
    back those it no longer reaches (sidecar/pipeline/lateness.py)."""

    def incidents_reaching(self, hosts: Mapping[str, int]) -> dict[str, list[StoredIncident]]:
        """Per host, its stored incidents whose last member is at or after the given time."""
        ...

    def withdraw(self, rebuilt: Sequence[Rebuilt]) -> Withdrawn:
        """Per rebuilt range: delete the host's anomaly documents with an event time in it that
        the rebuild did not write, and its incidents first seen in it that the rebuild did not
        form; point kept anomaly documents at their rebuilt incident. What an analyst marked
        stays. Returns only when every change is acknowledged."""
        ...


class CheckpointStore(Protocol):
    def load(self) -> dict[str, HostState]: ...

    def save(self, states: Sequence[HostState]) -> int:
        """Save unless another writer moved a host's cursor at least as far since `load`
        (never backwards); returns how many states were left to the other writer."""
        ...


class EventKeys(Protocol):
    """Sets the event id of events that have none (or of every event) from their MESSAGE.

    Learns as it labels; `save` stores what it learned, so a later cycle, another replica or
    a restarted process gives the same message the same id.
    """

    def label(self, events: Sequence[LogEvent], stats: InputStats) -> Labelled: ...

    def save(self) -> None:
        """Store what was learned since the last save; a no-op when nothing was."""
        ...


class Detector(Protocol):
    name: str
    version: str
    window_size: int
    # The normal workflows learned with the model (sidecar/workflows/), which annotations
    # summarise; None when the model has none. The lifecycle attaches them after loading.
    workflows: WorkflowSet | None

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch: ...


@dataclass(frozen=True, slots=True)
class Activation:
    """One move of a model's active pointer: to `version`, from `previous`, and why."""

    version: str
    previous: str | None
    reason: str
    at: str

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Activation:
        previous = data.get("previous")
        return cls(
            str(data["version"]),
            None if previous is None else str(previous),
            str(data.get("reason", "")),
            str(data.get("at", "")),
        )


class ModelStore(Protocol):
    def put(
        self, name: str, version: str, manifest: dict[str, object], blobs: dict[str, bytes]
    ) -> None:
        """Store a new version; a version, once stored, never changes."""
        ...

    def get(self, name: str, version: str) -> tuple[dict[str, object], dict[str, bytes]]: ...

    def manifests(self, name: str) -> list[dict[str, object]]:
        """Every stored version's manifest, oldest first."""
        ...

    def active(self, name: str) -> str | None: ...

    def activate(self, name: str, version: str, reason: str) -> Activation:
        """Make `version` the one that scores; recorded in the history."""
        ...

    def history(self, name: str) -> list[Activation]:
        """Activations, oldest first."""
        ...

    def annotate(self, name: str, version: str, notes: dict[str, object]) -> None:
        """Attach mutable notes to a version (an evaluation, a rejection reason)."""
        ...

    def notes(self, name: str, version: str) -> dict[str, object]: ...


class MinerStore(Protocol):
    """Where a template miner's state lives between processes."""

    def load(self) -> TemplateMiner | None:
        """The saved state, or None when nothing was saved yet."""
        ...

    def save(self, miner: TemplateMiner) -> None:
        """Store `miner`. When another writer saved since `load`, their state is merged into
        `miner` first (no id of either is lost)."""
        ...


class NoticeStore(Protocol):
    """The incidents still to be notified, and the record of those that were."""

    def pending(
        self, since_ms: int, min_grade: float, owns: Callable[[str], bool]
    ) -> Iterator[dict]:
        """Incident documents updated at or after `since_ms`, graded at least `min_grade`, of
        hosts `owns` accepts, with no notification record; oldest update first."""
        ...

    def mark(self, incident: dict, record: dict) -> bool:
        """Record a notification; False when one was already recorded (another replica)."""
        ...
