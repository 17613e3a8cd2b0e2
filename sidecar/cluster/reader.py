"""Reading new events per host: a composite aggregation to find hosts, then search_after pages
sorted by (timestamp, log_uuid). No from/size, no scroll: memory stays bounded per page and a
page can be resumed from its last sort values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from sidecar.cluster.fields import ResolvedFields, resolve_fields
from sidecar.cluster.queries import (
    host_page_query,
    hosts_query,
    sort_value_to_ms,
    timestamp_value,
)
from sidecar.errors import SourceUnavailable
from sidecar.events import parse_event, parse_timestamp_ms
from sidecar.ports import Page
from sidecar.settings import FieldNames
from sidecar.types import Cursor, HostState, InputStats, LogEvent

__all__ = ["ClusterSource"]

log = structlog.get_logger("sidecar.cluster.reader")

_SEARCH_PARAMS = {"ignore_unavailable": "true", "allow_no_indices": "true"}


class ClusterSource:
    def __init__(
        self,
        client: OpenSearch,
        patterns: list[str],
        names: FieldNames,
        page_size: int = 2_000,
        hosts_page_size: int = 1_000,
    ) -> None:
        self._client = client
        self._index = ",".join(patterns)
        self._patterns = patterns
        self._names = names
        self._page_size = page_size
        self._hosts_page_size = hosts_page_size
        self._fields: ResolvedFields | None = None

    # -- helpers ----------------------------------------------------------------------------
    def _search(self, body: dict[str, object], filter_path: str) -> dict:
        try:
            response = self._client.search(
                index=self._index, body=body, params={**_SEARCH_PARAMS, "filter_path": filter_path}
            )
        except (OSConnectionError, ConnectionTimeout) as exc:
            raise SourceUnavailable(f"cluster unreachable while searching: {exc}") from exc
        except TransportError as exc:
            raise SourceUnavailable(f"search failed ({exc.status_code}): {exc.error}") from exc
        # A partial answer would move cursors past events that were never returned.
        if response.get("timed_out"):
            raise SourceUnavailable("search timed out on the cluster; the cycle will be retried")
        failed = (response.get("_shards") or {}).get("failed", 0)
        if failed:
            raise SourceUnavailable(
                f"search had {failed} failed shard(s); the cycle will be retried"
            )
        return response

    def fields(self) -> ResolvedFields | None:
        try:
            self._fields = resolve_fields(self._client, self._patterns, self._names)
        except NotFoundError:
            self._fields = None  # no index matches the watched patterns (yet)
        except (OSConnectionError, ConnectionTimeout) as exc:
            raise SourceUnavailable(f"cluster unreachable while reading mappings: {exc}") from exc
        return self._fields

    def _event(
        self, hit: dict, fields: ResolvedFields, host: str, stats: InputStats
    ) -> LogEvent | None:
        # The sort value is the timestamp as the cluster ordered it; the host is the one the
        # query filtered on. Both beat whatever shape the _source holds.
        return parse_event(
            hit.get("_source") or {},
            self._names,
            stats,
            index=hit.get("_index"),
            timestamp=sort_value_to_ms(hit["sort"][0], fields.timestamp_kind),
            host=host,
        )

    def _position(self, sort: list[object], fields: ResolvedFields) -> Cursor | None:
        ts = parse_timestamp_ms(sort_value_to_ms(sort[0], fields.timestamp_kind))
        if ts is None or not isinstance(sort[1], str):
            return None
        return Cursor(ts, sort[1])

    # -- EventSource --------------------------------------------------------------------------
    def hosts_with_new(
        self, states: Mapping[str, HostState], new_host_from_ms: int | None, upper_ms: int
    ) -> list[str]:
        fields = self.fields()
        if fields is None:
            log.info("no_watched_fields_yet", indices=self._index)
            return []
        # One range for all hosts: from the oldest cursor (or the new-host start, if older).
        from_ms: int | None = None
        if new_host_from_ms is not None:
            known = [s.cursor.timestamp_ms for s in states.values() if s.cursor is not None]
            from_ms = min([new_host_from_ms, *known])
        hosts: list[str] = []
        after_key = None
        while True:
            body = hosts_query(fields, from_ms, upper_ms, self._hosts_page_size, after_key)
            response = self._search(
                body,
                "aggregations.hosts.after_key,aggregations.hosts.buckets.key,"
                "aggregations.hosts.buckets.newest.hits.hits.sort,timed_out,_shards",
            )
            agg = (response.get("aggregations") or {}).get("hosts") or {}
            buckets = agg.get("buckets") or []
            for bucket in buckets:
                host = bucket["key"]["host"]
                newest_hits = bucket["newest"]["hits"]["hits"]
                newest = self._position(newest_hits[0]["sort"], fields) if newest_hits else None
                state = states.get(host)
                if state is None or state.cursor is None or newest is None or newest > state.cursor:
                    hosts.append(host)
            after_key = agg.get("after_key")
            if not buckets or after_key is None:
                break
        return hosts

    def read(
        self,
        host: str,
        after: Cursor | None,
        from_ms: int | None,
        upper_ms: int,
        stats: InputStats,
    ) -> Iterator[Page]:
        fields = self._fields or self.fields()
        if fields is None:
            return
        search_after: list[object] | None = None
        if after is not None:
            search_after = [
                timestamp_value(after.timestamp_ms, fields.timestamp_kind),
                after.log_uuid,
            ]
            from_ms = after.timestamp_ms  # lets the engine skip older segments
        source_fields = self._names.source_fields()
        while True:
            body = host_page_query(
                fields, host, from_ms, upper_ms, search_after, self._page_size, source_fields
            )
            response = self._search(
                body, "hits.hits._index,hits.hits._source,hits.hits.sort,timed_out,_shards"
            )
            hits = (response.get("hits") or {}).get("hits") or []
            if not hits:
                return
            events: list[LogEvent] = []
            last: Cursor | None = after
            for hit in hits:
                event = self._event(hit, fields, host, stats)
                if event is not None:
                    events.append(event)
                position = self._position(hit["sort"], fields)
                if position is not None:
                    last = position
            if last is not None:
                yield Page(events, last)
            if len(hits) < self._page_size:
                return
            search_after = hits[-1]["sort"]

    def events_before(
        self, host: str, before_ms: int, count: int, stats: InputStats
    ) -> list[LogEvent]:
        fields = self._fields or self.fields()
        if fields is None or count <= 0:
            return []
        body = host_page_query(
            fields, host, None, before_ms - 1, None, count, self._names.source_fields(), "desc"
        )
        response = self._search(
            body, "hits.hits._index,hits.hits._source,hits.hits.sort,timed_out,_shards"
        )
        hits = (response.get("hits") or {}).get("hits") or []
        events = [self._event(hit, fields, host, stats) for hit in reversed(hits)]
        return [e for e in events if e is not None]
