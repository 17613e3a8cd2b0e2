"""End-to-end demo: a local OpenSearch, a synthetic fleet, training, scheduled cycles, findings.

    python -m sidecar demo [--hosts 12] [--cycles 3] [--keep-node]

Every step uses the product's real code paths: documents go into OpenSearch through the bulk
API, training reads them back from the cluster, the cycles run under the APScheduler job the
`run` command uses, and the findings are read from the anomaly index.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import structlog
from opensearchpy import OpenSearch
from opensearchpy.helpers import bulk

from sidecar.cli import cluster_cycle, model_config
from sidecar.cluster.bootstrap import install_templates
from sidecar.cluster.client import make_client
from sidecar.cluster.reader import ClusterSource
from sidecar.demo.generator import (
    Incident,
    documents_with_incidents,
    fleet,
    normal_documents,
)
from sidecar.devnode import DevNode
from sidecar.logging import configure_logging
from sidecar.models.registry import build_detector
from sidecar.scheduler import run_every
from sidecar.settings import Settings
from sidecar.training import train_model
from sidecar.types import InputStats

__all__ = ["run_demo", "index_documents"]

log = structlog.get_logger("sidecar.demo")

HISTORY_INDEX = "demo-logs-history"
LIVE_INDEX = "demo-logs-live"
LIVE_PACE_MS = (2, 20)
MODELS = ("deeplog", "loganomaly")
# Which incident lands in which cycle's batch (host index, kind).
INCIDENT_PLAN = [
    [(1, "audit_log_cleared"), (3, "brute_force")],
    [(5, "privilege_without_logon")],
    [(7, "logoff_storm")],
]


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
        initial_lookback_seconds=3_600,
        train_epochs=30,
        log_level="WARNING",
    )
    client = make_client(settings)
    profiles = fleet(hosts)
    now = int(time.time() * 1000)
    _say(f"      OpenSearch {client.info()['version']['number']} at {node.url}")

    history = normal_documents(profiles, now - 3 * 3_600_000, 1_500, seed=1)
    index_documents(client, HISTORY_INDEX, history)
    _say(f"[2/5] indexed {len(history):,} normal events from {hosts} hosts into {HISTORY_INDEX}")

    stats = InputStats()
    source = ClusterSource(client, settings.watched_indices, settings.fields, settings.page_size)
    start, end = now - 3 * 3_600_000, now - 3_600_000
    streams = {
        h: [e for page in source.read(h, None, start, end, stats) for e in page.events]
        for h in source.hosts_with_new({}, start, end)
    }
    data = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start,
        "end_ms": end,
    }
    detectors = []
    for step, name in enumerate(MODELS):
        # Fewer, larger steps than the product's defaults keep the demo quick.
        config = model_config(name, settings)
        artifact = train_model(
            name, streams, replace(config, epochs=30, batch_size=512), settings.model_dir, data
        )
        training = artifact.manifest["training"]
        _say(
            f"{'[3/5]' if step == 0 else '     '} trained {name} {artifact.version} from the "
            f"cluster: {training['events']:,} events, {artifact.vocabulary.known} log keys, "
            f"{training['epochs_run']} epochs, loss {training['final_loss']:.3f}, "
            f"{training['seconds']:.1f}s"
        )
        detectors.append(build_detector(artifact, settings.top_g))

    install_templates(
        client, settings.anomaly_index, settings.state_index, settings.dead_letter_index
    )
    incidents: list[Incident] = []
    clocks = {p.name: 0 for p in profiles}
    cycle_no = 0

    def demo_cycle(stop: threading.Event) -> None:
        nonlocal cycle_no
        plan = INCIDENT_PLAN[cycle_no] if cycle_no < len(INCIDENT_PLAN) else []
        batch_start = max([int(time.time() * 1000) - 30_000, *clocks.values()]) + 1_000
        docs, injected = documents_with_incidents(
            profiles,
            batch_start,
            150,
            seed=100 + cycle_no,
            incidents={profiles[i].name: kind for i, kind in plan if i < len(profiles)},
            pace_ms=LIVE_PACE_MS,
        )
        for doc in docs:
            clocks[str(doc["HOSTNAME"])] = max(
                clocks[str(doc["HOSTNAME"])], int(str(doc["_zl_timestamp"]))
            )
        index_documents(client, LIVE_INDEX, docs)
        incidents.extend(injected)
        cycle_no += 1
        report = cluster_cycle(settings, client, detectors, stop)
        s = report.summary()
        _say(
            f"      cycle {cycle_no}: {len(docs):,} new events arrived; read {s['events_read']:,} "
            f"from {s['hosts_seen']} hosts, scored {sum(report.events_scored.values()):,}, "
            f"wrote {sum(report.anomalies_written.values())} anomalies in {s['duration_s']:.2f}s"
        )

    _say(f"[4/5] running {cycles} scheduled cycles (every {settings.interval_seconds:.0f}s) ...")
    run_every(settings.interval_seconds, demo_cycle, max_cycles=cycles)
    client.indices.refresh(index=settings.anomaly_index)
    return _report(client, settings, incidents, node.url, keep_node)


def _report(
    client: OpenSearch, settings: Settings, incidents: list[Incident], url: str, keep_node: bool
) -> int:
    hits = client.search(
        index=settings.anomaly_index,
        body={"size": 10_000, "sort": [{"host": "asc"}, {"@timestamp": "asc"}]},
    )["hits"]["hits"]
    by_host: dict[str, list[dict]] = {}
    for hit in hits:
        by_host.setdefault(hit["_source"]["host"], []).append(hit["_source"])
    incident_of = {u: i for i in incidents for u in i.log_uuids}
    _say(f"[5/5] findings: {len(hits)} anomalies on {len(by_host)} hosts\n")
    for host, docs in sorted(by_host.items()):
        matched = {incident_of[d["log_uuid"]].kind for d in docs if d["log_uuid"] in incident_of}
        label = f"injected: {', '.join(sorted(matched))}" if matched else "no incident injected"
        _say(f"  {host} ({label})")
        for model in MODELS:
            mine = [d for d in docs if d["model"]["name"] == model]
            if not mine:
                continue
            reasons = dict(Counter(d["reason"] for d in mine))
            _say(f"    {model}: {len(mine)} anomalies {reasons}")
            for d in mine[:2]:
                expected = ", ".join(
                    f"{e['key']} {e['probability']:.2f}" for e in d["expected"][:3]
                )
                _say(
                    f"      {d['event']['key']:<18} rank {d['observed']['rank']:>2}  "
                    f"{(d['event']['message'] or '')[:52]!r}  expected: {expected}"
                )
            if len(mine) > 2:
                _say(f"      ... {len(mine) - 2} more")
    flagged = {h["_source"]["log_uuid"] for h in hits}
    found = [i for i in incidents if flagged.intersection(i.log_uuids)]
    _say(f"\nincidents found: {len(found)}/{len(incidents)}")
    for incident in incidents:
        by = [
            m
            for m in MODELS
            if any(
                h["_source"]["log_uuid"] in incident.log_uuids
                and h["_source"]["model"]["name"] == m
                for h in hits
            )
        ]
        mark = f"found by {' + '.join(by)}" if by else "MISSED"
        _say(f"  [{mark}] {incident.host} {incident.kind}: {incident.description}")
    for model in MODELS:
        outside = {
            h["_source"]["log_uuid"]
            for h in hits
            if h["_source"]["model"]["name"] == model
            and h["_source"]["log_uuid"] not in incident_of
        }
        _say(f"{model}: anomalies outside injected incidents: {len(outside)}")
    index, watched = settings.anomaly_index, ",".join(settings.watched_indices)
    _say(f"\nwhere to look: index '{index}' at {url}")
    _say(f"  curl '{url}/{index}/_search?q=host:host-003&sort=@timestamp:asc&pretty'")
    _say(f"  Dashboards / Kibana: index pattern '{index}', time field '@timestamp'")
    _say(f"  pivot to the raw logs: log_uuid and window.log_uuids on '{watched}'")
    _say(f"  per-host cursors and context: index '{settings.state_index}'")
    if not keep_node:
        _say("  (the demo node stops now; run with --keep-node to explore the index afterwards)")
    return 0 if len(found) == len(incidents) else 1
