"""Query bodies the reader sends: bounded pages, needed fields only, resumable sort."""

from __future__ import annotations

import pytest

from sidecar.cluster.fields import ResolvedFields
from sidecar.cluster.queries import host_page_query, hosts_query, time_range, timestamp_value

KEYWORD = ResolvedFields("HOSTNAME.keyword", "_zl_timestamp.keyword", "keyword", "log_uuid.keyword")
DATE = ResolvedFields("HOSTNAME", "_zl_timestamp", "date", "log_uuid")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (KEYWORD, {"gte": "1700000000000", "lte": "1700000005000"}),
        (DATE, {"gte": 1700000000000, "lte": 1700000005000, "format": "epoch_millis"}),
    ],
)
def test_time_bounds_use_the_field_s_own_form(fields: ResolvedFields, expected: dict) -> None:
    assert time_range(fields, 1700000000000, 1700000005000) == {
        "range": {fields.timestamp: expected}
    }


def test_nanosecond_dates_resume_from_nanoseconds() -> None:
    assert timestamp_value(1_700_000_000_000, "date_nanos") == 1_700_000_000_000_000_000


def test_a_host_page_is_sorted_resumable_and_fetches_only_needed_fields() -> None:
    body = host_page_query(KEYWORD, "h1", None, 99, ["1700000000000", "u9"], 500, ["A", "B"])
    assert body["sort"] == [
        {"_zl_timestamp.keyword": {"order": "asc"}},
        {"log_uuid.keyword": {"order": "asc", "missing": "", "unmapped_type": "keyword"}},
    ]
    assert body["search_after"] == ["1700000000000", "u9"]
    assert body["size"] == 500 and body["_source"] == {"includes": ["A", "B"]}
    assert "from" not in body and body["track_total_hits"] is False
    assert {"term": {"HOSTNAME.keyword": "h1"}} in body["query"]["bool"]["filter"]


def test_hosts_are_paged_with_their_newest_position() -> None:
    body = hosts_query(DATE, None, 5, 1000, {"host": "h9"})
    composite = body["aggs"]["hosts"]["composite"]
    assert composite["after"] == {"host": "h9"} and composite["size"] == 1000
    newest = body["aggs"]["hosts"]["aggs"]["newest"]["top_hits"]
    assert newest["size"] == 1 and newest["sort"][0] == {"_zl_timestamp": {"order": "desc"}}
    assert body["size"] == 0
