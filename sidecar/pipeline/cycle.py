"""One cycle: read new events per host, score them, write anomalies, then move the cursors.

Knows the ports, not opensearch-py and not APScheduler. The order of steps is the guarantee:
a host's cursor is saved only after the anomalies for everything before it were acknowledged,
so a failure anywhere makes the next cycle redo the same events, and deterministic anomaly ids
make the redo harmless (at-least-once processing, exactly-once results).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from sidecar.pipeline.documents import documents_for
from sidecar.pipeline.incidents import IncidentLimits
from sidecar.pipeline.quietness import covered_ms, distinct_flagged
from sidecar.pipeline.sharding import Shard
from sidecar.ports import AnomalySink, CheckpointStore, Detector, EventKeys, EventSource, Page
from sidecar.types import (
    Cursor,
    CycleReport,
    Detection,
    HostSequence,
    HostState,
    LatenessPlan,
    LogEvent,
)
from sidecar.workflows.diagnose import with_workflows

__all__ = ["CycleOptions", "run_cycle"]

log = structlog.get_logger("sidecar.pipeline")

_NO_UPPER_BOUND = 2**62


@dataclass(frozen=True, slots=True)
class CycleOptions:
    # How far behind now to read, so documents still being indexed are not skipped over;
    # None reads everything (a complete file).
    read_lag_ms: int | None = 30_000
    # Hosts seen for the first time start this far back; None reads their whole history.
    initial_lookback_ms: int | None = 3_600_000
    # Events held in memory before they are scored, written and checkpointed.
    batch_events: int = 50_000
    message_excerpt_chars: int = 512
    # With N replicas, this one scores only the hosts it owns (hash(host) mod N).
    shard: Shard = Shard(0, 1)
    # Documents arriving this long after the read lag, behind a host's cursor, are still
    # scored; 0 turns the check off.
    lateness_ms: int = 0
    # Timestamps this far past now are counted as unreadable (None: no check).
    future_tolerance_ms: int | None = None
    # Anomalies of a host less than this apart form one incident; per incident and model only
    # the first `incident_event_docs` are written as their own documents.
    incident_gap_ms: int = 600_000
    incident_event_docs: int = 10


# The lateness window is checked in this many buckets: finer buckets re-read less after a late
# arrival, coarser ones keep the state documents and the check's aggregation small.
LATENESS_BUCKETS = 10


class _Batch:
    """Events read but not yet checkpointed, grouped by host, in read order."""

    def __init__(self) -> None:
        self.events: dict[str, list[LogEvent]] = {}
        self.read_up_to: dict[str, Page] = {}
        self.counts: dict[str, dict[int, int]] = {}
        self.size = 0

    def add(self, host: str, page: Page) -> None:
        self.events.setdefault(host, []).extend(page.events)
        self.read_up_to[host] = page
        if page.counts:
            host_counts = self.counts.setdefault(host, {})
            for bucket, count in page.counts.items():
                host_counts[bucket] = host_counts.get(bucket, 0) + count
        self.size += len(page.events)


@dataclass
class _Cycle:
    """What one cycle carries from step to step."""

    source: EventSource
    detectors: Sequence[Detector]
    sink: AnomalySink
    checkpoints: CheckpointStore
    now_ms: int
    options: CycleOptions
    report: CycleReport
    tail_size: int
    plan: LatenessPlan | None
    states: dict[str, HostState] = field(default_factory=dict)
    # Hosts being re-read for late documents, with the cursor they had: their state is not
    # saved until the re-read passes it again, so a saved cursor never moves backwards.
    rewound_from: dict[str, Cursor] = field(default_factory=dict)
    # Hosts read up to the cycle's upper bound (not cut short by a shutdown).
    completed: set[str] = field(default_factory=set)
    # Sets event ids from MESSAGE (template mining); None keeps every event's own id.
    keys: EventKeys | None = None
    # Where incident documents go; None writes none (every flagged event gets a document).
    incidents: AnomalySink | None = None

    def labelled(self, events: list[LogEvent]) -> list[LogEvent]:
        """`events` keyed as the detectors must see them: new events and their context alike,
        so a host's first events and its saved tail carry the same ids."""
        if self.keys is None or not events:
            return events
        result = self.keys.label(events, self.report.input)
        self.report.mined_event_ids += result.mined
        if result.mining is not None:
            self.report.mining.add(result.mining)
        return result.events


