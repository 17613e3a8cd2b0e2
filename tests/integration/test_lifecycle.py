"""Model lifecycle against a real node: the model store in the cluster (stateless pods),
analysts' false-positive marks learned by the next cycle, rollback, and gated retraining."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.cluster.bootstrap import install_templates
from sidecar.cluster.modelstore import ClusterModelStore
from sidecar.errors import ModelError
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.artifacts import ModelArtifact, load_artifact, save_artifact
from sidecar.models.fitting import TrainingSummary
from sidecar.models.nextkey.build import build_detector
from sidecar.models.parameter.model import TIMING, ParameterConfig
from sidecar.types import HostSequence
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, to_events
from tests.integration.conftest import Deployment
from tests.integration.support import sidecar_env

pytestmark = pytest.mark.integration

PROFILES = fleet(TRAIN_HOSTS)
DAY = 86_400_000


@pytest.fixture(scope="module")
def trained_parameters(training_docs: list, tmp_path_factory: pytest.TempPathFactory):
    """DeepLog's parameter model trained on the normal fleet (closed form, about a second)."""
    return train_model(
        "parameters",
        group_by_host(to_events(training_docs)),
        ParameterConfig(),
        tmp_path_factory.mktemp("parameter-models"),
        {},
    )


def model_index(dep: Deployment) -> str:
    return f"{dep.prefix}-models"


def cluster_store(dep: Deployment, chunk_bytes: int = 1 << 20) -> ClusterModelStore:
    install_templates(
        dep.client, dep.settings.anomaly_index, dep.settings.state_index, None, model_index(dep)
    )
    return ClusterModelStore(dep.client, model_index(dep), chunk_bytes)


def publish(store: ClusterModelStore, artifact: ModelArtifact) -> str:
    saved = save_artifact(
        store,
        artifact.name,
        artifact.net,
        artifact.vocabulary,
        artifact.config,
        TrainingSummary(),
        {},
        {k: v for k, v in artifact.manifest.items() if k in ("semantics", "parameters")},
        tensors=artifact.tensors,
    )
    return saved.version


def sidecar(dep: Deployment, *args: str, **env_extra: str) -> dict | list:
    """Run the CLI as a pod would: models from the cluster, no model directory at all."""
    env = sidecar_env(
        dep,
        Path("/nonexistent/models"),
        SIDECAR_MODEL_STORE="cluster",
        SIDECAR_MODEL_INDEX=model_index(dep),
        # Retraining with the test suite's short schedule (tests/conftest.py FAST).
        SIDECAR_TRAIN_EPOCHS="30",
        SIDECAR_TRAIN_BATCH_SIZE="512",
        **env_extra,
    )
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return orjson.loads(done.stdout[done.stdout.index("{") if args[0] != "models" else 0 :])


def with_fresh_ids(docs: list[dict], tag: str, shift_ms: int) -> list[dict]:
    """The same events again later: same keys and windows, new log_uuids and timestamps."""
    return [
        {
            **d,
            "log_uuid": f"{tag}-{d['log_uuid']}",
            "_zl_timestamp": str(int(d["_zl_timestamp"]) + shift_ms),
        }
        for d in docs
    ]


def test_the_cluster_store_keeps_versions_in_chunks_and_refuses_a_corrupt_one(
    deployment: Deployment, trained: ModelArtifact
) -> None:
    store = cluster_store(deployment, chunk_bytes=64 * 1024)
    version = publish(store, trained)

    loaded = load_artifact(store, "deeplog")

    assert loaded.version == version and store.active("deeplog") == version
    assert loaded.vocabulary == trained.vocabulary
    for key, tensor in trained.net.state_dict().items():
        assert (loaded.net.state_dict()[key] == tensor).all(), key
    events = to_events(documents_with_incidents(PROFILES, T0, 200, 3, INCIDENTS)[0])
    sequences = [HostSequence("h", (), events)]
    assert [d.event.log_uuid for d in build_detector(loaded).detect(sequences).detections] == [
        d.event.log_uuid for d in build_detector(trained).detect(sequences).detections
    ]
    deployment.client.indices.refresh(index=model_index(deployment))
    chunks = deployment.client.count(
        index=model_index(deployment), body={"query": {"term": {"kind": "chunk"}}}
    )["count"]
    assert chunks > 2  # the weights did not fit one 64 KiB chunk
    # A chunk overwritten behind the store's back is caught by the checksum.
    deployment.client.index(
        index=model_index(deployment),
        id=f"c|deeplog|{version}|weights.pt|0",
        body={
            "kind": "chunk",
            "model": "deeplog",
            "version": version,
            "blob": "weights.pt",
            "seq": 0,
            "data": "AAAA",
        },
        refresh="wait_for",
    )
    with pytest.raises(ModelError, match="corrupt"):
        load_artifact(store, "deeplog")


