"""The embedded mode (`train --from-file`, `score --from-file --to-file`) and the cycle's
guarantees, over JSON-lines files: no cluster involved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.nextkey.build import build_detector
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from tests.helpers import (
    INCIDENTS,
    T0,
    TRAIN_HOSTS,
    ListSink,
    flagged_in_one_pass,
    read_jsonl,
    to_events,
    write_jsonl,
)

ROOT = Path(__file__).resolve().parents[2]
WHOLE = CycleOptions(read_lag_ms=None, initial_lookback_ms=None)


@pytest.fixture(scope="module")
def live():
    return documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 400, seed=2, incidents=INCIDENTS
    )


def test_every_injected_incident_is_flagged_and_normal_hosts_stay_quiet(trained, live) -> None:
    docs, incidents = live
    sink = ListSink()
    report = run_cycle(
        FileSource(to_events(docs)),
        [build_detector(trained)],
        sink,
        MemoryCheckpoints(),
        now_ms=T0 + 10**9,
        options=WHOLE,
    )
    assert report.events_scored["deeplog"] == len(docs)
    flagged = {d["log_uuid"] for d in sink.documents.values()}
    for incident in incidents:
        assert flagged & set(incident.log_uuids), f"{incident.kind} on {incident.host} missed"
    injected = {u for i in incidents for u in i.log_uuids}
    false_positives = flagged - injected
    # 4.8k normal events; a handful of rare-but-normal transitions may rank just past g=9.
    assert len(false_positives) <= 0.005 * (len(docs) - len(injected)), len(false_positives)


def test_scoring_in_several_cycles_flags_exactly_what_one_pass_flags(trained, live) -> None:
    docs, _ = live
    events = to_events(docs)
    detector = build_detector(trained)
    one_pass = ListSink()
    run_cycle(
        FileSource(events),
        [detector],
        one_pass,
        MemoryCheckpoints(),
        now_ms=T0 + 10**9,
        options=WHOLE,
    )

    split = ListSink()
    checkpoints = MemoryCheckpoints()
    source = FileSource(events, page_size=37)
    bounds = sorted(e.timestamp_ms for e in events)
    cuts = [bounds[len(bounds) // 3], bounds[2 * len(bounds) // 3], bounds[-1]]
    for cut in cuts:  # each cycle sees data up to a later point in time
        run_cycle(
            source,
            [detector],
            split,
            checkpoints,
            now_ms=cut,
            options=CycleOptions(read_lag_ms=0, initial_lookback_ms=None, batch_events=500),
        )
    assert split.documents.keys() == one_pass.documents.keys()
    assert all(s.cursor is not None for s in checkpoints.states.values())


def test_a_cycle_with_nothing_new_writes_nothing(trained, live) -> None:
    docs, _ = live
    source = FileSource(to_events(docs))
    checkpoints, sink = MemoryCheckpoints(), ListSink()
    detector = build_detector(trained)
    first = run_cycle(source, [detector], sink, checkpoints, now_ms=T0 + 10**9, options=WHOLE)
    second = run_cycle(source, [detector], sink, checkpoints, now_ms=T0 + 10**9, options=WHOLE)
    assert first.events_read == len(docs)
    assert second.events_read == 0 and second.hosts_seen == 0
    assert sum(second.anomalies_written.values()) == 0


def _cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    # What the in-process references (the `trained` fixture, tests.helpers.one_pass) use:
    # DeepLog alone under the top-g rule. Tests of the shipped defaults override both.
    env.update({"SIDECAR_MODELS": "deeplog", "SIDECAR_VERDICT_RULE": "top_g"})
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env={
            **env,
            "PYTHONPATH": str(ROOT),
            "SIDECAR_TRAIN_EPOCHS": "30",
            "SIDECAR_TRAIN_BATCH_SIZE": "512",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_and_score_from_files_exact_interface(
    tmp_path: Path, training_file: Path, live, trained: ModelArtifact
) -> None:
    docs, incidents = live
    rng_order = sorted(docs, key=lambda d: str(d["log_uuid"]))  # hosts interleaved, any order
    events_file = write_jsonl(tmp_path / "events.jsonl", rng_order)
    model_dir = tmp_path / "models"

    trained_cli = _cli("train", "--from-file", str(training_file), "--model-dir", str(model_dir))
    assert trained_cli.returncode == 0, trained_cli.stderr
    manifest = orjson.loads(trained_cli.stdout)
    assert manifest["model"] == "deeplog" and manifest["keys"] == trained.vocabulary.known

    out = tmp_path / "anomalies.jsonl"
    scored = _cli(
        "score",
        "--from-file",
        str(events_file),
        "--model-dir",
        str(model_dir),
        "--to-file",
        str(out),
    )
    assert scored.returncode == 0, scored.stderr
    lines = read_jsonl(out)
    assert lines and all(
        "log_uuid" in line and line["model"]["name"] == "deeplog" for line in lines
    )
    assert len({line["_id"] for line in lines}) == len(lines)
    flagged = {line["log_uuid"] for line in lines}
    for incident in incidents:
        assert flagged & set(incident.log_uuids), incident.kind

    # Same data and training: the in-process model flags the same events.
    assert flagged_in_one_pass(trained, docs) == flagged


def test_bad_lines_are_counted_not_fatal(
    tmp_path: Path, trained: ModelArtifact, model_dir: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"_zl_timestamp": "1700000000000", "log_uuid": "a", "HOSTNAME": "h", "EVENTID": "1102"}\n'
        b"not json\n"
        b'["an", "array"]\n'
        b'{"log_uuid": "b", "HOSTNAME": "h", "EVENTID": "4624"}\n'
    )
    out = tmp_path / "out.jsonl"
    result = _cli(
        "score", "--from-file", str(path), "--model-dir", str(model_dir), "--to-file", str(out)
    )
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["rejected"] == {"invalid_json": 1, "not_an_object": 1, "missing_timestamp": 1}
    assert [line["log_uuid"] for line in read_jsonl(out)] == ["a"]


def test_the_shipped_models_and_verdicts_write_annotations_and_incidents_from_files(
    tmp_path: Path, training_file: Path, live
) -> None:
    docs, incidents = live
    events_file = write_jsonl(tmp_path / "events.jsonl", docs)
    model_dir, out = tmp_path / "models", tmp_path / "anomalies.jsonl"
    found = tmp_path / "incidents.jsonl"
    both = {"SIDECAR_MODELS": "deeplog,loganomaly", "SIDECAR_VERDICT_RULE": "calibrated"}

    trained = _cli(
        "train", "--from-file", str(training_file), "--model-dir", str(model_dir), **both
    )
    assert trained.returncode == 0, trained.stderr
    assert [m["model"] for m in orjson.loads(trained.stdout)] == ["deeplog", "loganomaly"]
    scored = _cli(
        "score",
        "--from-file",
        str(events_file),
        "--model-dir",
        str(model_dir),
        "--to-file",
        str(out),
        "--incidents-file",
        str(found),
        **both,
    )
    assert scored.returncode == 0, scored.stderr

    by_model: dict[str, set[str]] = {}
    annotations = read_jsonl(out)
    for line in annotations:
        by_model.setdefault(line["model"]["name"], set()).add(line["log_uuid"])
    assert set(by_model) == {"deeplog", "loganomaly"}
    for incident in incidents:
        assert by_model["loganomaly"] & set(incident.log_uuids), incident.kind
    # One incident document per injected incident, each written once (its last revision),
    # and every annotation pointing at one of them.
    written = read_jsonl(found)
    assert len({d["_id"] for d in written}) == len(written)
    for incident in incidents:
        hits = [d for d in written if set(d["log_uuids"]) & set(incident.log_uuids)]
        assert [d["host"] for d in hits] == [incident.host], incident.kind
    assert {a["incident_id"] for a in annotations} <= {d["_id"] for d in written}
    summary = orjson.loads(scored.stdout)
    assert summary["incidents_opened"] == len(written)
    # What the live rates are made of: every distinct flagged event once, however many models
    # flagged it, and the log time each host's cursor moved over.
    flagged = {(a["host"], a["log_uuid"]) for a in annotations}
    assert summary["events_flagged"] >= len(flagged)
    read = read_jsonl(events_file)
    spans = {}
    for doc in read:
        t = int(doc["_zl_timestamp"])
        first, last = spans.get(doc["HOSTNAME"], (t, t))
        spans[doc["HOSTNAME"]] = (min(first, t), max(last, t))
    assert summary["host_ms_covered"] == sum(last - first for first, last in spans.values())