def run_cycle(
    source: EventSource,
    detectors: Sequence[Detector],
    sink: AnomalySink,
    checkpoints: CheckpointStore,
    *,
    now_ms: int,
    options: CycleOptions | None = None,
    stop: threading.Event | None = None,
    keys: EventKeys | None = None,
    incidents: AnomalySink | None = None,
) -> CycleReport:
    options = options or CycleOptions()
    upper_bound = _NO_UPPER_BOUND if options.read_lag_ms is None else now_ms - options.read_lag_ms
    report = CycleReport(
        cycle_id=uuid.uuid4().hex[:12], started_ms=now_ms, upper_bound_ms=upper_bound
    )
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(cycle_id=report.cycle_id)
    try:
        cycle = _Cycle(
            source,
            detectors,
            sink,
            checkpoints,
            now_ms,
            options,
            report,
            tail_size=max((d.window_size for d in detectors), default=1),
            plan=_lateness_plan(options, upper_bound),
            keys=keys,
            incidents=incidents,
        )
        _run(cycle, stop)
    finally:
        report.duration_s = time.perf_counter() - started
        if report.input.rejected or report.input.repaired or report.unreadable:
            # Once per cycle, with one sample per reason: enough to find the culprit without
            # flooding the log with one line per bad document.
            log.warning(
                "bad_input",
                rejected=dict(report.input.rejected),
                repaired=dict(report.input.repaired),
                unreadable=report.unreadable,
                samples=report.input.samples,
            )
        structlog.contextvars.unbind_contextvars("cycle_id")
    return report


