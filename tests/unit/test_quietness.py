"""Live quietness (issue 17): flagged events per 10,000 and incidents per host-day, measured on
the cycles of the last day and compared with the operator's false-alarm budget."""

from __future__ import annotations

import math
from types import SimpleNamespace

from prometheus_client import generate_latest
from structlog.testing import capture_logs

from sidecar.app.metrics import SidecarMetrics
from sidecar.pipeline.quietness import QuietWindow, covered_ms, distinct_flagged
from sidecar.types import Cursor, CycleReport, HostState, LogEvent

HOUR_MS = 3_600_000


def report(events: int, flagged: int, opened: int, host_ms: int) -> CycleReport:
    r = CycleReport("c", 0, 0, events_read=events, incidents_opened=opened)
    r.events_flagged, r.host_ms_covered = flagged, host_ms
    return r


def test_a_host_covers_the_log_time_its_cursor_moved_over() -> None:
    before = HostState("h", Cursor(1_000, "a"))
    after = HostState("h", Cursor(61_000, "b"))
    assert covered_ms(before, after, None) == 60_000
    # Read for the first time: from its first event read.
    first = [LogEvent("h", 5_000, "x", "1", "ok")]
    assert covered_ms(HostState("h"), after, first) == 56_000
    assert covered_ms(HostState("h"), HostState("h"), first) == 0  # nothing read


def test_an_event_two_models_flag_counts_once() -> None:
    def flagged(host: str, uuid: str):
        return SimpleNamespace(event=SimpleNamespace(host=host, log_uuid=uuid))

    batches = [
        [flagged("h1", "u1"), flagged("h1", "u2")],
        [flagged("h1", "u1"), flagged("h2", "u1")],
    ]
    assert distinct_flagged(batches) == 3


def test_the_window_keeps_the_last_day_of_cycles() -> None:
    window = QuietWindow(seconds=86_400)
    window.add(report(10_000, 50, 4, 24 * HOUR_MS), now_s=0)
    latest = window.add(report(10_000, 10, 1, 24 * HOUR_MS), now_s=3_600)
    assert (latest.events, latest.flagged, latest.incidents_opened) == (20_000, 60, 5)
    assert latest.flagged_per_10k == 30.0
    assert latest.incidents_per_host_day == 2.5
    dropped = window.add(report(0, 0, 0, 0), now_s=86_400 + 1)  # the first cycle left
    assert (dropped.events, dropped.incidents_opened, dropped.host_ms) == (10_000, 1, 24 * HOUR_MS)


def test_less_than_a_host_hour_gives_no_rate_per_host_day() -> None:
    window = QuietWindow()
    assert window.add(report(100, 1, 1, HOUR_MS - 1), now_s=0).incidents_per_host_day is None
    assert QuietWindow().add(report(0, 0, 0, 0), now_s=0).flagged_per_10k is None


def test_the_gauges_report_the_rates_and_the_budget() -> None:
    metrics = SidecarMetrics(alert_budget=0.05)
    metrics.record_cycle(report(20_000, 8, 1, 10 * 24 * HOUR_MS), now_s=1_000)
    text = generate_latest(metrics.registry).decode()
    assert "sidecar_alert_budget 0.05" in text
    assert "sidecar_flagged_per_10k_events 4.0" in text
    assert "sidecar_incidents_per_host_day 0.1" in text
    assert 'sidecar_incidents_total{change="opened"} 1.0' in text
    assert "sidecar_events_flagged_total 8.0" in text
    assert "sidecar_host_seconds_covered_total 864000.0" in text


def test_an_incident_rate_far_over_budget_warns_once_until_it_comes_back() -> None:
    metrics = SidecarMetrics(alert_budget=0.05)
    with capture_logs() as logs:
        # 2 incidents over 10 host-days: 0.2 per host-day, four times the budget.
        metrics.record_cycle(report(1_000, 2, 2, 10 * 24 * HOUR_MS), now_s=0)
        metrics.record_cycle(report(1_000, 0, 0, HOUR_MS), now_s=60)
    warnings = [e for e in logs if e["event"] == "incident_rate_over_budget"]
    assert len(warnings) == 1
    assert warnings[0]["alert_budget"] == 0.05 and warnings[0]["incidents_per_host_day"] > 0.15


def test_under_a_host_day_of_log_time_it_does_not_warn_and_the_rate_is_nan() -> None:
    metrics = SidecarMetrics(alert_budget=0.05)
    with capture_logs() as logs:
        metrics.record_cycle(report(1_000, 5, 5, HOUR_MS // 2), now_s=0)
    assert not [e for e in logs if e["event"] == "incident_rate_over_budget"]
    value = next(
        line.split()[-1]
        for line in generate_latest(metrics.registry).decode().splitlines()
        if line.startswith("sidecar_incidents_per_host_day ")
    )
    assert math.isnan(float(value))


def test_incident_bands_and_retrain_outcomes_are_counted_from_zero() -> None:
    metrics = SidecarMetrics()
    text = generate_latest(metrics.registry).decode()
    # Present at 0 before anything happened: Prometheus's increase() then sees the first rise.
    for band in ("low", "medium", "high", "critical"):
        assert f'sidecar_incident_grades_total{{band="{band}"}} 0.0' in text
    for outcome in ("promoted", "rejected", "failed"):
        assert f'sidecar_retrains_total{{outcome="{outcome}"}} 0.0' in text
    cycle = report(1_000, 3, 2, HOUR_MS)
    cycle.incident_bands.update({"medium": 1, "critical": 1})
    metrics.record_cycle(cycle, now_s=1_000)
    metrics.record_retrain("rejected")
    text = generate_latest(metrics.registry).decode()
    assert 'sidecar_incident_grades_total{band="medium"} 1.0' in text
    assert 'sidecar_incident_grades_total{band="critical"} 1.0' in text
    assert 'sidecar_incident_grades_total{band="high"} 0.0' in text
    assert 'sidecar_retrains_total{outcome="rejected"} 1.0' in text
    assert "sidecar_started_timestamp_seconds " in text
