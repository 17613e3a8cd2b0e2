"""Incidents against a real node: the shipped (calibrated) verdicts, exactly-once incident
documents under redo and across cycle boundaries, and the furthest revision kept in a race."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.app.alerting import alert_definition, band_start
from sidecar.app.notifier import Notifier, NotifierConfig
from sidecar.cluster.feedback import (
    confirmed_incidents,
    pending_false_positives,
    set_verdict,
    spread_incident_verdicts,
    unreviewed_incidents,
)
from sidecar.cluster.notifications import ClusterNotices
from sidecar.cluster.writer import IncidentSink
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, one_pass
from tests.integration.conftest import Deployment
from tests.integration.support import (
    assert_nothing_lost,
    assert_same_incidents,
    sidecar_env,
    start_sidecar,
)
from tests.receiver import receiver

pytestmark = pytest.mark.integration

PROFILES = fleet(TRAIN_HOSTS)


def test_the_shipped_defaults_report_each_injected_incident_as_one_incident_document(
    deployment: Deployment, model_dir: Path, trained_loganomaly
) -> None:
    docs, injected = documents_with_incidents(
        PROFILES, T0 + 10**8, 300, seed=2, incidents=INCIDENTS
    )
    index_documents(deployment.client, deployment.logs, docs)
    # The shipped verdict rule and model set (both trained into model_dir by the fixtures).
    env = sidecar_env(
        deployment,
        model_dir,
        SIDECAR_VERDICT_RULE="calibrated",
        SIDECAR_MODELS="deeplog,loganomaly",
    )

    sidecar = start_sidecar(env, "run", "--once")
    out, err = sidecar.communicate(timeout=300)

    assert sidecar.returncode == 0, err[-3000:]
    summary = orjson.loads(out)
    incidents = deployment.incidents()
    anomalies = deployment.anomalies()
    assert summary["incidents_opened"] == len(incidents) > 0
    for incident in injected:
        hits = [i for i in incidents if set(i["log_uuids"]) & set(incident.log_uuids)]
        assert len(hits) == 1, f"{incident.kind} on {incident.host}: {len(hits)} incidents"
        assert hits[0]["host"] == incident.host
    # Quiet: nothing outside the injected incidents, and every annotation points at its
    # incident (the drill-down); the brute force's repetitions are counted, not written.
    injected_uuids = {u for i in injected for u in i.log_uuids}
    assert all(set(i["log_uuids"]) & injected_uuids for i in incidents), [
        (i["host"], i["keys"]) for i in incidents if not set(i["log_uuids"]) & injected_uuids
    ]
    by_id = {i["incident_id"]: i for i in incidents}
    assert all(a["incident_id"] in by_id for a in anomalies)
    assert sum(i["anomaly_documents"] for i in incidents) == len(anomalies)
    assert all(0 <= i["grade"] <= 100 and 0 < i["confidence"] <= 1 for i in incidents)
    assert all(a["p_value"] is not None and a["grade"] is not None for a in anomalies)
    assert_alert_searches_find(deployment, incidents)
    assert_each_incident_notified_once(deployment, incidents)
    print(
        f"\nshipped defaults: {len(docs)} events, {len(incidents)} incidents "
        f"{sorted((i['host'], i['event_count'], i['grade']) for i in incidents)}, "
        f"{len(anomalies)} annotations"
    )


def assert_alert_searches_find(deployment: Deployment, incidents: list[dict]) -> None:
    """The searches the alert definitions run (sidecar/app/alerting.py), run on the real
    incident index as OpenSearch Alerting and Kibana would run them: every incident detected in
    the last hour at or above the band comes back, and nothing else."""
    index = deployment.settings.incident_search
    period_end = int(time.time() * 1000)
    for band in ("medium", "high", "critical"):
        expected = {i["incident_id"] for i in incidents if i["grade"] >= band_start(band)}
        if band == "medium":
            assert expected, "no incident reaches the medium band: the check would prove nothing"
        monitor = alert_definition("opensearch", index, band, period_minutes=60)
        search = orjson.loads(
            orjson.dumps(monitor["inputs"][0]["search"]["query"])  # type: ignore[index]
            .decode()
            .replace("{{period_end}}", str(period_end))
        )
        hits = deployment.client.search(index=index, body=search)["hits"]["hits"]
        assert {h["_source"]["incident_id"] for h in hits} == expected, ("opensearch", band)
        params = alert_definition("kibana", index, band, period_minutes=60)["params"]
        window = {"range": {params["timeField"]: {"gte": "now-60m"}}}  # type: ignore[index]
        rule_query = orjson.loads(params["esQuery"])["query"]  # type: ignore[index]
        body = {"size": 100, "query": {"bool": {"filter": [rule_query, window]}}}
        hits = deployment.client.search(index=index, body=body)["hits"]["hits"]
        assert {h["_source"]["incident_id"] for h in hits} == expected, ("kibana", band)


def assert_each_incident_notified_once(deployment: Deployment, incidents: list[dict]) -> None:
    """The notifier reads the real incident index as its outbox: a receiver that fails twice
    and recovers gets every incident of the band once, in the order of their updates; the
    records land in the notification index, so a restarted notifier sends nothing again."""
    settings = deployment.settings
    expected = sorted(
        (i for i in incidents if i["grade"] >= 50.0),
        key=lambda i: (i["updated_at"], i["incident_id"]),
    )
    assert expected, "no incident reaches the medium band: the check would prove nothing"

    def notices() -> ClusterNotices:
        return ClusterNotices(deployment.client, settings.incident_search, settings.notify_index)

    config = NotifierConfig(url="", min_band="medium", first_backoff_s=0.01)
    with receiver(statuses=[503, 502]) as rx:
        config = replace(config, url=rx.url)
        assert Notifier(notices(), config).round(threading.Event()) == len(expected)
        assert Notifier(notices(), config).round(threading.Event()) == 0  # after a restart
    sent = [r.body[0]["labels"]["incident_id"] for r in rx.accepted()]
    assert sent == [i["incident_id"] for i in expected]
    assert [r.status for r in rx.received[:3]] == [503, 502, 200]
    deployment.client.indices.refresh(index=settings.notify_index)
    body = {"size": 1_000, "query": {"match_all": {}}}
    records = deployment.client.search(index=settings.notify_index, body=body)["hits"]["hits"]
    assert sorted(r["_id"] for r in records) == sorted(sent)
    assert {r["_source"]["status"] for r in records} == {200}


def test_many_small_cycles_write_the_same_incidents_as_one_and_a_redo_adds_nothing(
    deployment: Deployment,
) -> None:
    docs, injected = documents_with_incidents(
        PROFILES, T0 + 10**8, 300, seed=5, incidents=INCIDENTS
    )
    docs.sort(key=lambda d: int(d["_zl_timestamp"]))
    # The brute force flags more events than one incident keeps as documents.
    reference_anomalies, reference_incidents = one_pass(deployment.trained, docs)
    assert any(i["event_count"] > i["anomaly_documents"] for i in reference_incidents.values())

    slices = [docs[i : i + len(docs) // 5 + 1] for i in range(0, len(docs), len(docs) // 5 + 1)]
    for piece in slices:
        index_documents(deployment.client, deployment.logs, piece)
        deployment.cycle()

    assert_nothing_lost(deployment, docs, {a["log_uuid"] for a in reference_anomalies.values()})
    assert_same_incidents(deployment, docs)
    versions = {i["incident_id"]: i["_version"] for i in deployment.incidents()}

    # Forget every cursor and incident state: the whole range is read and folded again.
    deployment.client.indices.delete(index=deployment.settings.state_index)
    redo = deployment.cycle()

    assert redo.events_read == len(docs)
    assert redo.anomalies_already_present == len(reference_anomalies)
    assert {i["incident_id"]: i["_version"] for i in deployment.incidents()} == versions
    assert_same_incidents(deployment, docs)
    assert len(injected) == 4


def test_an_older_revision_never_replaces_a_newer_one(deployment: Deployment) -> None:
    settings = deployment.settings
    index = settings.partitioning.index_for(settings.incident_index, 0)
    partitioning = settings.partitioning
    sink = IncidentSink(
        deployment.client, settings.incident_index, refresh="true", partitioning=partitioning
    )

    def doc(revision: int) -> dict:
        return {"incident_id": "inc-x", "host": "host-001", "revision": revision, "@timestamp": 0}

    assert sink.write([("inc-x", doc(5))]).created == 1
    late = sink.write([("inc-x", doc(3))])  # a writer that lags behind
    again = sink.write([("inc-x", doc(5))])  # a redo of the same revision
    newer = sink.write([("inc-x", doc(7))])

    assert (late.already_present, again.already_present, newer.created) == (1, 1, 1)
    stored = deployment.client.get(index=index, id="inc-x")
    assert stored["_source"]["revision"] == 7
    assert stored["_version"] == 7_000


def test_a_verdict_on_an_incident_reaches_every_member(deployment: Deployment) -> None:
    docs, injected = documents_with_incidents(
        PROFILES, T0 + 10**8, 300, seed=2, incidents=INCIDENTS
    )
    index_documents(deployment.client, deployment.logs, docs)
    deployment.cycle()
    brute = next(i for i in injected if i.kind == "brute_force")
    incidents = deployment.incidents()
    (storm,) = [i for i in incidents if set(i["log_uuids"]) & set(brute.log_uuids)]
    other = next(i for i in incidents if i["incident_id"] != storm["incident_id"])
    settings = deployment.settings

    set_verdict(
        deployment.client, settings.incident_search, storm["_id"], "false_positive", "ana", None
    )
    set_verdict(
        deployment.client, settings.incident_search, other["_id"], "true_positive", "ana", None
    )
    spread = spread_incident_verdicts(
        deployment.client, settings.incident_search, settings.anomaly_search
    )

    members = [a for a in deployment.anomalies() if a["incident_id"] == storm["incident_id"]]
    assert spread == storm["anomaly_documents"] + other["anomaly_documents"]
    assert members and all(a["feedback"]["verdict"] == "false_positive" for a in members)
    assert all(a["feedback"]["by"] == "ana" for a in members)
    # The online update reads these as pending marks; the incidents are done.
    pending = pending_false_positives(deployment.client, settings.anomaly_search, "deeplog")
    assert len(pending) == storm["anomaly_documents"]
    assert (
        spread_incident_verdicts(
            deployment.client, settings.incident_search, settings.anomaly_search
        )
        == 0
    )
    # A confirmed incident confirms all its members for the retraining gate, annotated or not.
    confirmed = confirmed_incidents(
        deployment.client, settings.anomaly_search, 0, 2 * T0, settings.incident_search
    )
    assert set(other["log_uuids"]) <= confirmed
    assert not set(storm["log_uuids"]) & confirmed
    # Retraining withholds only incidents nobody reviewed: both have a verdict now.
    unreviewed = unreviewed_incidents(deployment.client, settings.incident_search, 0, 2 * T0, 0)
    assert unreviewed == {
        u
        for i in incidents
        if i["incident_id"] not in (storm["incident_id"], other["incident_id"])
        for u in i["log_uuids"]
    }
