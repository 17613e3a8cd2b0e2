"""The DeepLog HDFS split (../shared/data/hdfs) as host streams in the seed's document shape,
shared by the benchmark scripts."""

from __future__ import annotations

import csv
from pathlib import Path

from sidecar.types import LogEvent

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hdfs"


def load_templates(data: Path) -> dict[str, str]:
    with (data / "templates.csv").open() as handle:
        return {row["EventId"]: row["EventTemplate"] for row in csv.DictReader(handle)}


def load_sessions(path: Path) -> list[list[int]]:
    return [[int(k) for k in line.split()] for line in path.read_text().splitlines() if line]


END_EVENT_ID = "E_end"
END_MESSAGE = "Block session closed"


def session_events(
    split: str, sessions: list[list[int]], templates: dict[str, str], session_end: bool
) -> dict[str, list[LogEvent]]:
    """Each session (one HDFS block) as one host's stream, in the seed's document shape.

    With `session_end`, each stream closes with an explicit end event: a block's lifecycle is
    finite, and many abnormal blocks are abnormal because they stop early (`22 5`), which no
    window of their events can show.
    """
    streams: dict[str, list[LogEvent]] = {}
    for i, keys in enumerate(sessions):
        host = f"{split}-{i:05d}"
        ids = [(f"E{k}", templates.get(f"E{k}", "")) for k in keys]
        if session_end:
            ids.append((END_EVENT_ID, END_MESSAGE))
        streams[host] = [
            LogEvent(
                host,
                1_600_000_000_000 + j,
                f"{host}-{j:03d}",
                event_id,
                "info",
                message,
                f"hdfs-{split}",
            )
            for j, (event_id, message) in enumerate(ids)
        ]
    return streams


def documents(streams: dict[str, list[LogEvent]]) -> list[dict[str, object]]:
    return [
        {
            "_zl_timestamp": str(e.timestamp_ms),
            "log_uuid": e.log_uuid,
            "HOSTNAME": e.host,
            "EVENTID": e.event_id,
            "SEVERITY": e.severity,
            "MESSAGE": e.message,
        }
        for stream in streams.values()
        for e in stream
    ]
