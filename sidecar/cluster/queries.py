"""Query bodies (pure functions): what the reader asks the cluster, testable without one."""

from __future__ import annotations

import bisect

from sidecar.cluster.fields import ResolvedFields, TimestampKind
from sidecar.types import UNREADABLE_REASONS

__all__ = [
    "timestamp_value",
    "time_range",
    "event_sort",
    "host_page_query",
    "hosts_query",
    "sort_value_to_ms",
    "host_filter",
    "bucket_bounds",
    "bucket_index",
    "late_check_query",
    "unreadable_query",
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
    # A document without log_uuid sorts as "" (first in its millisecond) instead of null, so
    # its sort values can still be handed back to search_after. `unmapped_type` lets an index
    # where no document has a log_uuid yet sort alongside the others.
    return [
        {fields.timestamp: {"order": order}},
        {fields.log_uuid: {"order": order, "missing": "", "unmapped_type": "keyword"}},
    ]


def host_filter(fields: ResolvedFields, host: str, case_sensitive: bool) -> dict[str, object]:
    if case_sensitive:
        return {"term": {fields.host: host}}
    return {"term": {fields.host: {"value": host, "case_insensitive": True}}}


def bucket_bounds(
    fields: ResolvedFields, buckets: list[int], through_ms: int
) -> dict[str, dict[str, object]]:
    """One contiguous range per lateness bucket, keyed by its start, in the field's own form.

    Contiguous ([start, next start), the last up to `through_ms`) so that every value, even an
    odd keyword such as epoch seconds, falls in exactly the bucket `bucket_index` gives it.
    """
    kind = _range_kind(fields)
    bounds: dict[str, dict[str, object]] = {}
    for i, start in enumerate(buckets):
        limits: dict[str, object] = {"gte": timestamp_value(start, kind)}
        if i + 1 < len(buckets):
            limits["lt"] = timestamp_value(buckets[i + 1], kind)
        else:
            limits["lte"] = timestamp_value(through_ms, kind)
        if fields.timestamp_kind in ("date", "date_nanos"):
            limits["format"] = "epoch_millis"
        bounds[str(start)] = {"range": {fields.timestamp: limits}}
    return bounds


def bucket_index(sort_value: object, kind: TimestampKind, boundaries: list[object]) -> int:
    """Which bucket (index into `boundaries`, the starts in the field's form) a sort value
    falls in, compared the way the cluster compares: strings by bytes, numbers by value;
    -1 before the first."""
    if kind == "date_nanos" and isinstance(sort_value, int):
        sort_value = sort_value // 1_000_000
    if kind == "keyword":
        return bisect.bisect_right(boundaries, str(sort_value)) - 1  # type: ignore[arg-type]
    if isinstance(sort_value, int | float):
        return bisect.bisect_right(boundaries, sort_value) - 1  # type: ignore[arg-type]
    return -1


def late_check_query(
    fields: ResolvedFields,
    buckets: list[int],
    through_ms: int,
    size: int,
    after_key: dict | None,
) -> dict[str, object]:
    """Per host, how many documents each lateness bucket holds now."""
    return _per_host(
        fields,
        time_range(fields, buckets[0], through_ms),
        size,
        after_key,
        {"buckets": {"filters": {"filters": bucket_bounds(fields, buckets, through_ms)}}},
    )


def _per_host(
    fields: ResolvedFields,
    query_range: dict[str, object],
    size: int,
    after_key: dict | None,
    per_host_aggs: dict[str, object],
) -> dict[str, object]:
    """A page of a composite aggregation over hosts in range, `per_host_aggs` under each."""
    composite: dict[str, object] = {
        "size": size,
        "sources": [{"host": {"terms": {"field": fields.host}}}],
    }
    if after_key is not None:
        composite["after"] = after_key
    return {
        "size": 0,
        "track_total_hits": False,
        "query": {"bool": {"filter": [query_range]}},
        "aggs": {"hosts": {"composite": composite, "aggs": per_host_aggs}},
    }


# Keyword epoch-ms timestamps start with "1" until 2033; ISO dates ("2023-...") sort after
# every such string and empty or negative ones before "1000000000" (epoch seconds, read as such).
_KEYWORD_EPOCH_BOUNDS = ("1000000000", "2")


def unreadable_query(
    fields: ResolvedFields, source_fields: list[str], future_ms: int
) -> dict[str, object]:
    """Counts (and one sample each) of documents that no time-range read can reach."""
    ts = fields.timestamp
    if fields.timestamp_kind == "keyword":
        low, high = _KEYWORD_EPOCH_BOUNDS
        not_epoch: dict[str, object] = {
            "bool": {
                "should": [
                    {"range": {ts: {"lt": low}}},
                    {"range": {ts: {"gte": high}}},
                ],
                "minimum_should_match": 1,
            }
        }
        future: dict[str, object] = {"range": {ts: {"gt": str(future_ms), "lt": high}}}
    else:
        extra = {"format": "epoch_millis"} if fields.timestamp_kind != "numeric" else {}
        not_epoch = {"range": {ts: {"lt": 1_000_000_000_000, **extra}}}
        future = {"range": {ts: {"gt": future_ms, **extra}}}
    filters: dict[str, dict[str, object]] = {
        "missing_timestamp": {"bool": {"must_not": [{"exists": {"field": ts}}]}},
        "missing_host": {
            "bool": {
                "filter": [{"exists": {"field": ts}}],
                "must_not": [{"exists": {"field": fields.host}}],
            }
        },
        "timestamp_in_future": future,
        "timestamp_not_epoch_ms": not_epoch,
    }
    assert tuple(filters) == UNREADABLE_REASONS  # the metrics publish exactly these
    return {
        "size": 0,
        "track_total_hits": False,
        "aggs": {
            "unreadable": {
                "filters": {"filters": filters},
                "aggs": {"sample": {"top_hits": {"size": 1, "_source": source_fields}}},
            }
        },
    }


def host_page_query(
    fields: ResolvedFields,
    host: str,
    from_ms: int | None,
    upper_ms: int,
    search_after: list[object] | None,
    size: int,
    source_fields: list[str],
    order: str = "asc",
    case_sensitive: bool = True,
) -> dict[str, object]:
    body: dict[str, object] = {
        "size": size,
        "sort": event_sort(fields, order),
        "query": {
            "bool": {
                "filter": [
                    host_filter(fields, host, case_sensitive),
                    time_range(fields, from_ms, upper_ms),
                ]
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
    newest = {"top_hits": {"size": 1, "sort": event_sort(fields, "desc"), "_source": False}}
    return _per_host(
        fields, time_range(fields, from_ms, upper_ms), size, after_key, {"newest": newest}
    )
