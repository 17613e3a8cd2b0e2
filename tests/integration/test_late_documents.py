"""Late documents on a real node: a document indexed after its neighbours were scored is scored
in its place, and what the first reading flagged only because it was missing is taken back,
so the anomaly and incident indices end as one undisturbed pass over the same events leaves
them (nothing an analyst marked is removed)."""

from __future__ import annotations

import time

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.cluster.feedback import set_verdict
from tests.helpers import T0, TRAIN_HOSTS, flagged_in_one_pass
from tests.integration.conftest import Deployment
from tests.integration.support import assert_same_incidents, duplicated_anomalies

PROFILES = fleet(TRAIN_HOSTS)


def _recent(incidents: dict[str, str]) -> tuple[list[dict], list]:
    """The 120-events-per-host test stream, moved to just before now: lateness is measured
    against the clock."""
    generated, injected = documents_with_incidents(PROFILES, T0, 120, seed=28, incidents=incidents)
    shift = int(time.time() * 1000) - 60_000 - max(int(d["_zl_timestamp"]) for d in generated)
    return [
        {**d, "_zl_timestamp": str(int(d["_zl_timestamp"]) + shift)} for d in generated
    ], injected


def _with_lateness(deployment: Deployment) -> Deployment:
    return Deployment(
        deployment.settings.model_copy(update={"lateness_seconds": 600}),
        deployment.client,
        deployment.trained,
        deployment.prefix,
    )


def test_late_documents_within_the_lateness_window_are_scored_in_their_place(
    deployment: Deployment,
) -> None:
    docs, incidents = _recent({"host-003": "brute_force"})
    late_uuids = set(incidents[0].log_uuids)
    on_time = [d for d in docs if d["log_uuid"] not in late_uuids]
    late = [d for d in docs if d["log_uuid"] in late_uuids]
    dep = _with_lateness(deployment)
    index_documents(dep.client, dep.logs, on_time)
    before = dep.cycle()
    assert not {a["log_uuid"] for a in dep.anomalies()} & late_uuids

    index_documents(dep.client, dep.logs, late)  # behind host-003's cursor now
    after = dep.cycle()

    assert after.late_documents == len(late)
    assert after.rewound_hosts == {"host-003"}
    flagged = {a["log_uuid"] for a in dep.anomalies()}
    assert late_uuids & flagged, "the late incident was not found"
    assert flagged == flagged_in_one_pass(dep.trained, docs)
    assert_same_incidents(dep, docs)
    assert duplicated_anomalies(dep) == []
    quiet = dep.cycle()
    assert quiet.late_documents == 0 and quiet.events_read == 0
    print(
        f"\nlate data: {before.events_read} on time, {after.late_documents} late, "
        f"{after.events_read} re-read"
    )


def test_verdicts_given_for_lack_of_a_late_document_are_withdrawn_when_it_arrives(
    deployment: Deployment,
) -> None:
    docs, _ = _recent({"host-003": "brute_force"})
    # Six file-handle requests (4656) of one host arrive late; without them the handle
    # operations that follow look out of order to DeepLog.
    host = [d for d in docs if d["HOSTNAME"] == "host-005"]
    late = [d for d in host[40:80] if d["EVENTID"] == "4656"]
    late_uuids = {d["log_uuid"] for d in late}
    on_time = [d for d in docs if d["log_uuid"] not in late_uuids]
    undisturbed = flagged_in_one_pass(deployment.trained, docs)
    dep = _with_lateness(deployment)
    index_documents(dep.client, dep.logs, on_time)
    dep.cycle()
    stored = dep.anomalies()
    false = {a["log_uuid"] for a in stored} - undisturbed
    assert len(false) == 6, "the gap made no false verdicts: the test shows nothing"
    false_incidents = {a["incident_id"] for a in stored if a["log_uuid"] in false}
    # An analyst marks one of them before the late documents arrive: that mark stays.
    marked = next(a for a in stored if a["log_uuid"] in false)
    set_verdict(
        dep.client, dep.settings.anomaly_search, marked["_id"], "false_positive", "ana", None
    )

    index_documents(dep.client, dep.logs, late)
    after = dep.cycle()

    assert after.rewound_hosts == {"host-005"}
    assert (after.anomalies_withdrawn, after.incidents_withdrawn) == (5, len(false_incidents))
    assert {a["log_uuid"] for a in dep.anomalies()} == undisturbed | {marked["log_uuid"]}
    assert not {i["incident_id"] for i in dep.incidents()} & false_incidents
    assert_same_incidents(dep, docs)
    assert duplicated_anomalies(dep) == []
    again = dep.cycle()
    assert (again.late_documents, again.events_read, again.anomalies_withdrawn) == (0, 0, 0)
