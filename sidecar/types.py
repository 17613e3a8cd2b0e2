"""Value types shared by every layer. Frozen, slotted, free of I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

# What a detection says about why (re-exported: every layer names them from here).
from sidecar.evidence import (
    ContentDeviation,
    ExpectedKey,
    NextStep,
    ParameterDeviation,
    ParameterValue,
    TemplateMatch,
    UnusualToken,
    WorkflowSummary,
)

__all__ = [
    "now_iso",
    "LogEvent",
    "Cursor",
    "HostState",
    "LatenessPlan",
    "InputStats",
    "StoredIncident",
    "Rebuilt",
    "Withdrawn",
    "CycleReport",
    "MiningStats",
    "HostSequence",
    "ExpectedKey",
    "Detection",
    "DetectionBatch",
    "TemplateMatch",
    "NextStep",
    "WorkflowSummary",
    "ParameterValue",
    "ParameterDeviation",
    "UnusualToken",
    "ContentDeviation",
    "CONTEXT_MESSAGE_CHARS",
    "UNREADABLE_REASONS",
]


# Why a document in the watched indices cannot be read at all (see EventSource.unreadable).
UNREADABLE_REASONS = (
    "missing_timestamp",
    "missing_host",
    "timestamp_in_future",
    "timestamp_not_epoch_ms",
)

# Templates are built from the first CONTEXT_MESSAGE_CHARS of a message, so an event read back
# from a saved tail yields the same template as when it was first read.
CONTEXT_MESSAGE_CHARS = 512


@dataclass(frozen=True, slots=True)
class LogEvent:
    host: str
    timestamp_ms: int
    log_uuid: str
    event_id: str
    severity: str
    message: str | None = None
    index: str | None = None

    @property
    def position(self) -> Cursor:
        return Cursor(self.timestamp_ms, self.log_uuid)

    def as_context(self) -> LogEvent:
        """The event as kept in a host's saved tail: the message cut to what a template uses."""
        message = self.message[:CONTEXT_MESSAGE_CHARS] if self.message else self.message
        return LogEvent(
            self.host,
            self.timestamp_ms,
            self.log_uuid,
            self.event_id,
            self.severity,
            message,
            self.index,
        )


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A host's read position: the (timestamp, log_uuid) of the last event it has scored.

    Ordering matches the cluster's sort, so `event.position > cursor` means "not yet scored".
    """

    timestamp_ms: int
    log_uuid: str


@dataclass(frozen=True, slots=True)
class HostState:
    """What a host needs to resume: where to read from and the events before that point.

    The tail holds raw events (not encoded keys) so it survives a model or vocabulary change.
    """

    host: str
    cursor: Cursor | None = None
    tail: tuple[LogEvent, ...] = ()
    # Late-arrival check: how many documents were read per time bucket (bucket start ms ->
    # count) within the lateness window, and the read bound of the cycle that saved them.
    # A bucket the cluster now holds more documents in has received late ones.
    counts: tuple[tuple[int, int], ...] = ()
    read_through_ms: int | None = None
    # The host's incident still open to extension (sidecar/pipeline/incidents.py), as JSON.
    incident: dict[str, object] | None = None

    def advanced(
        self,
        events: list[LogEvent],
        cursor: Cursor,
        tail_size: int,
        counts: Mapping[int, int] | None = None,
        read_through_ms: int | None = None,
    ) -> HostState:
        """The state after `events` were scored and everything up to `cursor` was read.

        `cursor` can lie past the last event when the page ended on rejected documents; those
        are counted, and moving past them keeps them from being re-read every cycle.
        `counts` are documents read per bucket since the last state, added to the saved ones.
        """
        kept = (*self.tail, *(e.as_context() for e in events[-tail_size:]))
        merged = dict(self.counts)
        for bucket, count in (counts or {}).items():
            merged[bucket] = merged.get(bucket, 0) + count
        return HostState(
            self.host,
            cursor,
            kept[-tail_size:] if tail_size else (),
            tuple(sorted(merged.items())),
            read_through_ms if read_through_ms is not None else self.read_through_ms,
            self.incident,
        )

    def with_incident(self, incident: dict[str, object] | None) -> HostState:
        return HostState(
            self.host, self.cursor, self.tail, self.counts, self.read_through_ms, incident
        )

    def rewound(
        self,
        tail: tuple[LogEvent, ...],
        from_bucket_ms: int,
        incident: dict[str, object] | None,
    ) -> HostState:
        """The state to re-read from `from_bucket_ms` on: no cursor, the given context and open
        incident, and the counts of the buckets about to be re-read dropped (the re-read counts
        them)."""
        kept = tuple((b, n) for b, n in self.counts if b < from_bucket_ms)
        return HostState(self.host, None, tail, kept, self.read_through_ms, incident)

    def pruned(self, floor_ms: int) -> HostState:
        """Without the counts of buckets before the lateness window (they are never checked)."""
        kept = tuple((b, n) for b, n in self.counts if b >= floor_ms)
        if len(kept) == len(self.counts):
            return self
        return HostState(
            self.host, self.cursor, self.tail, kept, self.read_through_ms, self.incident
        )


@dataclass(frozen=True, slots=True)
class StoredIncident:
    """An incident document as a re-read needs it: where it lies and how far it was revised."""

    id: str
    first_ms: int
    last_ms: int
    revision: int


@dataclass(slots=True)
class Rebuilt:
    """A host's range re-read after late documents, and what the re-read wrote for it: every
    stored verdict in the range that is not among these is withdrawn."""

    host: str
    from_ms: int
    through_ms: int
    # Incidents stored before the re-read, by id -> revision: one the re-read forms again
    # continues from there, so its new document replaces the old one.
    revisions: dict[str, int] = field(default_factory=dict)
    # anomaly document id -> the incident it belongs to now
    anomalies: dict[str, str | None] = field(default_factory=dict)
    incidents: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Withdrawn:
    anomalies: int = 0
    incidents: int = 0
    # Kept anomaly documents moved to the incident the re-read formed around them.
    relinked: int = 0
    # Left in place because an analyst marked them.
    marked: int = 0


@dataclass(slots=True)
class InputStats:
    """Counts of bad or skipped input, by reason, with one sample each for the log."""

    rejected: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def reject(self, reason: str, sample: object) -> None:
        self.rejected[reason] += 1
        self._keep_sample(reason, sample)

    def repair(self, reason: str, sample: object) -> None:
        self.repaired[reason] += 1
        self._keep_sample(reason, sample)

    def _keep_sample(self, reason: str, sample: object) -> None:
        # `sample` may be a function: building a sample for every document would cost more
        # than parsing it, and only the first one per reason is kept.
        if reason not in self.samples:
            value = sample() if callable(sample) else sample
            self.samples[reason] = repr(value)[:300]

    def merge(self, other: InputStats) -> None:
        self.rejected.update(other.rejected)
        self.repaired.update(other.repaired)
        for reason, sample in other.samples.items():
            self.samples.setdefault(reason, sample)


@dataclass(slots=True)
class MiningStats:
    """How template mining went in one cycle (SIDECAR_TEMPLATE_MINING), for operators: many
    new templates, or many events under rare ones, mean the miner is splitting statements (or
    the logs are new); `overflowed` counts events the full miner could not place
    (SIDECAR_TEMPLATE_MAX_CLUSTERS)."""

    templates_known: int = 0  # after the cycle
    new_templates: int = 0
    rare_template_events: int = 0  # keyed by a template seen fewer than RARE_TEMPLATE_SIZE times
    overflowed: int = 0

    def add(self, other: MiningStats) -> None:
        self.templates_known = max(self.templates_known, other.templates_known)
        self.new_templates += other.new_templates
        self.rare_template_events += other.rare_template_events
        self.overflowed += other.overflowed


@dataclass(slots=True)
class CycleReport:
    cycle_id: str
    started_ms: int
    upper_bound_ms: int
    hosts_seen: int = 0
    advanced_hosts: set[str] = field(default_factory=set)
    # Cursor timestamp of every host that advanced, for lag metrics.
    host_positions: dict[str, int] = field(default_factory=dict)
    events_read: int = 0
    events_scored: Counter[str] = field(default_factory=Counter)
    anomalies_written: Counter[str] = field(default_factory=Counter)
    anomalies_already_present: int = 0
    # Incidents begun in this cycle, and incidents begun earlier that it extended.
    incidents_opened: int = 0
    incidents_extended: int = 0
    # Incidents that entered each grade band (opened in it or raised into it): what alerts use.
    incident_bands: Counter[str] = field(default_factory=Counter)
    # Flagged events counted on their incident instead of written as their own document.
    anomalies_folded: int = 0
    # Distinct events any model flagged, and the log time the advanced hosts' cursors moved
    # over (summed over hosts): the live false-alarm rates are per event and per host-day.
    events_flagged: int = 0
    host_ms_covered: int = 0
    input: InputStats = field(default_factory=InputStats)
    # Documents the watched indices hold that no read can reach (no timestamp, no host, a
    # timestamp in the future or not epoch-based), by reason: the state of the indices now.
    unreadable: dict[str, int] = field(default_factory=dict)
    late_documents: int = 0
    # Events keyed by the template of their MESSAGE (SIDECAR_TEMPLATE_MINING), not EVENTID.
    mined_event_ids: int = 0
    mining: MiningStats = field(default_factory=MiningStats)
    rewound_hosts: set[str] = field(default_factory=set)
    # Verdicts given before late documents arrived that the re-read no longer reached.
    anomalies_withdrawn: int = 0
    incidents_withdrawn: int = 0
    dead_letters: int = 0
    # Results of events older than the results' retention: counted, never written.
    results_expired: int = 0
    # Host states another sidecar had already moved at least as far (theirs kept).
    state_conflicts: int = 0
    stopped_early: bool = False
    duration_s: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "cycle_id": self.cycle_id,
            "hosts_seen": self.hosts_seen,
            "hosts_advanced": len(self.advanced_hosts),
            "events_read": self.events_read,
            "events_scored": dict(self.events_scored),
            "anomalies_written": dict(self.anomalies_written),
            "anomalies_already_present": self.anomalies_already_present,
            "incidents_opened": self.incidents_opened,
            "incidents_extended": self.incidents_extended,
            "incident_bands": dict(self.incident_bands),
            "anomalies_folded": self.anomalies_folded,
            "events_flagged": self.events_flagged,
            "host_ms_covered": self.host_ms_covered,
            "rejected": dict(self.input.rejected),
            "repaired": dict(self.input.repaired),
            "unreadable": dict(self.unreadable),
            "late_documents": self.late_documents,
            "mined_event_ids": self.mined_event_ids,
            "template_mining": asdict(self.mining),
            "rewound_hosts": len(self.rewound_hosts),
            "anomalies_withdrawn": self.anomalies_withdrawn,
            "incidents_withdrawn": self.incidents_withdrawn,
            "dead_letters": self.dead_letters,
            "results_expired": self.results_expired,
            "state_conflicts": self.state_conflicts,
            "stopped_early": self.stopped_early,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass(frozen=True, slots=True)
class LatenessPlan:
    """This cycle's late-arrival window: buckets of `bucket_ms` from `floor_ms` (aligned) on.

    Sources count the documents they read per bucket; the next cycle compares those counts
    with what the cluster holds up to `checked_through_ms`, the previous cycle's read bound.
    """

    floor_ms: int
    bucket_ms: int
    checked_through_ms: int

    def buckets(self, through_ms: int) -> list[int]:
        return list(range(self.floor_ms, through_ms + 1, self.bucket_ms))

    def bucket_of(self, timestamp_ms: int) -> int | None:
        if timestamp_ms < self.floor_ms:
            return None
        return timestamp_ms - (timestamp_ms - self.floor_ms) % self.bucket_ms


@dataclass(frozen=True, slots=True)
class HostSequence:
    """New events of one host, with the events it logged before them (oldest first)."""

    host: str
    context: tuple[LogEvent, ...]
    events: list[LogEvent]


@dataclass(frozen=True, slots=True)
class Detection:
    """One anomalous event as a detector sees it; `annotate` turns it into a document."""

    model: str
    model_version: str
    event: LogEvent
    window: tuple[LogEvent, ...]  # the events before it that the model read, oldest first
    padded: int  # window slots filled with padding (start of the host's stream)
    reason: str
    score: float
    observed_key: str
    observed_rank: int  # 0 when the key is unknown to the model
    observed_probability: float
    expected: tuple[ExpectedKey, ...]
    window_size: int
    top_g: int
    approximation: TemplateMatch | None = None
    workflow: WorkflowSummary | None = None
    parameters: ParameterDeviation | None = None
    content: ContentDeviation | None = None
    # Calibrated: the share of held-out normal events at least as unusual (0 for the
    # impossible), and its 0–100 grade (50 at the flagging threshold); None if uncalibrated.
    p_value: float | None = None
    grade: float | None = None


@dataclass(frozen=True, slots=True)
class DetectionBatch:
    detections: list[Detection]
    scored: int


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
