"""Reading new events per host: a composite aggregation to find hosts, then search_after pages
sorted by (timestamp, log_uuid). No from/size, no scroll: memory stays bounded per page and a
page can be resumed from its last sort values.

Watched indices that map the fields differently form groups (see `fields.resolve_layout`); each
group is searched with its own sort and a host's streams are merged by time, so a mapping change
between two daily indices neither stops the sidecar nor reorders a host's events.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from sidecar.cluster.fields import IndexGroup, Layout, ResolvedFields, resolve_layout
from sidecar.cluster.queries import (
    bucket_index,
    host_page_query,
    hosts_query,
    late_check_query,
    sort_value_to_ms,
    timestamp_value,
    unreadable_query,
)
from sidecar.cluster.searching import HITS_PATH, multi_search, search
from sidecar.encoding.events import (
    FieldNames,
    canonical_host,
    clean_text,
    parse_event,
    parse_timestamp_ms,
)
from sidecar.errors import SourceUnavailable
from sidecar.ports import Page
from sidecar.types import Cursor, HostState, InputStats, LatenessPlan, LogEvent

__all__ = ["ClusterSource"]

log = structlog.get_logger("sidecar.cluster.reader")

# Hosts whose context is fetched in one multi-search request.
_HOSTS_PER_MSEARCH = 50

# (position, hit, group) as one group's stream yields them, merged across groups by position.
_Hit = tuple[Cursor, dict, IndexGroup]


class ClusterSource:
    def __init__(
        self,
        client: OpenSearch,
        patterns: list[str],
        names: FieldNames,
        page_size: int = 2_000,
        hosts_page_size: int = 1_000,
        case_sensitive_hosts: bool = True,
        event_id_optional: bool = False,
    ) -> None:
        self._client = client
        self._patterns = patterns
        self._names = names
        self._page_size = page_size
        self._hosts_page_size = hosts_page_size
        self._case_sensitive = case_sensitive_hosts
        # Template mining keys events without EVENTID: a missing one is not bad input then.
        self._event_id_optional = event_id_optional
        self._layout: Layout | None = None

    # -- helpers ----------------------------------------------------------------------------
    def _search(self, index: str, body: dict[str, object], filter_path: str) -> dict:
        return search(self._client, index, body, filter_path)

    def _msearch(self, index: str, bodies: list[dict], filter_path: str) -> list[dict]:
        return multi_search(self._client, index, bodies, filter_path)

    def layout(self, stats: InputStats | None = None) -> Layout:
        """The watched indices' field layout, read afresh (mappings change between cycles)."""
        try:
            self._layout = resolve_layout(self._client, self._patterns, self._names)
        except NotFoundError:
            self._layout = Layout(())  # no index matches the watched patterns (yet)
        except (OSConnectionError, ConnectionTimeout) as exc:
            raise SourceUnavailable(f"cluster unreachable while reading mappings: {exc}") from exc
        except TransportError as exc:
            raise SourceUnavailable(f"reading mappings failed ({exc.status_code})") from exc
        if stats is not None:
            for index, reason in self._layout.skipped:
                stats.reject("index_unreadable", {"index": index, "reason": reason})
        return self._layout

    def _groups(self) -> tuple[IndexGroup, ...]:
        return (self._layout or self.layout()).groups

    def _host(self, raw: str) -> str:
        return canonical_host(raw, self._case_sensitive)

    def _event(self, hit: dict, fields: ResolvedFields, host: str, stats: InputStats):
        # The sort value is the timestamp as the cluster ordered it; the host is the one the
        # query filtered on. Both beat whatever shape the _source holds.
        return parse_event(
            hit.get("_source") or {},
            self._names,
            stats,
            index=hit.get("_index"),
            timestamp=sort_value_to_ms(hit["sort"][0], fields.timestamp_kind),
            host=host,
            doc_id=hit.get("_id"),
            event_id_optional=self._event_id_optional,
        )

    @staticmethod
    def _position(sort: list[object], fields: ResolvedFields) -> Cursor | None:
        ts = parse_timestamp_ms(sort_value_to_ms(sort[0], fields.timestamp_kind))
        if ts is None or not isinstance(sort[1], str):
            return None
        return Cursor(ts, sort[1])

    def _group_hits(
        self,
        group: IndexGroup,
        host: str,
        after: Cursor | None,
        from_ms: int | None,
        upper_ms: int,
    ) -> Iterator[_Hit]:
        """One group's hits for a host in sort order, each with its position."""
        fields = group.fields
        search_after: list[object] | None = None
        if after is not None:
            search_after = [
                timestamp_value(after.timestamp_ms, fields.timestamp_kind),
                after.log_uuid,
            ]
            from_ms = after.timestamp_ms  # lets the engine skip older segments
        # A hit whose sort value cannot be read (an odd keyword) keeps the last good position.
        last = after or Cursor(from_ms or 0, "")
        source_fields = self._names.source_fields()
        while True:
            body = host_page_query(
                fields,
                host,
                from_ms,
                upper_ms,
                search_after,
                self._page_size,
                source_fields,
                case_sensitive=self._case_sensitive,
            )
            hits = (self._search(group.expression, body, HITS_PATH).get("hits") or {}).get(
                "hits"
            ) or []
            for hit in hits:
                last = self._position(hit["sort"], fields) or last
                yield last, hit, group
            if len(hits) < self._page_size:
                return
            search_after = hits[-1]["sort"]

    # -- EventSource --------------------------------------------------------------------------
    def hosts_with_new(
        self,
        states: Mapping[str, HostState],
        new_host_from_ms: int | None,
        upper_ms: int,
        stats: InputStats | None = None,
    ) -> list[str]:
        groups = self.layout(stats).groups
        if not groups:
            log.info("no_watched_fields_yet", indices=",".join(self._patterns))
            return []
        # One range for all hosts: from the oldest cursor (or the new-host start, if older).
        from_ms: int | None = None
        if new_host_from_ms is not None:
            known = [s.cursor.timestamp_ms for s in states.values() if s.cursor is not None]
            from_ms = min([new_host_from_ms, *known])
        newest: dict[str, Cursor | None] = {}
        for group in groups:
            for raw, position in self._newest_per_host(group, from_ms, upper_ms):
                if clean_text(raw) is not None:
                    # Control characters or lone surrogates: no request could name this host.
                    if stats is not None:
                        stats.reject("host_unusable", {"host": repr(raw)[:100]})
                    continue
                host = self._host(raw)
                if host != raw and stats is not None:
                    stats.repair("host_case_folded", {"host": raw, "read_as": host})
                known_position = newest.get(host)
                if host not in newest or (
                    position is not None and (known_position is None or position > known_position)
                ):
                    newest[host] = position
        hosts = []
        for host, position in sorted(newest.items()):
            state = states.get(host)
            if state is None or state.cursor is None or position is None or position > state.cursor:
                hosts.append(host)
        return hosts

    def _newest_per_host(
        self, group: IndexGroup, from_ms: int | None, upper_ms: int
    ) -> Iterator[tuple[str, Cursor | None]]:
        after_key = None
        while True:
            body = hosts_query(group.fields, from_ms, upper_ms, self._hosts_page_size, after_key)
            response = self._search(
                group.expression,
                body,
                "aggregations.hosts.after_key,aggregations.hosts.buckets.key,"
                "aggregations.hosts.buckets.newest.hits.hits.sort,timed_out,_shards",
            )
            agg = (response.get("aggregations") or {}).get("hosts") or {}
            buckets = agg.get("buckets") or []
            for bucket in buckets:
                newest_hits = bucket["newest"]["hits"]["hits"]
                position = (
                    self._position(newest_hits[0]["sort"], group.fields) if newest_hits else None
                )
                yield str(bucket["key"]["host"]), position
            after_key = agg.get("after_key")
            if not buckets or after_key is None:
                return

    def read(
        self,
        host: str,
        after: Cursor | None,
        from_ms: int | None,
        upper_ms: int,
        stats: InputStats,
        plan: LatenessPlan | None = None,
    ) -> Iterator[Page]:
        groups = self._groups()
        if not groups:
            return
        streams = [self._group_hits(g, host, after, from_ms, upper_ms) for g in groups]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda h: h[0])
        boundaries = {
            g.fields: [timestamp_value(b, g.fields.timestamp_kind) for b in plan.buckets(upper_ms)]
            for g in groups
            if plan is not None
        }
        events: list[LogEvent] = []
        counts: dict[int, int] = {}
        last: Cursor | None = after
        seen = 0
        previous_uuid = None
        for position, hit, group in merged:
            event = self._event(hit, group.fields, host, stats)
            if event is not None:
                if event.log_uuid == previous_uuid:
                    stats.repair("duplicate_log_uuid", {"log_uuid": event.log_uuid[:100]})
                previous_uuid = event.log_uuid
                events.append(event)
            if plan is not None:
                i = bucket_index(
                    hit["sort"][0], group.fields.timestamp_kind, boundaries[group.fields]
                )
                if i >= 0:
                    bucket = plan.floor_ms + i * plan.bucket_ms
                    counts[bucket] = counts.get(bucket, 0) + 1
            last = position
            seen += 1
            if seen == self._page_size:
                yield Page(events, last, counts)
                events, counts, seen = [], {}, 0
        if seen and last is not None:
            yield Page(events, last, counts)

    def events_before(
        self, before: Mapping[str, int], count: int, stats: InputStats
    ) -> dict[str, list[LogEvent]]:
        found: dict[str, list[tuple[Cursor, LogEvent]]] = {host: [] for host in before}
        hosts = list(before) if count > 0 else []
        for group in self._groups() if hosts else ():
            # One round trip per chunk of hosts: a cycle after an outage, or with late
            # documents on many hosts, needs hundreds of these, and one search each made the
            # cycle wait on the cluster's latency hundreds of times.
            for start in range(0, len(hosts), _HOSTS_PER_MSEARCH):
                chunk = hosts[start : start + _HOSTS_PER_MSEARCH]
                bodies = [
                    host_page_query(
                        group.fields,
                        host,
                        None,
                        before[host] - 1,
                        None,
                        count,
                        self._names.source_fields(),
                        "desc",
                        case_sensitive=self._case_sensitive,
                    )
                    for host in chunk
                ]
                answers = self._msearch(group.expression, bodies, HITS_PATH)
                for host, answer in zip(chunk, answers, strict=True):
                    for hit in (answer.get("hits") or {}).get("hits") or []:
                        position = self._position(hit["sort"], group.fields)
                        event = self._event(hit, group.fields, host, stats)
                        if position is not None and event is not None:
                            found[host].append((position, event))
        earlier: dict[str, list[LogEvent]] = {}
        for host, items in found.items():
            items.sort(key=lambda item: item[0])
            earlier[host] = [event for _, event in items[-count:]] if count > 0 else []
        return earlier

    def late_buckets(
        self, states: Mapping[str, HostState], plan: LatenessPlan
    ) -> dict[str, tuple[int, int]]:
        """Hosts holding more documents in a bucket than their state counted:
        host -> (the earliest such bucket, how many more documents in all)."""
        buckets = plan.buckets(plan.checked_through_ms)
        if not buckets:
            return {}
        now_held: dict[str, dict[int, int]] = {}
        for group in self._groups():
            after_key = None
            while True:
                body = late_check_query(
                    group.fields,
                    buckets,
                    plan.checked_through_ms,
                    self._hosts_page_size,
                    after_key,
                )
                response = self._search(
                    group.expression,
                    body,
                    "aggregations.hosts.after_key,aggregations.hosts.buckets,timed_out,_shards",
                )
                agg = (response.get("aggregations") or {}).get("hosts") or {}
                for bucket in agg.get("buckets") or []:
                    host = self._host(str(bucket["key"]["host"]))
                    per_bucket = now_held.setdefault(host, {})
                    for start, entry in bucket["buckets"]["buckets"].items():
                        per_bucket[int(start)] = per_bucket.get(int(start), 0) + entry["doc_count"]
                after_key = agg.get("after_key")
                if not agg.get("buckets") or after_key is None:
                    break
        late: dict[str, tuple[int, int]] = {}
        for host, held in now_held.items():
            state = states.get(host)
            if state is None or state.cursor is None or state.read_through_ms is None:
                continue  # never read with counting on: nothing to compare with
            counted = dict(state.counts)
            extra = {b: n - counted.get(b, 0) for b, n in held.items() if n > counted.get(b, 0)}
            if extra:
                late[host] = (min(extra), sum(extra.values()))
        return late

    def unreadable(self, future_ms: int, stats: InputStats) -> dict[str, int]:
        counts: dict[str, int] = {}
        for group in self._groups():
            body = unreadable_query(group.fields, self._names.source_fields()[:5], future_ms)
            response = self._search(
                group.expression, body, "aggregations.unreadable.buckets,timed_out,_shards"
            )
            buckets = ((response.get("aggregations") or {}).get("unreadable") or {}).get(
                "buckets"
            ) or {}
            for reason, entry in buckets.items():
                if not entry["doc_count"]:
                    continue
                counts[reason] = counts.get(reason, 0) + entry["doc_count"]
                hits = entry["sample"]["hits"]["hits"]
                if hits:
                    sample = {"_id": f"{hits[0]['_index']}/{hits[0]['_id']}", **hits[0]["_source"]}
                    stats.samples.setdefault(reason, repr(sample)[:300])
        return counts
