"""The core loop against a real OpenSearch node: read -> encode -> DeepLog -> annotate ->
checkpoint, across cycles, with the guarantees the product promises."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.app.main import main as cli_main
from sidecar.app.settings import Settings
from sidecar.app.wiring import model_config
from sidecar.cluster.reader import ClusterSource
from sidecar.errors import WriteError
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.types import InputStats
from tests.helpers import (
    INCIDENTS,
    T0,
    TRAIN_HOSTS,
    flagged_in_one_pass,
    read_jsonl,
    to_events,
    write_jsonl,
)
from tests.integration.conftest import Deployment
from tests.integration.support import (
    free_port,
    http_get,
    last_event_per_host,
    metric,
    start_sidecar,
    wait_for,
)
from tests.receiver import Receiver, receiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROFILES = fleet(TRAIN_HOSTS)


def batch(seed: int, start_ms: int, incidents: dict[str, str], events: int = 300, lead=None):
    return documents_with_incidents(
        PROFILES, start_ms, events, seed=seed, incidents=incidents, lead=lead
    )


def test_one_cycle_finds_the_injected_incidents(deployment: Deployment) -> None:
    docs, incidents = batch(2, T0 + 10**8, INCIDENTS)
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle()

    assert report.events_read == len(docs)
    assert report.hosts_seen == TRAIN_HOSTS
    anomalies = deployment.anomalies()
    flagged = {a["log_uuid"] for a in anomalies}
    for incident in incidents:
        assert flagged & set(incident.log_uuids), f"{incident.kind} on {incident.host} missed"
    found = {a["log_uuid"]: a for a in anomalies}
    cleared = found[next(i for i in incidents if i.kind == "audit_log_cleared").log_uuids[0]]
    assert cleared["reason"] == "unseen_key" and cleared["event"]["id"] == "1102"
    assert cleared["event"]["index"] == deployment.logs
    assert cleared["model"] == {
        "name": "deeplog",
        "version": deployment.trained.version,
        "window_size": 10,
        "top_g": 9,
    }
    assert len(cleared["window"]["log_uuids"]) == 10 and len(cleared["expected"]) == 9
    # Every host's cursor sits on its last event, saved with the context tail.
    states = deployment.states()
    for host, (ts, uuid) in last_event_per_host(docs).items():
        assert (states[host]["cursor_timestamp_ms"], states[host]["cursor_log_uuid"]) == (ts, uuid)
        assert len(states[host]["tail"]) == 10


def test_a_cycle_with_no_new_data_writes_nothing(deployment: Deployment) -> None:
    docs, _ = batch(2, T0 + 10**8, INCIDENTS)
    index_documents(deployment.client, deployment.logs, docs)
    first = deployment.cycle()
    before = deployment.anomalies()

    second = deployment.cycle()

    assert sum(first.anomalies_written.values()) == len(before) > 0
    assert second.events_read == 0 and second.hosts_seen == 0
    assert sum(second.anomalies_written.values()) == 0
    assert len(deployment.anomalies()) == len(before)


def test_windows_continue_across_the_cycle_boundary(deployment: Deployment) -> None:
    first_docs, _ = batch(2, T0 + 10**8, {})
    index_documents(deployment.client, deployment.logs, first_docs)
    deployment.cycle()
    # The next batch starts with a brute force on host-003: its first events can only be
    # judged with the previous cycle's events as their window.
    start = max(int(d["_zl_timestamp"]) for d in first_docs) + 1_000
    second_docs, incidents = batch(3, start, {"host-003": "brute_force"}, lead=0)
    index_documents(deployment.client, deployment.logs, second_docs)

    report = deployment.cycle()

    assert report.events_read == len(second_docs)
    anomalies = {a["log_uuid"]: a for a in deployment.anomalies()}
    assert set(anomalies) == flagged_in_one_pass(deployment.trained, first_docs + second_docs)
    first_uuids = {d["log_uuid"] for d in first_docs}
    brute = [anomalies[u] for u in incidents[0].log_uuids if u in anomalies]
    assert brute, "brute force not flagged"
    straddling = [a for a in brute if set(a["window"]["log_uuids"]) & first_uuids]
    assert straddling, "no flagged window reached back into the previous cycle"
    assert all(a["window"]["padded"] == 0 for a in brute)


def test_redoing_a_range_writes_no_duplicates(deployment: Deployment) -> None:
    docs, _ = batch(2, T0 + 10**8, INCIDENTS)
    index_documents(deployment.client, deployment.logs, docs)
    first = deployment.cycle()
    written = sum(first.anomalies_written.values())
    # Forget every cursor, as after losing the state index: the same range is read again.
    deployment.client.indices.delete(index=deployment.settings.state_index)

    redo = deployment.cycle()

    assert redo.events_read == len(docs)
    assert redo.anomalies_already_present == written
    assert len(deployment.anomalies()) == written
    deployment.client.indices.refresh(index=deployment.settings.anomaly_search)
    dupes = deployment.client.search(
        index=deployment.settings.anomaly_search,
        body={
            "size": 0,
            "aggs": {"ids": {"terms": {"field": "log_uuid", "min_doc_count": 2, "size": 10}}},
        },
    )["aggregations"]["ids"]["buckets"]
    assert dupes == []


def test_embedded_and_cluster_modes_flag_the_same_events(
    deployment: Deployment, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same detector in both modes: DeepLog alone under the top-g rule, as deployment.cycle.
    monkeypatch.setenv("SIDECAR_MODELS", "deeplog")
    monkeypatch.setenv("SIDECAR_VERDICT_RULE", "top_g")
    docs, _ = batch(4, T0 + 10**8, INCIDENTS)
    index_documents(deployment.client, deployment.logs, docs)
    deployment.cycle()
    cluster = {(a["model"]["name"], a["log_uuid"]) for a in deployment.anomalies()}

    events_file = write_jsonl(tmp_path / "events.jsonl", docs)
    out = tmp_path / "anomalies.jsonl"
    code = cli_main(
        [
            "score",
            "--from-file",
            str(events_file),
            "--to-file",
            str(out),
            "--model-dir",
            str(model_dir),
        ]
    )

    assert code == 0
    embedded = {(line["model"]["name"], line["log_uuid"]) for line in read_jsonl(out)}
    assert embedded == cluster and len(cluster) > 0


@pytest.mark.parametrize(
    "timestamp_mapping",
    [
        None,  # dynamic: an epoch-ms string becomes text + .keyword
        {"type": "long"},
        {"type": "date", "format": "epoch_millis"},
    ],
    ids=["dynamic-string", "long", "date"],
)
def test_the_timestamp_works_as_string_number_or_date(
    deployment: Deployment, timestamp_mapping: dict | None
) -> None:
    docs, _ = batch(5, T0 + 10**8, INCIDENTS, events=150)
    if timestamp_mapping is not None:
        deployment.client.indices.create(
            index=deployment.logs,
            body={
                "mappings": {
                    "properties": {
                        "_zl_timestamp": timestamp_mapping,
                        "log_uuid": {"type": "keyword"},
                        "HOSTNAME": {"type": "keyword"},
                    }
                }
            },
        )
        for d in docs:
            d["_zl_timestamp"] = int(d["_zl_timestamp"])  # as a shipper would send a number
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle()

    assert report.events_read == len(docs)
    assert {a["log_uuid"] for a in deployment.anomalies()} == flagged_in_one_pass(
        deployment.trained, docs
    )


def test_train_reads_a_time_range_of_the_watched_indices(
    deployment: Deployment, training_docs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_documents(deployment.client, deployment.logs, training_docs)
    late, _ = batch(6, T0 + 10**9, {"host-001": "audit_log_cleared"})  # outside the range
    index_documents(deployment.client, deployment.logs, late)
    spill = tmp_path / "spill"
    for name, value in {
        "SIDECAR_CLUSTER_URLS": deployment.settings.cluster_urls[0],
        "SIDECAR_WATCHED_INDICES": f"{deployment.prefix}-logs-*",
        "SIDECAR_TRAIN_EPOCHS": "2",
        "SIDECAR_TRAINING_SPILL_DIR": str(spill),
    }.items():
        monkeypatch.setenv(name, value)
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + 10**8) / 1000))

    code = cli_main(
        ["train", "--start", "2023-01-01T00:00:00Z", "--end", end, "--model-dir", str(tmp_path)]
    )

    assert code == 0
    from sidecar.models.artifacts import load_artifact

    artifact = load_artifact(tmp_path, "deeplog")
    assert artifact.vocabulary == deployment.trained.vocabulary  # 1102 was outside the range
    assert artifact.manifest["training"]["events"] == len(training_docs)
    # Read page by page onto local disk and walked host by host, the range trains the very
    # model the same events held in memory train; the spilled events are gone afterwards.
    assert list(spill.iterdir()) == []
    in_memory = train_model(
        "deeplog",
        group_by_host(to_events(training_docs)),
        model_config("deeplog", Settings(train_epochs=2)),
        tmp_path / "in-memory",
        {},
    )
    assert artifact.manifest["weights_sha256"] == in_memory.manifest["weights_sha256"]


def successful_cycles(port: int, sample: str = 'sidecar_cycles_total{outcome="success"}') -> float:
    """sidecar_cycles_total{outcome="success"} (or `sample`) on /metrics; 0 before the server
    listens or before the first cycle has ended."""
    try:
        status, body = http_get(port, "/metrics")
    except OSError:  # not listening yet (connection refused)
        return 0
    if status != 200:
        return 0
    try:
        return metric(body.decode(), sample)
    except AssertionError:  # no cycle has succeeded yet: the labelled sample is not there
        return 0


def test_the_scheduled_service_runs_cycles_serves_probes_and_stops_cleanly_on_sigterm(
    deployment: Deployment, model_dir: Path
) -> None:
    with receiver("/hooks/incidents") as rx:
        run_scheduled_service(deployment, model_dir, rx)


NOTIFIED = 'sidecar_notifications_total{outcome="sent"}'


def notifiable_incidents(deployment: Deployment) -> list[str]:
    return sorted(i["incident_id"] for i in deployment.incidents() if i["grade"] >= 50.0)


def run_scheduled_service(deployment: Deployment, model_dir: Path, rx: Receiver) -> None:
    port = free_port()
    docs, _ = batch(7, T0 + 10**8, INCIDENTS, events=100)
    index_documents(deployment.client, deployment.logs, docs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "SIDECAR_CLUSTER_URLS": deployment.settings.cluster_urls[0],
            "SIDECAR_WATCHED_INDICES": f"{deployment.prefix}-logs-*",
            "SIDECAR_ANOMALY_INDEX": deployment.settings.anomaly_index,
            "SIDECAR_STATE_INDEX": deployment.settings.state_index,
            "SIDECAR_INCIDENT_INDEX": deployment.settings.incident_index,
            "SIDECAR_MODEL_DIR": str(model_dir),
            "SIDECAR_MODELS": "deeplog",  # what the `trained` fixture put in model_dir
            "SIDECAR_READ_LAG_SECONDS": "0",
            "SIDECAR_INITIAL_LOOKBACK_SECONDS": str(20 * 365 * 86_400),
            "SIDECAR_INTERVAL_SECONDS": "1",
            "SIDECAR_LOG_FORMAT": "json",
            "SIDECAR_PASSWORD": "never-logged-secret",
            "SIDECAR_USERNAME": "nobody",  # the dev node has no security plugin: ignored by it
            "SIDECAR_HTTP_HOST": "127.0.0.1",
            "SIDECAR_HTTP_PORT": str(port),
            # The notifier thread, to a local webhook: every incident of the medium band once.
            "SIDECAR_NOTIFY_URL": rx.url,
            "SIDECAR_NOTIFY_FORMAT": "webhook",
            "SIDECAR_NOTIFY_MIN_BAND": "medium",
            "SIDECAR_NOTIFY_INTERVAL_SECONDS": "1",
            "SIDECAR_NOTIFY_AUTHORIZATION": "Bearer never-logged-token",
            "SIDECAR_NOTIFY_INDEX": deployment.settings.notify_index,
        }
    )
    process = start_sidecar(env, "run")
    try:
        # Every host read and checkpointed, and at least one more (empty) cycle after it;
        # every incident notified.
        wait_for(
            lambda: (
                len(deployment.states()) == TRAIN_HOSTS
                and successful_cycles(port) >= 2
                and sorted(r.body["incident_id"] for r in rx.accepted())
                == notifiable_incidents(deployment)
                and successful_cycles(port, NOTIFIED) == len(rx.accepted())
            ),
            120,
            "every host's state, two successful cycles on /metrics, every incident notified",
            interval_s=0.5,
        )
        health = http_get(port, "/healthz")
        ready = http_get(port, "/readyz")
        metrics = http_get(port, "/metrics")[1].decode()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    assert len(deployment.states()) == TRAIN_HOSTS
    assert err.count('"event": "cycle_finished"') >= 2
    assert '"event": "shutdown_requested"' in err and '"event": "scheduler_stopped"' in err
    assert "never-logged-secret" not in err and "never-logged-token" not in err
    notified = notifiable_incidents(deployment)
    assert notified and sorted(r.body["incident_id"] for r in rx.received) == notified
    assert {r.headers["authorization"] for r in rx.received} == {"Bearer never-logged-token"}
    assert metric(metrics, NOTIFIED) == len(notified)
    assert health == (200, b'{"alive":true}')
    assert ready[0] == 200 and orjson.loads(ready[1])["ready"] is True
    assert metric(metrics, "sidecar_events_read_total") == len(docs)
    assert metric(metrics, 'sidecar_events_scored_total{model="deeplog"}') == len(docs)
    assert metric(metrics, 'sidecar_cycles_total{outcome="success"}') >= 2
    assert metric(metrics, "sidecar_last_successful_cycle_timestamp_seconds") > T0 / 1000
    assert 'sidecar_host_lag_seconds{host="host-003"}' in metrics
    # The process's own figures, and the freed memory handed back after every cycle (the
    # counter exists once a cycle has run; how much it holds depends on the heap's shape).
    assert metric(metrics, "process_resident_memory_bytes") > 100 * 2**20  # torch alone
    assert metric(metrics, "process_open_fds") > 0
    assert metric(metrics, "sidecar_memory_released_bytes_total") >= 0


def test_a_watched_pattern_matching_no_index_is_an_empty_cycle(deployment: Deployment) -> None:
    report = deployment.cycle()
    assert report.events_read == 0 and report.hosts_seen == 0


def test_a_rejected_write_leaves_every_cursor_where_it_was(deployment: Deployment) -> None:
    docs, incidents = batch(8, T0 + 10**8, INCIDENTS, events=120)
    index_documents(deployment.client, deployment.logs, docs)
    # The partition the batch's results go to, made before the cycle so it can be blocked.
    anomaly_index = deployment.settings.partitioning.index_for(
        deployment.settings.anomaly_index, T0 + 10**8
    )
    deployment.client.indices.create(index=anomaly_index)
    # A write block makes the cluster refuse every bulk item (403), as a full disk or a
    # misconfigured role would.
    deployment.client.indices.put_settings(index=anomaly_index, body={"index.blocks.write": True})
    try:
        with pytest.raises(WriteError):
            deployment.cycle()
        assert deployment.states() == {}
    finally:
        deployment.client.indices.put_settings(
            index=anomaly_index, body={"index.blocks.write": False}
        )

    retry = deployment.cycle()

    assert retry.events_read == len(docs)
    flagged = {a["log_uuid"] for a in deployment.anomalies()}
    assert all(flagged & set(i.log_uuids) for i in incidents)
    assert len(deployment.states()) == TRAIN_HOSTS


def test_deeplog_and_loganomaly_each_write_their_own_annotations(
    deployment: Deployment, trained_loganomaly
) -> None:
    docs, incidents = batch(9, T0 + 10**8, INCIDENTS, events=200)
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle(deployment.trained, trained_loganomaly)

    assert report.events_scored == {"deeplog": len(docs), "loganomaly": len(docs)}
    anomalies = deployment.anomalies()
    by_model: dict[str, set[str]] = {}
    for a in anomalies:
        by_model.setdefault(a["model"]["name"], set()).add(a["log_uuid"])
        assert a["_id"].startswith(a["model"]["name"] + "-")
    assert set(by_model) == {"deeplog", "loganomaly"}
    for incident in incidents:
        for model, flagged in by_model.items():
            assert flagged & set(incident.log_uuids), f"{model} missed {incident.kind}"
    cleared = next(i for i in incidents if i.kind == "audit_log_cleared").log_uuids[0]
    (doc,) = [
        a for a in anomalies if a["log_uuid"] == cleared and a["model"]["name"] == "loganomaly"
    ]
    assert doc["reason"] == "unseen_key" and doc["template"]["matched"] is False
    assert doc["template"]["text"].startswith("The audit log was cleared")


def test_two_replicas_split_the_hosts_and_together_match_one_sidecar(
    deployment: Deployment,
) -> None:
    docs, incidents = batch(10, T0 + 10**8, INCIDENTS, events=150)
    index_documents(deployment.client, deployment.logs, docs)
    single = flagged_in_one_pass(deployment.trained, docs)
    # Not vacuous: the single sidecar flags every injected incident, and the incident hosts
    # fall in both shards (host-001 and -003 in shard 0, host-005 and -007 in shard 1).
    assert single, "the single-sidecar reference flagged nothing"
    missed = [i.kind for i in incidents if not single & set(i.log_uuids)]
    assert len(incidents) == len(INCIDENTS) and not missed, missed
    base = deployment.settings

    reports = []
    for index in range(2):
        deployment.settings = base.model_copy(update={"shard_count": 2, "shard_index": index})
        reports.append(deployment.cycle())

    assert all(sum(r.anomalies_written.values()) > 0 for r in reports), reports
    assert sum(r.hosts_seen for r in reports) == TRAIN_HOSTS
    assert sum(r.events_read for r in reports) == len(docs)
    assert {a["log_uuid"] for a in deployment.anomalies()} == single
    assert len(deployment.states()) == TRAIN_HOSTS


def test_ten_thousand_events_sharing_one_timestamp_cross_pages_without_loss(
    deployment: Deployment,
) -> None:
    docs, _ = batch(11, T0 + 10**8, {}, events=40)
    same = [
        {
            **docs[i % len(docs)],
            "HOSTNAME": "host-001",
            "_zl_timestamp": str(T0 + 10**8),
            "log_uuid": f"same-ts-{i:05d}",
        }
        for i in range(10_000)
    ]
    index_documents(deployment.client, deployment.logs, same)
    base = deployment.settings
    deployment.settings = base.model_copy(update={"page_size": 700})  # boundaries mid-timestamp

    first = deployment.cycle()
    second = deployment.cycle()

    assert first.events_read == 10_000 and first.events_scored["deeplog"] == 10_000
    assert second.events_read == 0
    state = deployment.states()["host-001"]
    assert (state["cursor_timestamp_ms"], state["cursor_log_uuid"]) == (T0 + 10**8, "same-ts-09999")


def test_an_anomaly_partition_deleted_between_cycles_comes_back_from_its_template(
    deployment: Deployment,
) -> None:
    first_docs, _ = batch(12, T0 + 10**8, {"host-001": "audit_log_cleared"}, events=60)
    index_documents(deployment.client, deployment.logs, first_docs)
    deployment.cycle()
    partition = deployment.settings.partitioning.index_for(
        deployment.settings.anomaly_index, T0 + 10**8
    )
    deployment.client.indices.delete(index=partition)
    start = max(int(d["_zl_timestamp"]) for d in first_docs) + 1_000
    later, incidents = batch(13, start, {"host-001": "audit_log_cleared"}, events=60)
    index_documents(deployment.client, deployment.logs, later)

    report = deployment.cycle()

    assert report.events_read == len(later)
    flagged = {a["log_uuid"] for a in deployment.anomalies()}
    assert set(incidents[0].log_uuids) <= flagged
    mapping = deployment.client.indices.get_mapping(index=deployment.settings.anomaly_search)
    assert list(mapping) == [partition]
    assert mapping[partition]["mappings"]["dynamic"] == "strict"


def test_context_for_many_hosts_comes_back_per_host_in_order(deployment: Deployment) -> None:
    # More hosts than one multi-search request carries (50).
    docs, _ = documents_with_incidents(fleet(60), T0 + 10**8, 80, seed=12, incidents={})
    index_documents(deployment.client, deployment.logs, docs)
    by_host: dict[str, list[dict]] = {}
    for d in sorted(docs, key=lambda d: (int(str(d["_zl_timestamp"])), str(d["log_uuid"]))):
        by_host.setdefault(str(d["HOSTNAME"]), []).append(d)
    hosts = sorted(by_host)
    # Each host asked for a different moment.
    before = {h: int(str(by_host[h][40 + i % 20]["_zl_timestamp"])) for i, h in enumerate(hosts)}
    before["host-that-never-logged"] = T0 + 10**9
    settings = deployment.settings
    source = ClusterSource(deployment.client, settings.watched_indices, settings.fields)

    earlier = source.events_before(before, 7, InputStats())

    assert set(earlier) == set(before)
    assert earlier["host-that-never-logged"] == []
    for host in hosts:
        expected = [
            str(d["log_uuid"]) for d in by_host[host] if int(str(d["_zl_timestamp"])) < before[host]
        ][-7:]
        assert [e.log_uuid for e in earlier[host]] == expected
        assert len(expected) == 7
