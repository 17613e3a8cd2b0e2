"""Test data shared by unit and integration tests: the synthetic fleet in the seed's shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import orjson

from sidecar.encoding.events import FieldNames, parse_event
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.nextkey.build import build_detector
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.ports import WriteResult
from sidecar.types import InputStats, LogEvent

T0 = 1_700_000_000_000  # a fixed epoch-ms origin keeps every run identical
TRAIN_HOSTS = 12
TRAIN_EVENTS_PER_HOST = 1_500
INCIDENTS = {
    "host-001": "audit_log_cleared",
    "host-003": "brute_force",
    "host-005": "privilege_without_logon",
    "host-007": "logoff_storm",
}


REPO_ROOT = Path(__file__).resolve().parent.parent


def printed_by_fresh_interpreter(code: str, hash_seed: int) -> object:
    """The JSON value `code` prints when a new Python process runs it with PYTHONHASHSEED set:
    a value computed with `hash()` (salted per process) differs between such processes."""
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def to_events(docs: Iterable[dict[str, object]]) -> list[LogEvent]:
    stats = InputStats()
    events = [parse_event(d, FieldNames(), stats) for d in docs]
    assert not stats.rejected, stats.rejected
    return [e for e in events if e is not None]


def write_jsonl(path: Path, docs: Iterable[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class ListSink:
    """An in-memory AnomalySink for pure pipeline tests (the cluster sink is tested for real)."""

    def __init__(self) -> None:
        self.documents: dict[str, dict] = {}

    def write(self, documents):
        new = [d for d in documents if d[0] not in self.documents]
        self.documents.update(documents)
        return WriteResult(len(new), len(documents) - len(new))


class IncidentListSink:
    """The furthest revision of each incident document, as the cluster keeps it."""

    def __init__(self) -> None:
        self.documents: dict[str, dict] = {}

    def write(self, documents):
        new = 0
        for doc_id, doc in documents:
            held = self.documents.get(doc_id)
            if held is None or held["revision"] < doc["revision"]:
                self.documents[doc_id] = doc
                new += 1
        return WriteResult(new, len(documents) - new)


def one_pass(
    trained: ModelArtifact, docs: list[dict[str, object]]
) -> tuple[dict[str, dict], dict[str, dict]]:
    """Anomaly and incident documents (by id) when the whole data set is scored in one cycle,
    with incidents formed as the cluster mode forms them."""
    sink, incidents = ListSink(), IncidentListSink()
    run_cycle(
        FileSource(to_events(docs)),
        [build_detector(trained)],
        sink,
        MemoryCheckpoints(),
        now_ms=T0,
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=None),
        incidents=incidents,
    )
    return sink.documents, incidents.documents


def flagged_in_one_pass(trained: ModelArtifact, docs: list[dict[str, object]]) -> set[str]:
    """log_uuids of the annotations DeepLog writes when the whole data set is scored in a
    single cycle (per incident, the first INCIDENT_EVENT_DOCS flagged events)."""
    return {d["log_uuid"] for d in one_pass(trained, docs)[0].values()}


def mapped_fields(properties: dict, prefix: str = "") -> set[str]:
    """Leaf field paths of a mapping's properties (`event.key`, `expected.probability`, ...)."""
    out = set()
    for name, spec in properties.items():
        if "properties" in spec:
            out |= mapped_fields(spec["properties"], f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out
