"""Prometheus metrics of the running sidecar, fed from cycle reports (one place, no globals)."""

from __future__ import annotations

import time

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from sidecar.pipeline.incidents import GRADE_BANDS
from sidecar.pipeline.quietness import DAY_MS, QuietWindow
from sidecar.types import UNREADABLE_REASONS, CycleReport

__all__ = ["SidecarMetrics", "NEW_TEMPLATE_RATE", "NEW_TEMPLATE_CYCLES"]

log = structlog.get_logger("sidecar.metrics")

# A warning when, for this many cycles in a row, more than this share of the mined events
# started a new template (and at least 100 were mined): the miner is splitting statements,
# or the logs keep changing, and every new template is a key no model knows.
NEW_TEMPLATE_RATE = 0.1
NEW_TEMPLATE_CYCLES = 3


# Warn when the live incident rate, over at least a host-day of log time, exceeds the budget
# this many times: real incidents do that too, but so do models that no longer fit the fleet.
OVER_BUDGET_FACTOR = 3.0


class SidecarMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, alert_budget: float | None = None
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.alert_budget = alert_budget
        self._quiet = QuietWindow()
        self._over_budget = False
        r = self.registry
        # process_resident_memory_bytes, process_open_fds, ...: what a days-long run is
        # watched by (the soak benchmark's flat-memory check, an operator's alert).
        ProcessCollector(registry=r)
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
        self.templates_known = Gauge(
            "sidecar_templates_known",
            "Templates the miner holds after the last cycle (SIDECAR_TEMPLATE_MINING)",
            registry=r,
        )
        self.new_templates = Counter(
            "sidecar_new_templates", "Templates the miner started in cycles", registry=r
        )
        self.rare_template_events = Counter(
            "sidecar_rare_template_events",
            "Mined events keyed by a template seen fewer than 10 times (divide by "
            "sidecar_mined_event_ids_total for the share)",
            registry=r,
        )
        self.template_overflow = Counter(
            "sidecar_template_overflow",
            "Events the full miner could not place (SIDECAR_TEMPLATE_MAX_CLUSTERS reached)",
            registry=r,
        )
        self._high_new_template_cycles = 0
        self.late_documents = Counter(
            "sidecar_late_documents",
            "Documents found behind a host's cursor within the lateness window (re-read)",
            registry=r,
        )
        self.withdrawn = Counter(
            "sidecar_withdrawn",
            "Verdicts taken back because a late document put their event in order (by kind)",
            ["kind"],
            registry=r,
        )
        self.dead_letters = Counter(
            "sidecar_dead_letters",
            "Anomaly documents refused by the cluster and kept in the dead-letter index",
            registry=r,
        )
        self.results_expired = Counter(
            "sidecar_results_expired",
            "Results of events older than SIDECAR_RETENTION_DAYS: counted, never written",
            registry=r,
        )
        self.partitions_dropped = Counter(
            "sidecar_partitions_dropped",
            "Result partitions deleted because every event they hold is past the retention",
            registry=r,
        )
        self.retention_failures = Counter(
            "sidecar_retention_failures",
            "Retention sweeps that failed (partitions past the retention not dropped yet)",
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
        # With the last success, what "no successful cycle for N intervals" is measured from
        # before the first cycle succeeds.
        self.started = Gauge(
            "sidecar_started_timestamp_seconds", "When this process started (Unix time)", registry=r
        )
        self.started.set_to_current_time()
        self.retrains = Counter(
            "sidecar_retrains",
            "Scheduled retrainings by outcome: promoted, rejected by the gate, or failed",
            ["outcome"],
            registry=r,
        )
        for outcome in ("promoted", "rejected", "failed"):
            self.retrains.labels(outcome)
        self.notifications = Counter(
            "sidecar_notifications",
            "Incident notifications: sent (accepted), rejected for good (4xx), failed "
            "attempts (retried), error (a round that could not read the incidents)",
            ["outcome"],
            registry=r,
        )
        for outcome in ("sent", "rejected", "failed", "error"):
            self.notifications.labels(outcome)
        self.memory_released = Counter(
            "sidecar_memory_released_bytes",
            "Bytes of freed heap handed back to the system after cycles (glibc only)",
            registry=r,
        )
        self.model_info = Gauge(
            "sidecar_model_info", "Loaded models (value 1)", ["model", "version"], registry=r
        )
        self._init_quietness(r)
        self.training_phase_gauge = Gauge(
            "sidecar_training_phase",
            "Scheduled retraining's phase: 1 for the current one (idle, reading, training)",
            ["phase"],
            registry=r,
        )
        self.training_phase("idle")
        self.training_events = Gauge(
            "sidecar_training_events_read",
            "Events the current or last retraining has read",
            registry=r,
        )
        self.training_epochs = Gauge(
            "sidecar_training_epoch",
            "Epochs the current or last retraining of a model has run",
            ["model"],
            registry=r,
        )
        self.training_seconds = Gauge(
            "sidecar_training_seconds",
            "Seconds the current or last retraining of a model has trained",
            ["model"],
            registry=r,
        )

    def _init_quietness(self, r: CollectorRegistry) -> None:
        self.events_flagged = Counter(
            "sidecar_events_flagged", "Distinct events any model flagged", registry=r
        )
        self.incidents = Counter(
            "sidecar_incidents", "Incidents opened or extended, by change", ["change"], registry=r
        )
        self.incident_bands = Counter(
            "sidecar_incident_grades",
            "Incidents that entered a grade band (opened in it, or raised into it by new "
            "members): low < 50 <= medium < 75 <= high < 90 <= critical",
            ["band"],
            registry=r,
        )
        # Every band and outcome exists from the start at 0, so that Prometheus's increase()
        # sees the first incident or refusal as a rise instead of a new series.
        for band, _ in GRADE_BANDS:
            self.incident_bands.labels(band)
        self.anomalies_folded = Counter(
            "sidecar_anomalies_folded",
            "Flagged events counted on their incident instead of written as a document",
            registry=r,
        )
        self.host_seconds = Counter(
            "sidecar_host_seconds_covered",
            "Log time the hosts' cursors moved over, summed over hosts (seconds)",
            registry=r,
        )
        self.flag_rate = Gauge(
            "sidecar_flagged_per_10k_events",
            "Flagged events per 10,000 events read, over the cycles of the last 24 h",
            registry=r,
        )
        self.incident_rate = Gauge(
            "sidecar_incidents_per_host_day",
            "Incidents opened per host-day of log time read, over the cycles of the last 24 h "
            "(NaN below one host-hour)",
            registry=r,
        )
        self.budget = Gauge(
            "sidecar_alert_budget",
            "Expected false incidents per host per day the thresholds are set for "
            "(SIDECAR_ALERT_BUDGET)",
            registry=r,
        )
        if self.alert_budget is not None:
            self.budget.set(self.alert_budget)

    def _record_quietness(self, report: CycleReport, now_s: float) -> None:
        self.events_flagged.inc(report.events_flagged)
        self.incidents.labels("opened").inc(report.incidents_opened)
        self.incidents.labels("extended").inc(report.incidents_extended)
        self.anomalies_folded.inc(report.anomalies_folded)
        for band, count in report.incident_bands.items():
            self.incident_bands.labels(band).inc(count)
        self.host_seconds.inc(report.host_ms_covered / 1000)
        window = self._quiet.add(report, now_s)
        per_10k, per_host_day = window.flagged_per_10k, window.incidents_per_host_day
        self.flag_rate.set(per_10k if per_10k is not None else float("nan"))
        self.incident_rate.set(per_host_day if per_host_day is not None else float("nan"))
        over = (
            self.alert_budget is not None
            and per_host_day is not None
            and window.host_ms >= DAY_MS
            and per_host_day > OVER_BUDGET_FACTOR * self.alert_budget
        )
        if over and not self._over_budget:
            log.warning(
                "incident_rate_over_budget",
                incidents_per_host_day=round(per_host_day, 3),  # type: ignore[arg-type]
                alert_budget=self.alert_budget,
                host_days=round(window.host_ms / DAY_MS, 2),
                hint="real incidents, or models that no longer fit the fleet: look at the "
                "incidents, mark false ones, or retrain",
            )
        self._over_budget = bool(over)

    def training_phase(self, phase: str) -> None:
        for known in ("idle", "reading", "training"):
            self.training_phase_gauge.labels(known).set(1 if known == phase else 0)

    def training_read(self, events: int) -> None:
        self.training_events.set(events)

    def training_epoch(self, model: str, epoch: int, seconds: float) -> None:
        self.training_epochs.labels(model).set(epoch)
        self.training_seconds.labels(model).set(round(seconds, 3))

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
        self.withdrawn.labels("anomaly").inc(report.anomalies_withdrawn)
        self.withdrawn.labels("incident").inc(report.incidents_withdrawn)
        self.mined_event_ids.inc(report.mined_event_ids)
        self._record_mining(report)
        self.dead_letters.inc(report.dead_letters)
        self.results_expired.inc(report.results_expired)
        self.state_conflicts.inc(report.state_conflicts)
        lags = [max(0.0, now_s - ts_ms / 1000) for ts_ms in report.host_positions.values()]
        for host, ts_ms in report.host_positions.items():
            self.host_lag.labels(host).set(max(0.0, now_s - ts_ms / 1000))
        self.max_host_lag.set(max(lags, default=0.0))
        self.last_success.set(now_s)
        self._record_quietness(report, now_s)

    def _record_mining(self, report: CycleReport) -> None:
        mining = report.mining
        if not report.mined_event_ids:
            return
        self.templates_known.set(mining.templates_known)
        self.new_templates.inc(mining.new_templates)
        self.rare_template_events.inc(mining.rare_template_events)
        self.template_overflow.inc(mining.overflowed)
        rate = mining.new_templates / report.mined_event_ids
        if report.mined_event_ids >= 100 and rate > NEW_TEMPLATE_RATE:
            self._high_new_template_cycles += 1
        else:
            self._high_new_template_cycles = 0
        if self._high_new_template_cycles == NEW_TEMPLATE_CYCLES:
            log.warning(
                "new_template_rate_high",
                cycles=NEW_TEMPLATE_CYCLES,
                new_templates=mining.new_templates,
                mined_event_ids=report.mined_event_ids,
                templates_known=mining.templates_known,
                advice="new statements keep appearing: check the template text of recent "
                "anomalies (docs/template-mining.md); retrain once the logs have settled",
            )

    def record_retrain(self, outcome: str) -> None:
        """`promoted`, `rejected` (the gate kept the current version) or `failed`."""
        self.retrains.labels(outcome).inc()

    def record_failure(self, kind: str, duration_s: float) -> None:
        self.cycles.labels("failure").inc()
        self.cycle_seconds.observe(duration_s)
        self.errors.labels(kind).inc()
