"""Test data shared by unit and integration tests: the synthetic fleet in the seed's shape."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from sidecar.events import parse_event
from sidecar.settings import FieldNames
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