def test_a_pattern_marked_false_positive_is_learned_by_the_next_cycle_and_rolled_back(
    deployment: Deployment, trained: ModelArtifact
) -> None:
    dep = deployment
    store = cluster_store(dep)
    first = publish(store, trained)
    docs, incidents = documents_with_incidents(
        PROFILES, T0 + 10 * DAY, 300, seed=5, incidents=INCIDENTS
    )
    index_documents(dep.client, dep.logs, docs)

    report = sidecar(dep, "run", "--once")

    assert report["models"] == {"deeplog": first}
    anomalies = dep.anomalies()
    assert {a["model"]["version"] for a in anomalies} == {first}
    assert {a["host"] for a in anomalies} >= set(INCIDENTS)
    # The analyst decides host-005's pattern is expected there: one mark through the CLI,
    # the rest as Dashboards' Dev Tools would send them.
    marked = [a for a in anomalies if a["host"] == "host-005"]
    assert marked
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "feedback",
            "--id",
            marked[0]["_id"],
            "--verdict",
            "false_positive",
            "--by",
            "analyst",
        ],
        env=sidecar_env(dep, Path("/nonexistent")),
        check=True,
        capture_output=True,
    )
    for doc in marked[1:]:
        dep.client.update(
            index=doc["_index"],
            id=doc["_id"],
            body={"doc": {"feedback": {"verdict": "false_positive"}}},
            refresh="wait_for",
        )

    # The same activity again a day later: the next cycle first learns the marks.
    again = with_fresh_ids(docs, "b2", DAY)
    index_documents(dep.client, dep.logs, again)
    report = sidecar(dep, "run", "--once")

    second = report["models"]["deeplog"]
    assert second != first
    assert load_artifact(store, "deeplog").parent == first
    learned = {a["_id"]: a for a in dep.anomalies()}
    assert {learned[m["_id"]]["feedback"]["applied_version"] for m in marked} == {second}
    assert learned[marked[0]["_id"]]["feedback"]["by"] == "analyst"
    new = [a for a in learned.values() if a["log_uuid"].startswith("b2-")]
    assert {a["model"]["version"] for a in new} == {second}
    repeated_marks = {f"b2-{m['log_uuid']}" for m in marked}
    assert not repeated_marks & {a["log_uuid"] for a in new}, "the marked pattern came back"
    assert {a["host"] for a in new} >= set(INCIDENTS) - {"host-005"}
    for incident in incidents:
        if incident.host != "host-005":
            assert {f"b2-{u}" for u in incident.log_uuids} & {a["log_uuid"] for a in new}

    # Rollback through the CLI puts the first version back for the next cycle.
    rolled = sidecar(dep, "models", "rollback")
    assert rolled["version"] == first and rolled["previous"] == second
    listing = sidecar(dep, "models", "list")
    assert listing["active"] == first
    statuses = {v["version"]: v["status"] for v in listing["versions"]}
    assert statuses[second] == "rolled_back"
    assert [h["version"] for h in listing["history"]] == [first, second, first]
    index_documents(dep.client, dep.logs, with_fresh_ids(docs, "b3", 2 * DAY))
    assert sidecar(dep, "run", "--once")["models"] == {"deeplog": first}
    third_run = [a for a in dep.anomalies() if a["log_uuid"].startswith("b3-")]
    assert {a["model"]["version"] for a in third_run} == {first}
    assert {a["host"] for a in third_run} >= set(INCIDENTS)


def with_silence(docs: list[dict], host: str, after: int, ms: int) -> tuple[list[dict], str]:
    """`host` goes quiet for `ms` after its `after`-th event; also the log_uuid of the event
    that ends the silence."""
    seen, out, ends = 0, [], ""
    for d in docs:
        if d["HOSTNAME"] == host:
            if seen >= after:
                d = {**d, "_zl_timestamp": str(int(d["_zl_timestamp"]) + ms)}
                ends = ends or str(d["log_uuid"])
            seen += 1
        out.append(d)
    return out, ends


