"""The pure pieces behind reliability: timestamps, text cleaning, lateness buckets, host state
bookkeeping and the backoff schedule."""

from __future__ import annotations

import random

import pytest

from sidecar.app.scheduler import backoff_seconds
from sidecar.cluster.fields import ResolvedFields
from sidecar.cluster.queries import bucket_bounds, bucket_index, timestamp_value
from sidecar.encoding.events import canonical_host, clean_text, parse_timestamp
from sidecar.types import Cursor, HostState, LatenessPlan, LogEvent

KEYWORD = ResolvedFields("HOSTNAME", "_zl_timestamp.keyword", "keyword", "log_uuid")
NUMERIC = ResolvedFields("HOSTNAME", "_zl_timestamp", "numeric", "log_uuid")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1696149046000", (1_696_149_046_000, None)),
        ("1696149046", (1_696_149_046_000, "timestamp_epoch_seconds")),
        (1696149046.5, (1_696_149_046_000, "timestamp_epoch_seconds")),
        ("2023-10-01T10:30:46+02:00", (1_696_149_046_000, None)),
        ("", (None, None)),
        ("yesterday", (None, None)),
        (True, (None, None)),
        (float("nan"), (None, None)),
        (12, (12, None)),  # tiny values stay milliseconds (tests, offsets)
    ],
)
def test_timestamps_are_read_as_epoch_ms_seconds_or_iso(value: object, expected: tuple) -> None:
    assert parse_timestamp(value) == expected


def test_control_characters_and_lone_surrogates_are_replaced_and_clean_text_is_left_alone() -> None:
    assert clean_text("tab\tnew\nline") is None
    assert clean_text("a\x00b\x1bc\ud800d") == "a\ufffdb\ufffdc\ufffdd"


def test_host_names_fold_case_unless_told_not_to() -> None:
    assert canonical_host("GOKUL-L3C", case_sensitive=False) == "gokul-l3c"
    assert canonical_host("GOKUL-L3C", case_sensitive=True) == "GOKUL-L3C"


def test_lateness_buckets_are_aligned_and_cover_the_window() -> None:
    plan = LatenessPlan(floor_ms=60_000, bucket_ms=60_000, checked_through_ms=0)
    assert plan.buckets(240_000) == [60_000, 120_000, 180_000, 240_000]
    assert plan.bucket_of(59_999) is None
    assert plan.bucket_of(179_999) == 120_000


@pytest.mark.parametrize("fields", [KEYWORD, NUMERIC], ids=["keyword", "numeric"])
def test_a_hit_falls_in_the_bucket_whose_range_query_counts_it(fields: ResolvedFields) -> None:
    starts = [1_696_149_040_000, 1_696_149_046_000, 1_696_149_052_000]
    bounds = bucket_bounds(fields, starts, 1_696_149_057_999)
    boundaries = [timestamp_value(b, fields.timestamp_kind) for b in starts]

    def counted_by(value: object) -> list[int]:
        hits = []
        for i, query in enumerate(bounds.values()):
            limits = query["range"][fields.timestamp]
            low = limits["gte"]
            high = limits.get("lt", limits.get("lte"))
            inside = low <= value and (value < high if "lt" in limits else value <= high)
            if inside:
                hits.append(i)
        return hits

    values: list[object] = [1_696_149_045_999, 1_696_149_046_000, 1_696_149_057_999]
    if fields.timestamp_kind == "keyword":
        # Epoch seconds in a keyword field sort just before their millisecond form.
        values = [str(v) for v in values] + ["1696149046"]
    for value in values:
        assert counted_by(value) == [bucket_index(value, fields.timestamp_kind, boundaries)]


def _event(ts: int) -> LogEvent:
    return LogEvent("h", ts, f"u{ts}", "4624", "success")


def test_host_state_adds_counts_rewinds_and_prunes() -> None:
    state = HostState("h").advanced([_event(1)], Cursor(1, "u1"), 2, {0: 1}, read_through_ms=10)
    state = state.advanced([_event(5)], Cursor(5, "u5"), 2, {0: 1, 5: 1})
    assert state.counts == ((0, 2), (5, 1)) and state.read_through_ms == 10

    rewound = state.rewound((_event(0),), from_bucket_ms=5, incident=None)
    assert rewound.cursor is None and rewound.counts == ((0, 2),) and rewound.incident is None
    assert rewound.tail == (_event(0),) and rewound.read_through_ms == 10
    assert state.pruned(5).counts == ((5, 1),)


def test_backoff_grows_per_failure_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    waits = [backoff_seconds(n, 2.0, 30.0, rng) for n in range(1, 7)]
    ceilings = [2, 4, 8, 16, 30, 30]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert len(set(waits)) == len(waits)


def test_a_cycle_s_bad_input_late_documents_and_dead_letters_reach_the_metrics() -> None:
    from prometheus_client import generate_latest

    from sidecar.app.metrics import SidecarMetrics
    from sidecar.types import CycleReport

    report = CycleReport("c1", started_ms=0, upper_bound_ms=0)
    report.unreadable = {"missing_timestamp": 3}
    report.input.repair("host_case_folded", {"host": "H"})
    report.late_documents, report.dead_letters, report.state_conflicts = 4, 2, 1
    report.anomalies_withdrawn, report.incidents_withdrawn = 5, 1
    metrics = SidecarMetrics()

    metrics.record_cycle(report, now_s=100.0)

    text = generate_latest(metrics.registry).decode()
    assert 'sidecar_unreadable_documents{reason="missing_timestamp"} 3.0' in text
    assert 'sidecar_unreadable_documents{reason="missing_host"} 0.0' in text
    assert 'sidecar_bad_input_total{action="repaired",reason="host_case_folded"} 1.0' in text
    assert "sidecar_late_documents_total 4.0" in text
    assert 'sidecar_withdrawn_total{kind="anomaly"} 5.0' in text
    assert 'sidecar_withdrawn_total{kind="incident"} 1.0' in text
    assert "sidecar_dead_letters_total 2.0" in text
    assert "sidecar_state_conflicts_total 1.0" in text
