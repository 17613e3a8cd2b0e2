"""End-to-end demo: a local OpenSearch, a synthetic fleet, training, scheduled cycles, findings.

    python -m sidecar demo [--hosts 12] [--cycles 3] [--keep-node]

Every step uses the product's real code paths: documents go into OpenSearch through the bulk
API, training reads them back from the cluster, the detectors are built with the options `run`
builds them with (the default model set, the calibrated verdict rule and the false-alarm
budget), the cycles run under the APScheduler job the `run` command uses, and the findings are
read back from the incident index (first) and the anomaly index (the drill-down).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from opensearchpy import OpenSearch
from opensearchpy.helpers import bulk

from devtools.demo.generator import (
    HostProfile,
    Incident,
    documents_with_incidents,
    fleet,
)
from devtools.node import DevNode
from sidecar.app.logging import configure_logging
from sidecar.app.scheduler import run_every
from sidecar.app.service import cluster_cycle
from sidecar.app.settings import Settings
from sidecar.app.wiring import detector_options, model_config
from sidecar.cluster.bootstrap import install_templates
from sidecar.cluster.client import make_client
from sidecar.cluster.reader import ClusterSource
from sidecar.lifecycle.training import train_model
from sidecar.models.catalog import kind_of
from sidecar.types import InputStats
from sidecar.workflows.diagnose import attach_workflows

__all__ = ["run_demo", "index_documents"]

log = structlog.get_logger("sidecar.demo")

HISTORY_INDEX = "demo-logs-history"
LIVE_INDEX = "demo-logs-live"
HISTORY_EVENTS = 1_500
BATCH_EVENTS = 150
# Between the last event trained on and the first one of the batches: indexed with the history
# but not trained on, so the first cycle's look-back can start inside it while every host's
# stream stays unbroken.
SEAM_MS = 2_000
# Which incident lands in which cycle's batch (host index, kind).
INCIDENT_PLAN = [
    [(1, "audit_log_cleared"), (3, "brute_force")],
    [(5, "privilege_without_logon")],
    [(7, "logoff_storm")],
]


@dataclass(frozen=True, slots=True)
class DemoData:
    history: list[dict[str, object]]
    batches: list[list[dict[str, object]]]
    incidents: list[Incident]
    live_from_ms: int  # the first instant the cycles read


def demo_data(profiles: list[HostProfile], now_ms: int, cycles: int) -> DemoData:
    """One unbroken stream per host, at one pace throughout: the history trained on, then the
    batches the cycles read, with the planned incidents in them. Rates, silences and periods
    mean the same in training and in the cycles (the default set judges them), so the whole
    stream lies in the recent past: each cycle indexes the next slice and reads it at once."""
    events = HISTORY_EVENTS + cycles * BATCH_EVENTS
    # A host's events are 50 ms to 2 s apart (1.025 s on average); the stream ends minutes ago.
    start_ms = now_ms - events * 1_025 - 180_000
    planned = {
        profiles[i].name: (kind, c)
        for c, plan in enumerate(INCIDENT_PLAN[:cycles])
        for i, kind in plan
        if i < len(profiles)
    }
    streams: list[list[dict[str, object]]] = []
    incidents: list[Incident] = []
    for profile in profiles:
        kind, c = planned.get(profile.name, (None, 0))
        docs, found = documents_with_incidents(
            [profile],
            start_ms,
            events,
            seed=1,
            incidents={profile.name: kind} if kind else {},
            lead=HISTORY_EVENTS + c * BATCH_EVENTS + BATCH_EVENTS // 2,
        )
        streams.append(docs)
        incidents.extend(found)
    # Every host's events from its HISTORY_EVENTS-th on (the incidents among them) are live.
    live_from = min(int(str(docs[HISTORY_EVENTS]["_zl_timestamp"])) for docs in streams)
    live_to = max(int(str(docs[-1]["_zl_timestamp"])) for docs in streams) + 1
    span = (live_to - live_from) / max(cycles, 1)
    history, batches = [], [[] for _ in range(max(cycles, 1))]
    for doc in (d for docs in streams for d in docs):
        ts = int(str(doc["_zl_timestamp"]))
        if ts < live_from:
            history.append(doc)
        else:
            batches[min(int((ts - live_from) // span), len(batches) - 1)].append(doc)
    return DemoData(history, batches, incidents, live_from)


def index_documents(client: OpenSearch, index: str, docs: list[dict[str, object]]) -> None:
    """Index and refresh, failing loudly on any rejected document."""
    _ok, errors = bulk(
        client,
        ({"_index": index, "_source": d} for d in docs),
        chunk_size=2_000,
        refresh="wait_for",
    )
    if errors:
        raise RuntimeError(f"{len(errors)} demo documents rejected: {errors[:1]}")


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(hosts: int = 12, cycles: int = 3, keep_node: bool = False) -> int:
    configure_logging("WARNING", "console")
    workdir = Path(tempfile.mkdtemp(prefix="sidecar-demo-"))
    _say("[1/5] starting a local single-node OpenSearch (fetched by Maven on first use) ...")
    node = DevNode().start()
    try:
        return _demo(node, workdir, hosts, cycles, keep_node)
    finally:
        if keep_node:
            _say(f"\nOpenSearch left running at {node.url} (data in {node.run_dir}).")
        else:
            node.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _demo(node: DevNode, workdir: Path, hosts: int, cycles: int, keep_node: bool) -> int:
    settings = Settings(
        cluster_urls=[node.url],
        watched_indices=["demo-logs-*"],
        model_dir=workdir / "models",
        read_lag_seconds=5,
        interval_seconds=4,
        # Fewer, larger training steps than the defaults keep the demo quick; every detection
        # setting, the model set included, is the product's default.
        train_epochs=30,
        train_batch_size=512,
        log_level="WARNING",
    )
    client = make_client(settings)
    profiles = fleet(hosts)
    data = demo_data(profiles, int(time.time() * 1000), cycles)
    _say(f"      OpenSearch {client.info()['version']['number']} at {node.url}")

    index_documents(client, HISTORY_INDEX, data.history)
    _say(
        f"[2/5] indexed {len(data.history):,} normal events from {hosts} hosts into "
        f"{HISTORY_INDEX} (about 26 minutes of each host's log)"
    )

    stats = InputStats()
    source = ClusterSource(client, settings.watched_indices, settings.fields, settings.page_size)
    start, end = data.live_from_ms - 3 * 3_600_000, data.live_from_ms - SEAM_MS
    streams = {
        h: [e for page in source.read(h, None, start, end, stats) for e in page.events]
        for h in source.hosts_with_new({}, start, end)
    }
    provenance = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start,
        "end_ms": end,
    }
    # The options `run` scores with (sidecar.lifecycle ActiveModels builds them the same way).
    options = detector_options(settings)
    detectors = []
    for step, name in enumerate(settings.models):
        artifact = train_model(
            name, streams, model_config(name, settings), settings.model_dir, provenance
        )
        training = artifact.manifest["training"]
        how = (
            f"{training['epochs_run']} epochs, loss {training['final_loss']:.3f}, "
            if "epochs_run" in training and "final_loss" in training
            else ""
        )
        _say(
            f"{'[3/5]' if step == 0 else '     '} trained {name} {artifact.version} from the "
            f"cluster: {training['events']:,} events, {artifact.vocabulary.known} log keys, "
            f"{how}{training['seconds']:.1f}s"
        )
        detector = kind_of(name).detector(artifact, options)
        attach_workflows(detector, artifact.manifest)
        detectors.append(detector)

    install_templates(
        client,
        settings.anomaly_index,
        settings.state_index,
        settings.dead_letter_index,
        incident_index=settings.incident_index,
        partitioning=settings.partitioning,
    )
    cycle_no = 0

    def demo_cycle(stop: threading.Event) -> None:
        nonlocal cycle_no, settings
        docs = data.batches[cycle_no] if cycle_no < len(data.batches) else []
        if docs:
            index_documents(client, LIVE_INDEX, docs)
        if cycle_no == 0:
            # Hosts are new to the cycles, which read them from the middle of the seam on: the
            # cycle takes its clock within milliseconds, far less than half the seam.
            look_back_s = (time.time() * 1000 - data.live_from_ms + SEAM_MS / 2) / 1000
            settings = settings.model_copy(update={"initial_lookback_seconds": look_back_s})
        cycle_no += 1
        report = cluster_cycle(settings, client, detectors, stop)
        s = report.summary()
        _say(
            f"      cycle {cycle_no}: {len(docs):,} new events arrived; read {s['events_read']:,} "
            f"from {s['hosts_seen']} hosts, scored {sum(report.events_scored.values()):,} "
            f"in {s['duration_s']:.2f}s\n"
            f"               incidents: {report.incidents_opened} opened, "
            f"{report.incidents_extended} extended; "
            f"{sum(report.anomalies_written.values())} anomaly documents written, "
            f"{report.anomalies_folded} more flagged events counted on their incident"
        )

    _say(f"[4/5] running {cycles} scheduled cycles (every {settings.interval_seconds:.0f}s) ...")
    run_every(settings.interval_seconds, demo_cycle, max_cycles=cycles)
    client.indices.refresh(index=f"{settings.incident_search},{settings.anomaly_search}")
    return _report(client, settings, data.incidents, node.url, keep_node)


def _clock(ms: object) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]  # type: ignore[call-overload]


def _search_all(client: OpenSearch, index: str, sort: list[dict]) -> list[dict]:
    hits = client.search(index=index, body={"size": 10_000, "sort": sort})["hits"]["hits"]
    return [hit["_source"] for hit in hits]


def _report(
    client: OpenSearch, settings: Settings, injected: list[Incident], url: str, keep_node: bool
) -> int:
    """Incidents first (by grade, matched to what was injected), then their per-event
    documents as the drill-down. Exit 0 when every injected incident is found: an incident
    (or an anomaly document) holds one of its events."""
    incidents = _search_all(
        client, settings.incident_search, [{"grade": "desc"}, {"first_event_at": "asc"}]
    )
    anomalies = _search_all(
        client, settings.anomaly_search, [{"host": "asc"}, {"@timestamp": "asc"}]
    )
    injected_of = {u: i for i in injected for u in i.log_uuids}
    matches = {
        inc["incident_id"]: sorted(
            {injected_of[u].kind for u in inc["log_uuids"] if u in injected_of}
        )
        for inc in incidents
    }
    hosts = {inc["host"] for inc in incidents}
    _say(
        f"[5/5] findings: {len(incidents)} incidents on {len(hosts)} hosts, by grade "
        f"(index '{settings.incident_search}')\n"
    )
    for n, inc in enumerate(incidents, 1):
        kinds = matches[inc["incident_id"]]
        label = f"injected: {', '.join(kinds)}" if kinds else "FALSE: nothing injected here"
        _say(
            f"  #{n} grade {inc['grade']:5.1f}  confidence {inc['confidence']:.2f}  "
            f"{inc['host']}  {inc['event_count']} events  "
            f"{_clock(inc['first_event_at'])} - {_clock(inc['last_event_at'])} UTC  ({label})"
        )
        _say(
            f"      models {' + '.join(inc['models'])}; reasons {', '.join(inc['reasons'])}; "
            f"top keys {', '.join(inc['keys'][:4])}"
            + (f" (+{len(inc['keys']) - 4})" if len(inc["keys"]) > 4 else "")
        )
    number = {inc["incident_id"]: n for n, inc in enumerate(incidents, 1)}
    flagged = {d["log_uuid"] for d in anomalies}
    found = 0
    _say("")
    lines = []
    for item in injected:
        mine = [inc for inc in incidents if set(inc["log_uuids"]) & set(item.log_uuids)]
        if mine or flagged & set(item.log_uuids):
            found += 1
        if mine:
            where = ", ".join(
                f"incident #{number[inc['incident_id']]} (grade {inc['grade']:.1f}, "
                f"{' + '.join(inc['models'])})"
                for inc in mine
            )
            mark = f"found: {where}"
        elif flagged & set(item.log_uuids):
            mark = "found: anomaly documents only, no incident"
        else:
            mark = "MISSED"
        lines.append(f"  [{mark}] {item.host} {item.kind}: {item.description}")
    _say(f"injected incidents found: {found}/{len(injected)}")
    for line in lines:
        _say(line)
    false = [f"#{number[i['incident_id']]}" for i in incidents if not matches[i["incident_id"]]]
    _say(
        f"false incidents (no injected event among their members): {len(false)}"
        + (f" ({', '.join(false)})" if false else "")
    )

    by_incident: dict[str, list[dict]] = {}
    for d in anomalies:
        by_incident.setdefault(str(d.get("incident_id")), []).append(d)
    counted = sum(inc["detection_count"] for inc in incidents)
    _say(
        f"\ndrill-down: {len(anomalies)} anomaly documents for {counted} detections "
        f"(at most {settings.incident_event_docs} per incident and model; "
        f"index '{settings.anomaly_search}')"
    )
    for n, inc in enumerate(incidents, 1):
        docs = by_incident.get(inc["incident_id"], [])
        per_model = dict(Counter(d["model"]["name"] for d in docs))
        _say(
            f"  #{n} {inc['host']}: {inc['detection_count']} detections, "
            f"{len(docs)} documents {per_model}"
        )
        top = (inc.get("top_events") or [{}])[0]
        if top:
            expected = ", ".join(
                f"{e['key']} {e['probability']:.2f}" for e in (top.get("expected") or [])[:2]
            )
            p_value = top.get("p_value")
            p_text = f"p {p_value:.1e}" if isinstance(p_value, float) else "p -"
            _say(
                f"      most anomalous: {top['model']} {top['key']} grade {top['grade']:.0f} "
                f"{p_text}  {(top.get('message') or '')[:48]!r}"
                + (f"  expected: {expected}" if expected else "")
            )
    orphans = [d for d in anomalies if str(d.get("incident_id")) not in number]
    if orphans:
        _say(f"  anomaly documents without an incident: {len(orphans)}")

    index, watched = settings.incident_search, ",".join(settings.watched_indices)
    _say(f"\nwhere to look: index '{index}' at {url}")
    _say(f"  curl '{url}/{index}/_search?sort=grade:desc&pretty'")
    _say(f"  drill-down: curl '{url}/{settings.anomaly_search}/_search?q=incident_id:<id>&pretty'")
    _say("  Dashboards / Kibana: `python -m sidecar dashboards --url ...` (incidents table first)")
    _say(f"  pivot to the raw logs: log_uuids / log_uuid on '{watched}'")
    _say(f"  per-host cursors and open incidents: index '{settings.state_index}'")
    if not keep_node:
        _say("  (the demo node stops now; run with --keep-node to explore the indices afterwards)")
    return 0 if found == len(injected) else 1
