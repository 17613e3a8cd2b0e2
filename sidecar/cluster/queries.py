"""Query bodies (pure functions): what the reader asks the cluster, testable without one."""

from __future__ import annotations

from sidecar.cluster.fields import ResolvedFields, TimestampKind

__all__ = [
    "timestamp_value",
    "time_range",
    "event_sort",
    "host_page_query",
    "hosts_query",
    "sort_value_to_ms",
]


def timestamp_value(ms: int, kind: TimestampKind) -> int | str:
    """An epoch-ms instant in the form the field sorts and compares by."""
    if kind == "keyword":
        return str(ms)
    if kind == "date_nanos":
        return ms * 1_000_000
    return ms


def sort_value_to_ms(value: object, kind: TimestampKind) -> object:
    if kind == "date_nanos" and isinstance(value, int):
        return value // 1_000_000
    return value


def time_range(fields: ResolvedFields, from_ms: int | None, upper_ms: int) -> dict[str, object]:
    bounds: dict[str, object] = {"lte": timestamp_value(upper_ms, _range_kind(fields))}
    if from_ms is not None:
        bounds["gte"] = timestamp_value(from_ms, _range_kind(fields))
    if fields.timestamp_kind in ("date", "date_nanos"):
        bounds["format"] = "epoch_millis"
    return {"range": {fields.timestamp: bounds}}


def _range_kind(fields: ResolvedFields) -> TimestampKind:
    # Range bounds on date fields are given as epoch_millis whatever the resolution.
    return "date" if fields.timestamp_kind == "date_nanos" else fields.timestamp_kind


def event_sort(fields: ResolvedFields, order: str = "asc") -> list[dict[str, object]]:
    return [
        {fields.timestamp: {"order": order}},
        {fields.log_uuid: {"order": order}},
    ]


def host_page_query(
    fields: ResolvedFields,
    host: str,
    from_ms: int | None,
    upper_ms: int,
    search_after: list[object] | None,
    size: int,
    source_fields: list[str],
    order: str = "asc",
) -> dict[str, object]:
    body: dict[str, object] = {
        "size": size,
        "sort": event_sort(fields, order),
        "query": {
            "bool": {
                "filter": [{"term": {fields.host: host}}, time_range(fields, from_ms, upper_ms)]
            }
        },
        "_source": {"includes": source_fields},
        "track_total_hits": False,
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def hosts_query(
    fields: ResolvedFields, from_ms: int | None, upper_ms: int, size: int, after_key: dict | None
) -> dict[str, object]:
    """Hosts with events in range, each with its newest (timestamp, log_uuid)."""
    composite: dict[str, object] = {
        "size": size,
        "sources": [{"host": {"terms": {"field": fields.host}}}],
    }
    if after_key is not None:
        composite["after"] = after_key
    return {
        "size": 0,
        "track_total_hits": False,
        "query": {"bool": {"filter": [time_range(fields, from_ms, upper_ms)]}},
        "aggs": {
            "hosts": {
                "composite": composite,
                "aggs": {
                    "newest": {
                        "top_hits": {
                            "size": 1,
                            "sort": event_sort(fields, "desc"),
                            "_source": False,
                        }
                    }
                },
            }
        },
    }
