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

import structlog

from sidecar.pipeline.context import Batch, CycleContext, CycleOptions
from sidecar.pipeline.documents import documents_for
from sidecar.pipeline.incidents import IncidentLimits
from sidecar.pipeline.lateness import lateness_plan
from sidecar.pipeline.quietness import covered_ms, distinct_flagged
from sidecar.pipeline.rewind import note_rebuilt, rewind_late_hosts, withdraw_rebuilt
from sidecar.ports import (
    AnomalySink,
    CheckpointStore,
    Detector,
    EventKeys,
    EventSource,
    VerdictStore,
)
from sidecar.types import CycleReport, Detection, HostSequence, HostState, LatenessPlan
from sidecar.workflows.diagnose import with_workflows

__all__ = ["CycleOptions", "run_cycle"]

log = structlog.get_logger("sidecar.pipeline")

_NO_UPPER_BOUND = 2**62


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
    verdicts: VerdictStore | None = None,
) -> CycleReport:
    options = options or CycleOptions()
    upper_bound = _NO_UPPER_BOUND if options.read_lag_ms is None else now_ms - options.read_lag_ms
    report = CycleReport(
        cycle_id=uuid.uuid4().hex[:12], started_ms=now_ms, upper_bound_ms=upper_bound
    )
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(cycle_id=report.cycle_id)
    try:
        cycle = CycleContext(
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
            verdicts=verdicts if incidents is not None else None,
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
    return lateness_plan(options.lateness_ms, upper_bound)


def _run(cycle: CycleContext, stop: threading.Event | None) -> None:
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
    for host, bucket in rewind_late_hosts(cycle).items():
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
    batch = Batch()
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
                batch = Batch()
                if stop is not None and stop.is_set():
                    report.stopped_early = True
                    log.info("cycle_stopping_early", reason="shutdown requested")
                    return
        cycle.completed.add(host)
    _flush(cycle, batch)
    log.info("cycle_finished", **report.summary())


def _flush(cycle: CycleContext, batch: Batch) -> None:
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
        {i: r for rebuilt in cycle.rebuilds.values() for i, r in rebuilt.revisions.items()},
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
    note_rebuilt(cycle.rebuilds, documents, incident_documents)
    if cycle.keys is not None:
        # Before the cursors: if the cursors then fail to save, the redo adds messages the
        # saved templates already hold, which gives them the same ids. The other way round,
        # events past a saved cursor could carry ids of templates no state remembers.
        cycle.keys.save()

    to_save, rebuilt = [], []
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
            if host in cycle.rebuilds:
                rebuilt.append(cycle.rebuilds.pop(host))
        to_save.append(new_state)
    if rebuilt:
        withdraw_rebuilt(cycle, rebuilt)  # before the cursors: a failure re-reads it all
    report.state_conflicts += cycle.checkpoints.save(to_save)
    report.advanced_hosts.update(s.host for s in to_save)
    report.host_positions.update({s.host: s.cursor.timestamp_ms for s in to_save if s.cursor})