def test_a_silence_marked_false_positive_is_accepted_by_the_parameter_model_s_next_cycle(
    deployment: Deployment, trained_parameters: ModelArtifact
) -> None:
    dep = deployment
    store = cluster_store(dep)
    first = publish(store, trained_parameters)
    docs, _ = documents_with_incidents(PROFILES, T0 + 30 * DAY, 300, seed=11, incidents={})
    docs, maintenance = with_silence(docs, "host-002", 150, 3_600_000)  # an hour, planned
    docs, outage = with_silence(docs, "host-008", 150, 7 * DAY)  # a week, unexplained
    index_documents(dep.client, dep.logs, docs)

    assert sidecar(dep, "run", "--once", SIDECAR_MODELS="parameters")["models"] == {
        "parameters": first
    }

    found = {a["log_uuid"]: a for a in dep.anomalies()}
    assert found[maintenance]["reason"] == found[outage]["reason"] == "parameter"
    assert found[maintenance]["parameters"]["deviating"] == TIMING
    dep.client.update(
        index=found[maintenance]["_index"],
        id=found[maintenance]["_id"],
        body={"doc": {"feedback": {"verdict": "false_positive", "note": "patching window"}}},
        refresh="wait_for",
    )
    # The same fortnight again, later: the next cycle first accepts the marked silence.
    again = with_fresh_ids(docs, "p2", 10 * DAY)
    index_documents(dep.client, dep.logs, again)
    report = sidecar(dep, "run", "--once", SIDECAR_MODELS="parameters")

    second = report["models"]["parameters"]
    assert second != first
    updated = load_artifact(store, "parameters")
    assert updated.parent == first
    assert list(updated.manifest["parameters"]["accepted"]) == [found[maintenance]["event"]["key"]]
    after = {a["log_uuid"]: a for a in dep.anomalies()}
    assert after[maintenance]["feedback"]["applied_version"] == second
    assert f"p2-{maintenance}" not in after, "the accepted silence was flagged again"
    assert after[f"p2-{outage}"]["model"]["version"] == second
    assert after[f"p2-{outage}"]["parameters"]["deviating"] == TIMING


def test_retrain_promotes_a_candidate_only_when_it_is_not_noisier_and_keeps_confirmed_incidents(
    deployment: Deployment, trained: ModelArtifact
) -> None:
    dep = deployment
    store = cluster_store(dep)
    first = publish(store, trained)
    # A week with one intrusion (host-003), which the active version flags and an analyst
    # confirms from Dashboards.
    docs, (incident,) = documents_with_incidents(
        PROFILES, T0 + 20 * DAY, 600, seed=9, incidents={"host-003": "brute_force"}
    )
    index_documents(dep.client, dep.logs, docs)
    sidecar(dep, "run", "--once")
    flagged = [a for a in dep.anomalies() if a["log_uuid"] in set(incident.log_uuids)]
    assert flagged
    for doc in flagged:
        dep.client.update(
            index=doc["_index"],
            id=doc["_id"],
            body={"doc": {"feedback": {"verdict": "true_positive", "by": "analyst"}}},
            refresh="wait_for",
        )
    end = max(int(d["_zl_timestamp"]) for d in docs)
    start = min(int(d["_zl_timestamp"]) for d in docs)
    end_iso = datetime.fromtimestamp(end / 1000, UTC).isoformat()
    days = str((end - start + 1) / DAY)

    outcome = sidecar(dep, "retrain", "--end", end_iso, "--days", days)

    candidate, current = outcome["candidate"], outcome["current"]
    assert current["version"] == first
    assert candidate["events"] == current["events"] > 1_000
    # The confirmed events were read back from the anomaly index and scored by both.
    assert candidate["confirmed_incident_events"] == current["confirmed_incident_events"]
    assert current["confirmed_incident_events"] == len(flagged) == current["caught"]
    quieter = candidate["false_positive_rate"] <= current["false_positive_rate"]
    kept = candidate["recall"] >= current["recall"]
    assert outcome["promoted"] == (quieter and kept), outcome
    expected = candidate["version"] if outcome["promoted"] else first
    assert store.active("deeplog") == expected
    notes = store.notes("deeplog", candidate["version"])
    assert notes["status"] == ("promoted" if outcome["promoted"] else "rejected")
    assert notes["evaluation"]["candidate"] == candidate
    manifest, _blobs = store.get("deeplog", candidate["version"])
    assert manifest["training_data"]["left_out_incidents"] == len(flagged)
    # Only unreviewed incidents of the high band and above are withheld (here the incidents
    # are graded below it: nothing more is left out than what the analyst confirmed).
    alerted = {
        u
        for i in dep.incidents()
        if i["grade"] >= 75 and "feedback" not in i
        for u in i["log_uuids"]
    }
    confirmed = {a["log_uuid"] for a in flagged}
    assert manifest["training_data"]["withheld_unreviewed"] == len(alerted - confirmed)
    print(f"\nretrain: promoted={outcome['promoted']} ({outcome['reason']})")
