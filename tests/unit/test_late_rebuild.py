"""Late documents in the pure pipeline: however many events arrive late, and however late
within the window, the anomaly and incident documents end as one undisturbed pass over the
same events leaves them. The in-memory source counts per lateness bucket as the cluster reader
does; the sinks keep what they hold as the cluster does (`create` keeps the first document,
incidents keep the highest revision)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.nextkey.build import build_detector
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.ports import Page, WriteResult
from sidecar.types import (
    Cursor,
    HostState,
    InputStats,
    LatenessPlan,
    LogEvent,
    Rebuilt,
    StoredIncident,
    Withdrawn,
)
from tests.helpers import T0, TRAIN_HOSTS, IncidentListSink, one_pass, to_events

LATENESS_MS = 600_000
CYCLE_MS = 10_000


class LateSource(FileSource):
    """Events that arrive when told to, counted per lateness bucket as they are read."""

    def __init__(self) -> None:
        super().__init__([])

    def arrive(self, events: Sequence[LogEvent]) -> None:
        for event in events:
            self._by_host.setdefault(event.host, []).append(event)
        for host_events in self._by_host.values():
            host_events.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))

    def read(
        self,
        host: str,
        after: Cursor | None,
        from_ms: int | None,
        upper_ms: int,
        stats: InputStats,
        plan: LatenessPlan | None = None,
    ) -> Iterator[Page]:
        for page in super().read(host, after, from_ms, upper_ms, stats, plan):
            buckets = (plan.bucket_of(e.timestamp_ms) for e in page.events) if plan else ()
            counts = Counter(b for b in buckets if b is not None)
            yield Page(page.events, page.last, dict(counts))

    def late_buckets(
        self, states: Mapping[str, HostState], plan: LatenessPlan
    ) -> dict[str, tuple[int, int]]:
        late = {}
        for host, events in self._by_host.items():
            state = states.get(host)
            if state is None or state.cursor is None or state.read_through_ms is None:
                continue
            held = Counter(
                plan.bucket_of(e.timestamp_ms)
                for e in events
                if plan.floor_ms <= e.timestamp_ms <= plan.checked_through_ms
            )
            counted = dict(state.counts)
            extra = {b: n - counted.get(b, 0) for b, n in held.items() if n > counted.get(b, 0)}
            if extra:
                late[host] = (min(extra), sum(extra.values()))  # type: ignore[type-var]
        return late


class CreateSink:
    """Anomaly documents written with `create`: a document already there stays as it was."""

    def __init__(self) -> None:
        self.documents: dict[str, dict] = {}

    def write(self, documents):
        new = [(i, d) for i, d in documents if i not in self.documents]
        self.documents.update(new)
        return WriteResult(len(new), len(documents) - len(new))


class MemoryVerdicts:
    def __init__(self, anomalies: CreateSink, incidents: IncidentListSink) -> None:
        self.anomalies, self.incidents = anomalies, incidents

    def incidents_reaching(self, hosts: Mapping[str, int]) -> dict[str, list[StoredIncident]]:
        found: dict[str, list[StoredIncident]] = {}
        for doc in self.incidents.documents.values():
            since = hosts.get(doc["host"])
            if since is not None and doc["last_event_at"] >= since:
                found.setdefault(doc["host"], []).append(
                    StoredIncident(
                        doc["incident_id"],
                        doc["first_event_at"],
                        doc["last_event_at"],
                        doc["revision"],
                    )
                )
        return found

    def withdraw(self, rebuilt: Sequence[Rebuilt]) -> Withdrawn:
        anomalies = incidents = relinked = 0
        for r in rebuilt:
            for doc_id, doc in list(self.anomalies.documents.items()):
                if doc["host"] != r.host or not r.from_ms <= doc["@timestamp"] <= r.through_ms:
                    continue
                if doc_id not in r.anomalies:
                    del self.anomalies.documents[doc_id]
                    anomalies += 1
                elif doc["incident_id"] != r.anomalies[doc_id]:
                    doc["incident_id"] = r.anomalies[doc_id]
                    relinked += 1
            for doc_id, doc in list(self.incidents.documents.items()):
                first = doc["first_event_at"]
                inside = doc["host"] == r.host and r.from_ms <= first <= r.through_ms
                if inside and doc_id not in r.incidents:
                    del self.incidents.documents[doc_id]
                    incidents += 1
        return Withdrawn(anomalies, incidents, relinked)


def _shape(anomalies: dict[str, dict], incidents: dict[str, dict]) -> tuple[dict, dict]:
    """What must not depend on when documents arrived: which anomalies, in which incident, and
    each incident's members."""
    return (
        {i: d["incident_id"] for i, d in anomalies.items()},
        {
            i: (d["first_event_at"], d["last_event_at"], d["event_count"], tuple(d["log_uuids"]))
            for i, d in incidents.items()
        },
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_late_arrivals_end_as_one_undisturbed_pass(trained: ModelArtifact, seed: int) -> None:
    docs, _ = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0, 120, seed=28, incidents={"host-003": "brute_force"}
    )
    events = to_events(docs)
    rng = random.Random(seed)
    cutoffs = list(range(T0 + CYCLE_MS, max(e.timestamp_ms for e in events) + CYCLE_MS, CYCLE_MS))
    # A few percent of the events arrive one to five cycles after their time.
    arrival: dict[int, list[LogEvent]] = {}
    for event in events:
        first = next(k for k, c in enumerate(cutoffs) if c >= event.timestamp_ms)
        delay = rng.randint(1, 5) if rng.random() < 0.04 else 0
        arrival.setdefault(min(first + delay, len(cutoffs) - 1), []).append(event)
    source, checkpoints = LateSource(), MemoryCheckpoints()
    anomalies, incidents = CreateSink(), IncidentListSink()
    verdicts = MemoryVerdicts(anomalies, incidents)
    options = CycleOptions(read_lag_ms=0, initial_lookback_ms=None, lateness_ms=LATENESS_MS)
    late = withdrawn = 0
    for k, cutoff in enumerate(cutoffs):
        source.arrive(arrival.get(k, []))
        report = run_cycle(
            source,
            [build_detector(trained)],
            anomalies,
            checkpoints,
            now_ms=cutoff,
            options=options,
            incidents=incidents,
            verdicts=verdicts,
        )
        late += report.late_documents
        withdrawn += report.anomalies_withdrawn + report.incidents_withdrawn

    assert late > 20, "too few late documents to show anything"
    assert _shape(anomalies.documents, incidents.documents) == _shape(*one_pass(trained, docs))
    print(f"\nseed {seed}: {late} late documents, {withdrawn} verdicts withdrawn")
