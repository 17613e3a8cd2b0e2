"""Retraining on the rolling window: now (`retrain`) or every SIDECAR_RETRAIN_INTERVAL_SECONDS
in the service, each candidate promoted only through the gate (sidecar/lifecycle/retraining.py)."""

from __future__ import annotations

import threading
import time

import structlog

from sidecar.app.settings import Settings
from sidecar.app.training_data import mine_training_keys, read_streams, settled_until
from sidecar.app.wiring import detector_options, device_for, model_config, model_store
from sidecar.types import InputStats

log = structlog.get_logger("sidecar.app.retraining")

# Unreviewed incidents of this band and above are left out of retraining.
WITHHELD_BAND = "high"


def retrain_window(
    settings: Settings, now_ms: int, end_ms: int | None = None, days: float | None = None
) -> tuple[int, int, int]:
    """(start, holdout start, end) of the rolling training window."""
    end = end_ms if end_ms is not None else settled_until(settings, now_ms)
    start = end - int((days if days is not None else settings.train_days) * 86_400_000)
    holdout_from = end - int((end - start) * settings.retrain_holdout_fraction)
    return start, holdout_from, end


def retrain_all(
    settings: Settings,
    client,
    store,
    now_ms: int | None = None,
    end_ms: int | None = None,
    days: float | None = None,
    progress=None,
) -> list[dict]:
    """Retrain every configured model on the rolling window; each candidate is promoted only
    if the held-out slice's false-positive rate does not rise
    (sidecar.lifecycle.retraining.retrain).
    `progress`: a TrainingProgress (sidecar/app/progress.py) to report to."""
    from sidecar.app.alerting import band_start
    from sidecar.app.progress import TrainingProgress
    from sidecar.cluster.feedback import confirmed_incidents, unreviewed_incidents
    from sidecar.lifecycle.retraining import retrain
    from sidecar.models.fitting import training_device

    progress = progress or TrainingProgress()
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    start, holdout_from, end = retrain_window(settings, now_ms, end_ms, days)
    stats = InputStats()
    streams = read_streams(settings, client, start, end, stats, progress)
    mine_training_keys(settings, streams, stats, in_cluster=True)
    confirmed = confirmed_incidents(
        client, settings.anomaly_search, start, end, settings.incident_search
    )
    # What was alerted on (high and critical) and not yet reviewed is not learned as normal:
    # an ongoing attack would otherwise be learned by the next retraining. A false-positive
    # verdict makes it learnable.
    withheld = unreviewed_incidents(
        client, settings.incident_search, start, end, band_start(WITHHELD_BAND)
    )
    data = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start,
        "end_ms": end,
        "schedule": "retrain",
    }
    outcomes = []
    with training_device(device_for(settings)):
        for name in settings.models:
            outcome = retrain(
                store,
                name,
                model_config(name, settings),
                streams,
                holdout_from,
                detector_options(settings),
                data,
                confirmed=confirmed,
                withheld=withheld,
                tolerance=settings.retrain_fpr_tolerance,
                recall_tolerance=settings.retrain_recall_tolerance,
                host_group_pattern=settings.host_group_pattern or None,
                on_epoch=progress.epochs(name),
            )
            progress.finished()
            outcomes.append(outcome.to_json())
    return outcomes


def _retrain_in_child(settings: Settings, gauges) -> list[dict]:
    """The child's side of a scheduled retraining (sidecar/app/child.py): its own logging,
    client and store, the parent's settings."""
    from sidecar.app.logging import configure_logging
    from sidecar.app.progress import TrainingProgress
    from sidecar.cluster.client import make_client

    configure_logging(settings.log_level, settings.log_format)
    client = make_client(settings)
    store = model_store(settings, client)
    return retrain_all(settings, client, store, progress=TrainingProgress(gauges=gauges))


def retrain_every(settings: Settings, client, stop: threading.Event, metrics) -> None:
    """Every RETRAIN_INTERVAL_SECONDS, retrain in a child process (sidecar/app/child.py) so the
    cycles keep the interpreter, the CPU and the memory; the promoted versions reach the
    cycles through the model store, as they reach the other replicas."""
    from sidecar.app.child import ChildFailed, run_in_child

    del client  # the child connects on its own: a client does not cross a process boundary
    while not stop.wait(settings.retrain_interval_seconds):
        try:
            outcomes = run_in_child(_retrain_in_child, (settings,), metrics, stop)
        except ChildFailed as exc:  # a failed retraining keeps the current model
            if stop.is_set():
                return
            log.error("retrain_failed", kind=exc.kind, error=str(exc))
            metrics.record_retrain("failed")
            continue
        finally:
            metrics.training_phase("idle")
        for outcome in outcomes:
            metrics.record_retrain("promoted" if outcome["promoted"] else "rejected")
