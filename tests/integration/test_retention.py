"""Result partitions and retention on a real node: a redo across a partition boundary writes
nothing twice, feedback and incidents work across partitions, `run` drops what is past the
retention and nothing newer, and a late result past it never recreates a dropped partition."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.cluster.feedback import mark_applied, pending_false_positives, set_verdict
from sidecar.cluster.partitions import partitions_of
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS
from tests.integration.conftest import Deployment
from tests.integration.support import duplicated_anomalies, sidecar_env, start_sidecar

pytestmark = pytest.mark.integration

DAY = 86_400_000
PROFILES = fleet(TRAIN_HOSTS)


def shifted(docs: list[dict], by_ms: int, tag: str = "") -> list[dict]:
    return [
        {
            **d,
            "log_uuid": f"{tag}{d['log_uuid']}",
            "_zl_timestamp": str(int(d["_zl_timestamp"]) + by_ms),
        }
        for d in docs
    ]


def around_midnight(seed: int) -> tuple[list[dict], int]:
    """A batch with incidents whose middle event falls on a midnight (UTC); and that midnight."""
    docs, _ = documents_with_incidents(PROFILES, T0 + 10**8, 300, seed=seed, incidents=INCIDENTS)
    stamps = sorted(int(d["_zl_timestamp"]) for d in docs)
    middle = stamps[len(stamps) // 2]
    midnight = (middle // DAY + 1) * DAY
    return shifted(docs, midnight - middle), midnight


def daily(dep: Deployment) -> Deployment:
    return replace(dep, settings=dep.settings.model_copy(update={"result_partition": "day"}))


def run_once(dep: Deployment, model_dir: Path, **env: str) -> dict:
    process = start_sidecar(sidecar_env(dep, model_dir, **env), "run", "--once")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return orjson.loads(out)


def test_a_redo_across_a_day_boundary_writes_each_result_once_in_its_partition(
    deployment: Deployment,
) -> None:
    dep = replace(
        deployment, settings=deployment.settings.model_copy(update={"result_partition": "day"})
    )
    docs, midnight = around_midnight(seed=61)
    index_documents(dep.client, dep.logs, docs)
    first = dep.cycle()
    written = sum(first.anomalies_written.values())
    # Forget every cursor, as after losing the state index: the same range is read again.
    dep.client.indices.delete(index=dep.settings.state_index)

    redo = dep.cycle()

    anomalies = dep.anomalies()
    before = [a for a in anomalies if a["@timestamp"] < midnight]
    assert before and len(before) < len(anomalies), "the results do not straddle midnight"
    assert redo.events_read == len(docs)
    assert redo.anomalies_already_present == written == len(anomalies)
    assert duplicated_anomalies(dep) == []
    day = dep.settings.partitioning.index_for
    assert all(a["_index"] == day(dep.settings.anomaly_index, a["@timestamp"]) for a in anomalies)
    assert set(partitions_of(dep.client, dep.settings.anomaly_index)) == {
        day(dep.settings.anomaly_index, midnight - 1),
        day(dep.settings.anomaly_index, midnight),
    }
    incidents = dep.incidents()
    assert len({i["incident_id"] for i in incidents}) == len(incidents) > 0
    assert all(i["_index"] == day(dep.settings.incident_index, i["@timestamp"]) for i in incidents)


def test_false_positive_marks_are_read_and_marked_applied_in_whichever_partition_holds_them(
    deployment: Deployment,
) -> None:
    dep = replace(
        deployment, settings=deployment.settings.model_copy(update={"result_partition": "day"})
    )
    docs, midnight = around_midnight(seed=62)
    index_documents(dep.client, dep.logs, docs)
    dep.cycle()
    anomalies = dep.anomalies()
    marked = [
        next(a for a in anomalies if a["@timestamp"] < midnight),
        next(a for a in anomalies if a["@timestamp"] >= midnight),
    ]
    assert marked[0]["_index"] != marked[1]["_index"]
    search = dep.settings.anomaly_search

    for a in marked:
        set_verdict(dep.client, search, a["_id"], "false_positive", "ana", None)
    pending = pending_false_positives(dep.client, search, "deeplog")
    mark_applied(dep.client, search, [m.document_id for m in pending], "v-next")

    assert sorted(m.document_id for m in pending) == sorted(a["_id"] for a in marked)
    applied = {a["_id"]: a["feedback"] for a in dep.anomalies() if "feedback" in a}
    assert set(applied) == {a["_id"] for a in marked}
    assert all(f["applied_version"] == "v-next" and f["by"] == "ana" for f in applied.values())
    assert pending_false_positives(dep.client, search, "deeplog") == []


def test_run_drops_partitions_past_the_retention_and_never_recreates_them(
    deployment: Deployment, model_dir: Path
) -> None:
    old, _ = documents_with_incidents(PROFILES, T0 + 10**8, 200, seed=63, incidents=INCIDENTS)
    now_ms = int(time.time() * 1000)
    recent = shifted(old, now_ms - 2 * DAY - (T0 + 10**8), "r-")
    index_documents(deployment.client, deployment.logs, old + recent)
    kept_forever = run_once(deployment, model_dir)
    base = deployment.settings.anomaly_index
    month = deployment.settings.partitioning.index_for
    old_partitions = [
        month(base, T0 + 10**8),
        month(deployment.settings.incident_index, T0 + 10**8),
    ]
    assert kept_forever["dropped"] == []
    assert set(old_partitions) <= {
        *partitions_of(deployment.client, base),
        *partitions_of(deployment.client, deployment.settings.incident_index),
    }
    recent_flagged = {a["_id"] for a in deployment.anomalies() if a["log_uuid"].startswith("r-")}
    assert recent_flagged

    swept = run_once(deployment, model_dir, SIDECAR_RETENTION_DAYS="30")

    assert sorted(swept["dropped"]) == sorted(old_partitions)
    assert partitions_of(deployment.client, base) == [month(base, now_ms - 2 * DAY)]
    assert {a["_id"] for a in deployment.anomalies()} == recent_flagged
    # A late host's events from the dropped month: read, counted as past the retention, and
    # not written, so the dropped partition stays dropped.
    late = [d for d in shifted(old, 1_000, "late-") if d["HOSTNAME"] in INCIDENTS]
    late = [{**d, "HOSTNAME": f"late-{d['HOSTNAME']}"} for d in late]
    index_documents(deployment.client, deployment.logs, late)

    after = run_once(deployment, model_dir, SIDECAR_RETENTION_DAYS="30")

    assert after["events_read"] == len(late)
    assert after["results_expired"] > 0
    assert after["anomalies_written"] == {}
    assert partitions_of(deployment.client, base) == [month(base, now_ms - 2 * DAY)]
    assert {s for s in deployment.states() if s.startswith("late-")}, "late cursors not moved"


def test_a_lifecycle_plugin_the_cluster_lacks_stops_setup_with_one_line(
    deployment: Deployment, engine: str, model_dir: Path
) -> None:
    """The ISM and ILM plugins are not in the test nodes: the refusal is what can be checked."""
    by = "ism" if engine == "opensearch" else "ilm"
    env = sidecar_env(
        deployment,
        model_dir,
        SIDECAR_RETENTION_BY=by,
        SIDECAR_RETENTION_DAYS="30",
        SIDECAR_RESULT_PARTITION="day",
    )

    process = start_sidecar(env, "setup")
    _out, err = process.communicate(timeout=120)

    assert process.returncode == 2, err[-2000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"configuration error: SIDECAR_RETENTION_BY={by}: the cluster refused")
    assert "SIDECAR_RETENTION_BY=sidecar" in line