def _lateness_plan(options: CycleOptions, upper_bound: int) -> LatenessPlan | None:
    if options.lateness_ms <= 0 or upper_bound >= _NO_UPPER_BOUND:
        return None
    bucket_ms = max(1_000, options.lateness_ms // LATENESS_BUCKETS)
    start = upper_bound - options.lateness_ms
    floor = start - start % bucket_ms  # aligned, so buckets line up from one cycle to the next
    return LatenessPlan(floor_ms=floor, bucket_ms=bucket_ms, checked_through_ms=floor - 1)


def _run(cycle: _Cycle, stop: threading.Event | None) -> None:
    source, options, report = cycle.source, cycle.options, cycle.report
    cycle.states = cycle.checkpoints.load()
    if options.future_tolerance_ms is not None:
        report.unreadable = source.unreadable(
            cycle.now_ms + options.future_tolerance_ms, report.input
        )
    new_host_from = (
        None if options.initial_lookback_ms is None else cycle.now_ms - options.initial_lookback_ms
    )
    hosts = [
        host
        for host in source.hosts_with_new(
            cycle.states, new_host_from, report.upper_bound_ms, report.input
        )
        if options.shard.owns(host)
    ]
    from_ms: dict[str, int | None] = {}
    for host, bucket in _rewind_late_hosts(cycle).items():
        from_ms[host] = bucket
        if host not in hosts:
            hosts.append(host)
    report.hosts_seen = len(hosts)
    log.info(
        "cycle_started",
        hosts=len(hosts),
        rewound=len(cycle.rewound_from),
        upper_bound_ms=report.upper_bound_ms,
    )

    # What hosts seen for the first time logged before the lookback, as their context.
    new_hosts = [host for host in hosts if host not in cycle.states]
    before_lookback = (
        source.events_before(dict.fromkeys(new_hosts, new_host_from), cycle.tail_size, report.input)
        if new_host_from is not None and new_hosts
        else {}
    )
    batch = _Batch()
    for host in hosts:
        state = cycle.states.get(host)
        if state is None:
            state = HostState(host)
            if new_host_from is not None:
                earlier = cycle.labelled(before_lookback.get(host, []))
                state = HostState(host, None, tuple(e.as_context() for e in earlier))
            cycle.states[host] = state
            from_ms[host] = new_host_from
        start = from_ms.get(host, new_host_from) if state.cursor is None else None
        pages = source.read(
            host, state.cursor, start, report.upper_bound_ms, report.input, cycle.plan
        )
        for page in pages:
            batch.add(host, page)
            report.events_read += len(page.events)
            if batch.size >= options.batch_events:
                _flush(cycle, batch)
                batch = _Batch()
                if stop is not None and stop.is_set():
                    report.stopped_early = True
                    log.info("cycle_stopping_early", reason="shutdown requested")
                    return
        cycle.completed.add(host)
    _flush(cycle, batch)
    log.info("cycle_finished", **report.summary())


def _rewind_late_hosts(cycle: _Cycle) -> dict[str, int]:
    """Hosts whose lateness buckets gained documents behind their cursor, set up to be re-read
    from the first such bucket (with the events before it as context): host -> bucket."""
    plan = cycle.plan
    if plan is None:
        return {}
    through = max((s.read_through_ms or 0 for s in cycle.states.values()), default=0)
    if through < plan.floor_ms:
        return {}
    plan = LatenessPlan(plan.floor_ms, plan.bucket_ms, through)
    rewinds: dict[str, int] = {}
    late = {
        host: (bucket, extra)
        for host, (bucket, extra) in sorted(cycle.source.late_buckets(cycle.states, plan).items())
        if cycle.options.shard.owns(host)
        and (cursor := cycle.states[host].cursor) is not None
        # A bucket after the cursor holds nothing read yet: the normal read gets it.
        and bucket <= cursor.timestamp_ms
    }
    before_late = cycle.source.events_before(
        {host: bucket for host, (bucket, _) in late.items()}, cycle.tail_size, cycle.report.input
    )
    for host, (bucket, extra) in late.items():
        state = cycle.states[host]
        earlier = cycle.labelled(before_late.get(host, []))
        cycle.rewound_from[host] = state.cursor
        cycle.states[host] = state.rewound(tuple(e.as_context() for e in earlier), bucket)
        cycle.report.late_documents += extra
        cycle.report.rewound_hosts.add(host)
        rewinds[host] = bucket
    if rewinds:
        log.info("late_documents", hosts=len(rewinds), documents=cycle.report.late_documents)
    return rewinds


def _flush(cycle: _Cycle, batch: _Batch) -> None:
    report, states, options = cycle.report, cycle.states, cycle.options
    if not batch.read_up_to:
        return
    for host, events in batch.events.items():
        batch.events[host] = cycle.labelled(events)  # the tails saved below keep these ids
    sequences = [
        HostSequence(host, (states.get(host) or HostState(host)).tail, events)
        for host, events in batch.events.items()
        if events
    ]
    by_host: dict[str, list[Detection]] = {}
    for detector in cycle.detectors:
        result = detector.detect(sequences)
        report.events_scored[detector.name] += result.scored
        # Detectors built from an artifact with learned workflows expose them; the summary of
        # the expected path rides along in every anomaly document.
        for detection in with_workflows(result.detections, detector.workflows):
            by_host.setdefault(detection.event.host, []).append(detection)
    report.events_flagged += distinct_flagged(by_host.values())
    limits = None
    if cycle.incidents is not None:
        limits = IncidentLimits(
            gap_ms=options.incident_gap_ms,
            event_docs=options.incident_event_docs,
            models_running=len(cycle.detectors),
        )
    made = documents_for(
        by_host,
        lambda host: (cycle.states.get(host) or HostState(host)).incident,
        limits,
        cycle.now_ms,
        options.message_excerpt_chars,
    )
    documents, incident_documents, still_open = made.anomalies, made.incidents, made.still_open
    report.incidents_opened += made.opened
    report.incidents_extended += made.extended
    report.anomalies_folded += made.folded
    report.incident_bands.update(made.entered_bands)
    written = cycle.sink.write(documents)  # raises unless every document is accounted for
    for doc_id, doc in documents:
        if doc_id not in written.expired_ids:
            report.anomalies_written[str(doc["model"]["name"])] += 1  # type: ignore[index]
    report.anomalies_already_present += written.already_present
    report.dead_letters += written.dead_lettered
    report.results_expired += written.expired
    if cycle.incidents is not None and incident_documents:
        # After the anomalies they point to, before the cursors: a redo rewrites the same
        # revisions, which the store recognises.
        written = cycle.incidents.write(incident_documents)
        report.dead_letters += written.dead_lettered
        report.results_expired += written.expired
    if cycle.keys is not None:
        # Before the cursors: if the cursors then fail to save, the redo adds messages the
        # saved templates already hold, which gives them the same ids. The other way round,
        # events past a saved cursor could carry ids of templates no state remembers.
        cycle.keys.save()

    to_save = []
    for host, page in batch.read_up_to.items():
        previous = states.get(host) or HostState(host)
        new_state = previous.advanced(
            batch.events.get(host, []),
            page.last,
            cycle.tail_size,
            batch.counts.get(host),
            report.upper_bound_ms if host in cycle.completed and cycle.plan else None,
        )
        if cycle.plan is not None:
            new_state = new_state.pruned(cycle.plan.floor_ms)
        if host in still_open:
            new_state = new_state.with_incident(still_open[host])
        report.host_ms_covered += covered_ms(previous, new_state, batch.events.get(host))
        states[host] = new_state
        behind = cycle.rewound_from.get(host)
        if behind is not None:
            if new_state.cursor is None or new_state.cursor < behind:
                continue  # still re-reading what the saved state already covers
            del cycle.rewound_from[host]
        to_save.append(new_state)
    report.state_conflicts += cycle.checkpoints.save(to_save)
    report.advanced_hosts.update(s.host for s in to_save)
    report.host_positions.update({s.host: s.cursor.timestamp_ms for s in to_save if s.cursor})
