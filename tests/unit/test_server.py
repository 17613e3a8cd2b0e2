"""Health, readiness and metrics over a real local HTTP socket."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from sidecar.app.metrics import SidecarMetrics
from sidecar.app.server import Health, HealthServer
from sidecar.types import CycleReport


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def served():
    health = Health(max_failed_cycles=2, models_loaded=True, ping=lambda: True, ping_cache_s=0)
    metrics = SidecarMetrics()
    server = HealthServer("127.0.0.1", 0, health, metrics).start()
    yield server.port, health, metrics
    server.stop()


def test_liveness_answers_while_the_process_runs(served) -> None:
    port, _, _ = served
    assert get(port, "/healthz") == (200, b'{"alive":true}')
    assert get(port, "/nope")[0] == 404


def test_ready_when_models_are_loaded_and_the_cluster_answers(served) -> None:
    port, _, _ = served
    status, body = get(port, "/readyz")
    assert status == 200 and orjson.loads(body)["ready"] is True


def test_not_ready_after_too_many_failed_cycles_then_ready_again(served) -> None:
    port, health, _ = served
    for _ in range(3):
        health.cycle_failed("SourceUnavailable: cluster unreachable")
    status, body = get(port, "/readyz")
    assert status == 503
    assert orjson.loads(body)["checks"]["recent_cycles_ok"] is False
    assert "cluster unreachable" in orjson.loads(body)["last_error"]
    health.cycle_succeeded()
    assert get(port, "/readyz")[0] == 200


def test_not_ready_while_the_cluster_does_not_answer(served) -> None:
    port, health, _ = served

    def refuse() -> bool:
        raise ConnectionError("refused")

    health.ping = refuse
    status, body = get(port, "/readyz")
    assert status == 503 and orjson.loads(body)["checks"]["cluster_reachable"] is False


def test_metrics_count_cycles_events_anomalies_errors_and_lag(served) -> None:
    port, _, metrics = served
    report = CycleReport("c1", 0, 0, events_read=120, duration_s=0.4)
    report.events_scored.update({"deeplog": 120})
    report.anomalies_written.update({"deeplog": 3})
    report.input.reject("bad_timestamp", {})
    report.host_positions.update({"h1": 1_000_000, "h2": 1_060_000})
    metrics.record_cycle(report, now_s=1_100)
    metrics.record_failure("WriteError", 0.2)

    value = metrics.registry.get_sample_value
    assert value("sidecar_cycles_total", {"outcome": "success"}) == 1
    assert value("sidecar_cycles_total", {"outcome": "failure"}) == 1
    assert value("sidecar_events_read_total") == 120
    assert value("sidecar_events_scored_total", {"model": "deeplog"}) == 120
    assert value("sidecar_anomalies_written_total", {"model": "deeplog"}) == 3
    assert value("sidecar_errors_total", {"kind": "WriteError"}) == 1
    assert value("sidecar_bad_input_total", {"action": "rejected", "reason": "bad_timestamp"}) == 1
    assert value("sidecar_host_lag_seconds", {"host": "h1"}) == 100
    assert value("sidecar_max_host_lag_seconds") == 100
    assert value("sidecar_last_successful_cycle_timestamp_seconds") == 1_100
    status, text = get(port, "/metrics")
    assert status == 200 and b"sidecar_cycle_duration_seconds_bucket" in text
