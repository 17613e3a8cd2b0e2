"""Model lifecycle without a cluster: online updates from false-positive marks, rollback and
the retraining gate, on a directory store (the cluster store is tested on a real node)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.annotate import anomaly_document
from sidecar.demo.generator import documents_with_incidents, fleet
from sidecar.errors import ModelError
from sidecar.lifecycle import apply_false_positives, retrain, rollback, split_streams
from sidecar.models.artifacts import ModelArtifact, load_artifact, save_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.nextkey import TrainingSummary
from sidecar.models.online import marked_from_document
from sidecar.models.store import FileModelStore
from sidecar.training import group_by_host, train_model
from sidecar.types import Detection, HostSequence
from tests.conftest import FAST_DEEPLOG
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, to_events

OPTIONS = DetectorOptions()


@pytest.fixture(scope="module")
def incident_streams() -> dict:
    docs, _ = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 86_400_000, 400, seed=7, incidents=INCIDENTS
    )
    return group_by_host(to_events(docs))


def detections(artifact: ModelArtifact, streams: dict) -> list[Detection]:
    detector = kind_of(artifact.name).detector(artifact, OPTIONS)
    sequences = [HostSequence(h, (), events) for h, events in streams.items()]
    return detector.detect(sequences).detections


def flagged_hosts(found: list[Detection]) -> set[str]:
    return {d.event.host for d in found}


def store_with(artifact: ModelArtifact, root: Path) -> FileModelStore:
    """A fresh store whose active version is a copy of `artifact`."""
    store = FileModelStore(root)
    save_artifact(
        store,
        artifact.name,
        artifact.net,
        artifact.vocabulary,
        artifact.config,
        TrainingSummary(),
        {},
        tensors=artifact.tensors,
    )
    return store


def test_a_marked_pattern_stops_being_flagged_while_other_incidents_are_still_caught(
    trained: ModelArtifact, incident_streams: dict, tmp_path: Path
) -> None:
    before = detections(trained, incident_streams)
    assert flagged_hosts(before) >= set(INCIDENTS)
    marked = [
        marked_from_document(f"doc-{i}", anomaly_document(d, T0))
        for i, d in enumerate(before)
        if d.event.host == "host-005"  # privilege_without_logon, marked as expected behaviour
    ]
    assert marked
    store = store_with(trained, tmp_path)
    parent = store.active("deeplog")

    updated = apply_false_positives(store, load_artifact(store, "deeplog"), marked, OPTIONS)

    assert updated is not None and store.active("deeplog") == updated.version
    assert updated.parent == parent
    report = updated.manifest["online_update"]
    assert report["false_positives"] == len(marked)
    assert max(report["ranks_after"]) <= trained.config.top_g
    # Learning the marked windows did not make the model forget the common paths.
    assert report["replay_top_g_after"] >= report["replay_top_g_before"] - 0.01
    after = detections(load_artifact(store, "deeplog"), incident_streams)
    marked_uuids = {d.event.log_uuid for d in before if d.event.host == "host-005"}
    assert not marked_uuids & {d.event.log_uuid for d in after}
    assert flagged_hosts(after) >= set(INCIDENTS) - {"host-005"}


def test_an_unseen_key_marked_as_normal_joins_the_vocabulary(
    trained: ModelArtifact, incident_streams: dict, tmp_path: Path
) -> None:
    before = detections(trained, incident_streams)
    cleared = [d for d in before if d.reason == "unseen_key"]
    assert cleared and {d.event.host for d in cleared} == {"host-001"}
    store = store_with(trained, tmp_path)
    marked = [marked_from_document("x", anomaly_document(d, T0)) for d in cleared]

    updated = apply_false_positives(store, load_artifact(store, "deeplog"), marked, OPTIONS)

    assert updated is not None
    assert updated.vocabulary.known == trained.vocabulary.known + 1
    assert updated.manifest["online_update"]["new_keys"] == ["1102/success"]
    after = detections(load_artifact(store, "deeplog"), incident_streams)
    assert not {d.event.log_uuid for d in cleared} & {d.event.log_uuid for d in after}
    assert flagged_hosts(after) >= set(INCIDENTS) - {"host-001"}


def test_rollback_goes_back_one_version_at_a_time_and_refuses_when_there_is_none(
    trained: ModelArtifact, tmp_path: Path
) -> None:
    store = store_with(trained, tmp_path)
    first = store.active("deeplog")
    with pytest.raises(ModelError, match="no earlier version"):
        rollback(store, "deeplog")
    second = store_with(trained, tmp_path).active("deeplog")  # same store root, a newer version
    third = store_with(trained, tmp_path).active("deeplog")
    assert len({first, second, third}) == 3

    assert rollback(store, "deeplog").version == second
    assert rollback(store, "deeplog").version == first
    assert store.notes("deeplog", third)["status"] == "rolled_back"
    assert rollback(store, "deeplog", to=third).version == third
    assert [a.version for a in store.history("deeplog")] == [
        first,
        second,
        third,
        second,
        first,
        third,
    ]


def test_retraining_is_promoted_only_when_the_held_out_false_positive_rate_does_not_rise(
    training_docs: list, tmp_path: Path
) -> None:
    # The first 600 events of each host keep the three trainings short.
    streams = {h: s[:600] for h, s in group_by_host(to_events(training_docs)).items()}
    start = min(s[0].timestamp_ms for s in streams.values())
    end = max(s[-1].timestamp_ms for s in streams.values())
    holdout_from = start + (end - start) * 7 // 10
    store = FileModelStore(tmp_path)
    config = replace(FAST_DEEPLOG, epochs=15)
    train, holdout = split_streams(streams, holdout_from)
    train_model("deeplog", train, config, store, {})
    good = store.active("deeplog")

    # A candidate trained on a window that lost most of the fleet's behaviour (two hosts'
    # worth) flags more of the held-out slice: it must not replace the good model.
    kept = set(sorted(train)[:2])
    narrow = {h: (s if h in kept else holdout.get(h, [])) for h, s in streams.items()}
    rejected = retrain(store, "deeplog", config, narrow, holdout_from, OPTIONS, {})
    assert not rejected.promoted
    assert rejected.candidate.false_positive_rate > rejected.current.false_positive_rate
    assert store.active("deeplog") == good
    assert store.notes("deeplog", rejected.candidate.version)["status"] == "rejected"

    promoted = retrain(
        store, "deeplog", config, streams, holdout_from, OPTIONS, {}, tolerance=0.001
    )
    assert promoted.promoted, promoted.reason
    assert store.active("deeplog") == promoted.candidate.version
    assert store.history("deeplog")[-1].reason.startswith("retrained")
