"""Prometheus metrics of the running sidecar, fed from cycle reports (one place, no globals)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sidecar.types import UNREADABLE_REASONS, CycleReport

__all__ = ["SidecarMetrics"]


class SidecarMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cycles = Counter("sidecar_cycles", "Cycles run, by outcome", ["outcome"], registry=r)
        self.cycle_seconds = Histogram(
            "sidecar_cycle_duration_seconds",
            "Duration of a cycle",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.events_read = Counter("sidecar_events_read", "Log events read", registry=r)
        self.events_scored = Counter(
            "sidecar_events_scored", "Log events scored, per model", ["model"], registry=r
        )
        self.anomalies = Counter(
            "sidecar_anomalies_written",
            "Anomaly documents acknowledged by the cluster, per model",
            ["model"],
            registry=r,
        )
        self.bad_input = Counter(
            "sidecar_bad_input",
            "Documents rejected or repaired, by reason",
            ["action", "reason"],
            registry=r,
        )
        self.unreadable = Gauge(
            "sidecar_unreadable_documents",
            "Documents in the watched indices that no read can reach, by reason (last cycle)",
            ["reason"],
            registry=r,
        )
        self.mined_event_ids = Counter(
            "sidecar_mined_event_ids",
            "Events keyed by the template mined from their MESSAGE (SIDECAR_TEMPLATE_MINING)",
            registry=r,
        )
        self.late_documents = Counter(
            "sidecar_late_documents",
            "Documents found behind a host's cursor within the lateness window (re-read)",
            registry=r,
        )
        self.dead_letters = Counter(
            "sidecar_dead_letters",
            "Anomaly documents refused by the cluster and kept in the dead-letter index",
            registry=r,
        )
        self.state_conflicts = Counter(
            "sidecar_state_conflicts",
            "Host states another sidecar had already moved at least as far (theirs kept)",
            registry=r,
        )
        self.errors = Counter(
            "sidecar_errors", "Failed cycles, by error kind", ["kind"], registry=r
        )
        self.host_lag = Gauge(
            "sidecar_host_lag_seconds",
            "How far a host's cursor is behind now, set when the host advances",
            ["host"],
            registry=r,
        )
        self.max_host_lag = Gauge(
            "sidecar_max_host_lag_seconds",
            "The largest host lag seen in the last cycle",
            registry=r,
        )
        self.last_success = Gauge(
            "sidecar_last_successful_cycle_timestamp_seconds",
            "When the last cycle finished without error (Unix time)",
            registry=r,
        )
        self.model_info = Gauge(
            "sidecar_model_info", "Loaded models (value 1)", ["model", "version"], registry=r
        )

    def record_cycle(self, report: CycleReport, now_s: float | None = None) -> None:
        now_s = time.time() if now_s is None else now_s
        self.cycles.labels("success").inc()
        self.cycle_seconds.observe(report.duration_s)
        self.events_read.inc(report.events_read)
        for model, count in report.events_scored.items():
            self.events_scored.labels(model).inc(count)
        for model, count in report.anomalies_written.items():
            self.anomalies.labels(model).inc(count)
        for reason, count in report.input.rejected.items():
            self.bad_input.labels("rejected", reason).inc(count)
        for reason, count in report.input.repaired.items():
            self.bad_input.labels("repaired", reason).inc(count)
        for reason in UNREADABLE_REASONS:
            self.unreadable.labels(reason).set(report.unreadable.get(reason, 0))
        self.late_documents.inc(report.late_documents)
        self.mined_event_ids.inc(report.mined_event_ids)
        self.dead_letters.inc(report.dead_letters)
        self.state_conflicts.inc(report.state_conflicts)
        lags = [max(0.0, now_s - ts_ms / 1000) for ts_ms in report.host_positions.values()]
        for host, ts_ms in report.host_positions.items():
            self.host_lag.labels(host).set(max(0.0, now_s - ts_ms / 1000))
        self.max_host_lag.set(max(lags, default=0.0))
        self.last_success.set(now_s)

    def record_failure(self, kind: str, duration_s: float) -> None:
        self.cycles.labels("failure").inc()
        self.cycle_seconds.observe(duration_s)
        self.errors.labels(kind).inc()
