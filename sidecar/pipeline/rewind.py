"""Re-reading hosts whose lateness window gained documents behind their cursor, and taking
back the verdicts the re-read no longer reaches (see lateness.py for where it starts)."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from sidecar.pipeline.context import CycleContext
from sidecar.pipeline.incidents import OpenIncident
from sidecar.pipeline.lateness import rebuild_start
from sidecar.types import LatenessPlan, Rebuilt

__all__ = ["rewind_late_hosts", "note_rebuilt", "withdraw_rebuilt"]

log = structlog.get_logger("sidecar.pipeline")


def rewind_late_hosts(cycle: CycleContext) -> dict[str, int]:
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
    _plan_rebuilds(cycle, late, plan)
    before_late = cycle.source.events_before(
        {host: bucket for host, (bucket, _) in late.items()}, cycle.tail_size, cycle.report.input
    )
    for host, (bucket, extra) in late.items():
        state = cycle.states[host]
        earlier = cycle.labelled(before_late.get(host, []))
        cycle.rewound_from[host] = state.cursor
        incident = state.incident
        if host in cycle.rebuilds and incident is not None:
            # Kept open only when it ends before the re-read; otherwise it is formed again.
            incident = incident if OpenIncident.from_json(incident).last_ms < bucket else None
        cycle.states[host] = state.rewound(tuple(e.as_context() for e in earlier), bucket, incident)
        cycle.report.late_documents += extra
        cycle.report.rewound_hosts.add(host)
        rewinds[host] = bucket
    if rewinds:
        log.info("late_documents", hosts=len(rewinds), documents=cycle.report.late_documents)
    return rewinds


def _plan_rebuilds(
    cycle: CycleContext, late: dict[str, tuple[int, int]], plan: LatenessPlan
) -> None:
    """Where each late host's re-read starts when its verdicts can be withdrawn (moved back to
    the first member of an incident reaching into the late bucket), and what it forms again."""
    if cycle.verdicts is None or not late:
        return
    stored = cycle.verdicts.incidents_reaching(dict.fromkeys(late, plan.floor_ms))
    for host, (bucket, extra) in late.items():
        rebuild = rebuild_start(bucket, stored.get(host, []), plan)
        cursor = cycle.states[host].cursor
        if rebuild is None or cursor is None:
            continue  # re-read from the late bucket; nothing is taken back
        start, reformed = rebuild
        revisions = {i.id: i.revision for i in reformed}
        cycle.rebuilds[host] = Rebuilt(host, start, cursor.timestamp_ms, revisions)
        late[host] = (start, extra)


def note_rebuilt(
    rebuilds: dict[str, Rebuilt],
    anomalies: Sequence[tuple[str, dict[str, object]]],
    incidents: Sequence[tuple[str, dict[str, object]]],
) -> None:
    """What a withdrawing re-read wrote: the verdicts it keeps."""
    if not rebuilds:
        return
    for doc_id, doc in anomalies:
        if (rebuilt := rebuilds.get(str(doc["host"]))) is not None:
            incident = doc.get("incident_id")
            rebuilt.anomalies[doc_id] = None if incident is None else str(incident)
    for doc_id, doc in incidents:
        if (rebuilt := rebuilds.get(str(doc["host"]))) is not None:
            rebuilt.incidents.add(doc_id)


def withdraw_rebuilt(cycle: CycleContext, rebuilt: list[Rebuilt]) -> None:
    """Take back what earlier cycles wrote in the re-read ranges and the re-read did not."""
    if cycle.verdicts is None:
        return
    withdrawn = cycle.verdicts.withdraw(rebuilt)
    cycle.report.anomalies_withdrawn += withdrawn.anomalies
    cycle.report.incidents_withdrawn += withdrawn.incidents
    if withdrawn.anomalies or withdrawn.incidents or withdrawn.relinked:
        log.info(
            "verdicts_withdrawn",
            hosts=len(rebuilt),
            anomalies=withdrawn.anomalies,
            incidents=withdrawn.incidents,
            relinked=withdrawn.relinked,
            kept_as_marked=withdrawn.marked,
        )
