"""Events from a JSON-lines file, hosts interleaved in any order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import orjson
import structlog

from sidecar.encoding.events import FieldNames, parse_event
from sidecar.ports import Page
from sidecar.types import Cursor, HostState, InputStats, LatenessPlan, LogEvent

__all__ = ["read_jsonl_events", "FileSource"]

log = structlog.get_logger("sidecar.files")


def read_jsonl_events(
    path: Path,
    fields: FieldNames,
    stats: InputStats,
    case_sensitive_hosts: bool = True,
    event_id_optional: bool = False,
) -> list[LogEvent]:
    """Every valid event in the file; bad lines are counted in `stats`, never fatal.

    `event_id_optional`: template mining keys events without EVENTID (see `parse_event`)."""
    events: list[LogEvent] = []
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                stats.reject("invalid_json", f"{path.name}:{line_no}")
                continue
            if not isinstance(doc, dict):
                stats.reject("not_an_object", f"{path.name}:{line_no}")
                continue
            event = parse_event(
                doc,
                fields,
                stats,
                index=path.name,
                case_sensitive_hosts=case_sensitive_hosts,
                event_id_optional=event_id_optional,
            )
            if event is not None:
                events.append(event)
    return events


class FileSource:
    """All of a file's events in memory, per host, in the cluster's (timestamp, log_uuid) order."""

    def __init__(self, events: list[LogEvent], page_size: int = 2_000) -> None:
        self._by_host: dict[str, list[LogEvent]] = {}
        for event in events:
            self._by_host.setdefault(event.host, []).append(event)
        for host_events in self._by_host.values():
            host_events.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))
        self._page_size = page_size

    @classmethod
    def from_file(
        cls,
        path: Path,
        fields: FieldNames,
        stats: InputStats,
        page_size: int = 2_000,
        case_sensitive_hosts: bool = True,
        event_id_optional: bool = False,
    ) -> FileSource:
        events = read_jsonl_events(path, fields, stats, case_sensitive_hosts, event_id_optional)
        return cls(events, page_size)

    def _pending(
        self, host: str, after: Cursor | None, from_ms: int | None, upper_ms: int
    ) -> list[LogEvent]:
        events = self._by_host.get(host, [])
        return [
            e
            for e in events
            if e.timestamp_ms <= upper_ms
            and (after is None or e.position > after)
            and (after is not None or from_ms is None or e.timestamp_ms >= from_ms)
        ]

    def hosts_with_new(
        self,
        states: Mapping[str, HostState],
        new_host_from_ms: int | None,
        upper_ms: int,
        stats: InputStats | None = None,
    ) -> list[str]:
        hosts = []
        for host in sorted(self._by_host):
            state = states.get(host)
            cursor = state.cursor if state else None
            if self._pending(host, cursor, new_host_from_ms if cursor is None else None, upper_ms):
                hosts.append(host)
        return hosts

    def read(
        self,
        host: str,
        after: Cursor | None,
        from_ms: int | None,
        upper_ms: int,
        stats: InputStats,
        plan: LatenessPlan | None = None,
    ) -> Iterator[Page]:
        # A file is complete when read: nothing arrives late, so nothing is counted.
        events = self._pending(host, after, from_ms, upper_ms)
        for start in range(0, len(events), self._page_size):
            chunk = events[start : start + self._page_size]
            yield Page(chunk, chunk[-1].position)

    def events_before(
        self, before: Mapping[str, int], count: int, stats: InputStats
    ) -> dict[str, list[LogEvent]]:
        found: dict[str, list[LogEvent]] = {}
        for host, before_ms in before.items():
            earlier = [e for e in self._by_host.get(host, []) if e.timestamp_ms < before_ms]
            found[host] = earlier[-count:] if count else []
        return found

    def late_buckets(
        self, states: Mapping[str, HostState], plan: LatenessPlan
    ) -> dict[str, tuple[int, int]]:
        return {}

    def unreadable(self, future_ms: int, stats: InputStats) -> dict[str, int]:
        return {}  # lines without a timestamp or host were counted when the file was parsed
