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
from dataclasses import dataclass

import structlog

from sidecar.annotate import anomaly_document, anomaly_id
from sidecar.ports import AnomalySink, CheckpointStore, Detector, EventSource, Page
from sidecar.sharding import Shard
from sidecar.types import CycleReport, HostSequence, HostState, LogEvent

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


class _Batch:
    """Events read but not yet checkpointed, grouped by host, in read order."""

    def __init__(self) -> None:
        self.events: dict[str, list[LogEvent]] = {}
        self.read_up_to: dict[str, Page] = {}
        self.size = 0

    def add(self, host: str, page: Page) -> None:
        self.events.setdefault(host, []).extend(page.events)
        self.read_up_to[host] = page
        self.size += len(page.events)


def run_cycle(
    source: EventSource,
    detectors: Sequence[Detector],
    sink: AnomalySink,
    checkpoints: CheckpointStore,
    *,
    now_ms: int,
    options: CycleOptions | None = None,
    stop: threading.Event | None = None,
) -> CycleReport:
    options = options or CycleOptions()
    upper_bound = _NO_UPPER_BOUND if options.read_lag_ms is None else now_ms - options.read_lag_ms
    report = CycleReport(
        cycle_id=uuid.uuid4().hex[:12], started_ms=now_ms, upper_bound_ms=upper_bound
    )
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(cycle_id=report.cycle_id)
    try:
        _run(source, detectors, sink, checkpoints, now_ms, options, stop, report)
    finally:
        report.duration_s = time.perf_counter() - started
        if report.input.rejected or report.input.repaired:
            # Once per cycle, with one sample per reason: enough to find the culprit without
            # flooding the log with one line per bad document.
            log.warning(
                "bad_input",
                rejected=dict(report.input.rejected),
                repaired=dict(report.input.repaired),
                samples=report.input.samples,
            )
        structlog.contextvars.unbind_contextvars("cycle_id")
    return report


def _run(
    source: EventSource,
    detectors: Sequence[Detector],
    sink: AnomalySink,
    checkpoints: CheckpointStore,
    now_ms: int,
    options: CycleOptions,
    stop: threading.Event | None,
    report: CycleReport,
) -> None:
    states = checkpoints.load()
    tail_size = max((d.window_size for d in detectors), default=1)
    new_host_from = (
        None if options.initial_lookback_ms is None else now_ms - options.initial_lookback_ms
    )
    hosts = [
        host
        for host in source.hosts_with_new(states, new_host_from, report.upper_bound_ms)
        if options.shard.owns(host)
    ]
    report.hosts_seen = len(hosts)
    log.info("cycle_started", hosts=len(hosts), upper_bound_ms=report.upper_bound_ms)

    batch = _Batch()
    for host in hosts:
        state = states.get(host) or HostState(host)
        from_ms = new_host_from if state.cursor is None else None
        if state.cursor is None and not state.tail and from_ms is not None:
            earlier = source.events_before(host, from_ms, tail_size, report.input)
            state = HostState(host, None, tuple(e.as_context() for e in earlier))
            states[host] = state
        for page in source.read(host, state.cursor, from_ms, report.upper_bound_ms, report.input):
            batch.add(host, page)
            report.events_read += len(page.events)
            if batch.size >= options.batch_events:
                _flush(
                    batch, states, detectors, sink, checkpoints, now_ms, tail_size, options, report
                )
                batch = _Batch()
                if stop is not None and stop.is_set():
                    report.stopped_early = True
                    log.info("cycle_stopping_early", reason="shutdown requested")
                    return
    _flush(batch, states, detectors, sink, checkpoints, now_ms, tail_size, options, report)
    log.info("cycle_finished", **report.summary())


def _flush(
    batch: _Batch,
    states: dict[str, HostState],
    detectors: Sequence[Detector],
    sink: AnomalySink,
    checkpoints: CheckpointStore,
    now_ms: int,
    tail_size: int,
    options: CycleOptions,
    report: CycleReport,
) -> None:
    if not batch.read_up_to:
        return
    sequences = [
        HostSequence(host, (states.get(host) or HostState(host)).tail, events)
        for host, events in batch.events.items()
        if events
    ]
    documents: list[tuple[str, dict[str, object]]] = []
    for detector in detectors:
        result = detector.detect(sequences)
        report.events_scored[detector.name] += result.scored
        for detection in result.detections:
            documents.append(
                (
                    anomaly_id(detection.model, detection.event.log_uuid),
                    anomaly_document(detection, now_ms, options.message_excerpt_chars),
                )
            )
    written = sink.write(documents)  # raises unless every document is acknowledged
    for _, doc in documents:
        report.anomalies_written[str(doc["model"]["name"])] += 1  # type: ignore[index]
    report.anomalies_already_present += written.already_present

    advanced = []
    for host, page in batch.read_up_to.items():
        previous = states.get(host) or HostState(host)
        new_state = previous.advanced(batch.events.get(host, []), page.last, tail_size)
        advanced.append(new_state)
        states[host] = new_state
    checkpoints.save(advanced)
    report.advanced_hosts.update(s.host for s in advanced)
    report.host_positions.update({s.host: s.cursor.timestamp_ms for s in advanced if s.cursor})
