"""The long-running service: scheduled cycles, the HTTP endpoints, and the retraining thread."""

from __future__ import annotations

import argparse
import threading
import time

import structlog
from opensearchpy.exceptions import OpenSearchException

from sidecar.app.memory import MemoryReleaser
from sidecar.app.output import dumps
from sidecar.app.retention import RetentionKeeper
from sidecar.app.retraining import retrain_every
from sidecar.app.settings import Settings
from sidecar.app.wiring import (
    active_models,
    cluster_source,
    cycle_options,
    event_keys,
    install_sidecar_templates,
)
from sidecar.errors import ConfigError, ModelError, SidecarError
from sidecar.types import CycleReport

log = structlog.get_logger("sidecar.app.service")


def cluster_cycle(
    settings: Settings, client, detectors, stop: threading.Event, known=frozenset()
) -> CycleReport:
    """One cycle against the cluster; `known`: the event ids the detectors' models know (see
    sidecar.templates.keys.TemplateLabeller)."""
    from sidecar.cluster.checkpoints import ClusterCheckpoints
    from sidecar.cluster.withdrawals import ClusterVerdicts
    from sidecar.cluster.writer import ClusterSink, IncidentSink
    from sidecar.pipeline.cycle import run_cycle

    return run_cycle(
        cluster_source(settings, client),
        detectors,
        ClusterSink(
            client,
            settings.anomaly_index,
            chunk_docs=settings.bulk_chunk_docs,
            dead_letter_index=settings.dead_letter_index,
            partitioning=settings.partitioning,
        ),
        ClusterCheckpoints(client, settings.state_index),
        now_ms=int(time.time() * 1000),
        options=cycle_options(settings),
        stop=stop,
        keys=event_keys(settings, client, known),
        incidents=IncidentSink(
            client,
            settings.incident_index,
            chunk_docs=settings.bulk_chunk_docs,
            dead_letter_index=settings.dead_letter_index,
            partitioning=settings.partitioning,
        ),
        verdicts=ClusterVerdicts(client, settings.anomaly_search, settings.incident_search),
    )


def guarded_cycle(
    settings: Settings, client, models, stop: threading.Event, metrics, health
) -> bool:
    """A failed cycle is logged, counted and retried after a backoff; it never ends the
    process. Returns whether the cycle succeeded."""
    started = time.perf_counter()
    try:
        if maintain_models(settings, client, models):
            metrics.model_info.clear()
            for name, version in models.versions().items():
                metrics.model_info.labels(name, version).set(1)
        report = cluster_cycle(settings, client, models.detectors, stop, models.known_event_ids())
    except SidecarError as exc:
        log.error("cycle_failed", kind=type(exc).__name__, error=str(exc))
        metrics.record_failure(type(exc).__name__, time.perf_counter() - started)
        health.cycle_failed(f"{type(exc).__name__}: {exc}")
        return False
    except Exception as exc:  # noqa: BLE001 - the loop must survive anything a cycle throws
        log.exception("cycle_crashed")
        metrics.record_failure(type(exc).__name__, time.perf_counter() - started)
        health.cycle_failed(f"{type(exc).__name__}: {exc}")
        return False
    metrics.record_cycle(report)
    health.cycle_succeeded()
    return True


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.app.metrics import SidecarMetrics
    from sidecar.app.scheduler import run_every
    from sidecar.app.server import Health, HealthServer
    from sidecar.cluster.client import check_access, make_client, reachable

    try:
        shard = settings.shard()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log.info("shard", index=shard.index, count=shard.count)
    client = make_client(settings)
    check_access(client, settings)
    if settings.manage_templates:
        install_sidecar_templates(settings, client)
    models = active_models(settings, client)
    if args.once:
        maintain_models(settings, client, models)
        report = cluster_cycle(
            settings, client, models.detectors, threading.Event(), models.known_event_ids()
        )
        dropped = RetentionKeeper(settings, client)()
        print(dumps({**report.summary(), "models": models.versions(), "dropped": dropped}))
        return 0
    metrics = SidecarMetrics(alert_budget=settings.alert_budget)
    keep_retention = RetentionKeeper(settings, client, metrics)
    release_memory = MemoryReleaser()

    def cycle(stop: threading.Event) -> bool:
        ok = guarded_cycle(settings, client, models, stop, metrics, health)
        if ok:  # a cluster that just failed a cycle is left alone
            keep_retention()
        # After every cycle, failed ones too: a cycle's peak (or a model reload) would
        # otherwise stay with the process for good.
        metrics.memory_released.inc(release_memory())
        return ok

    for name, version in models.versions().items():
        metrics.model_info.labels(name, version).set(1)
    health = Health(
        max_failed_cycles=settings.ready_max_failed_cycles,
        models_loaded=True,
        ping=lambda: reachable(client, settings.state_index),
    )
    server = None
    if settings.http_port:
        server = HealthServer(settings.http_host, settings.http_port, health, metrics).start()
        log.info("http_server_started", port=server.port, paths=["/healthz", "/readyz", "/metrics"])
    log.info("scheduler_starting", interval_s=settings.interval_seconds)
    stop = threading.Event()
    retrainer = None
    if settings.retrain_interval_seconds and shard.index == 0:
        # One replica retrains; the others pick the promoted version up from the store.
        retrainer = threading.Thread(
            target=retrain_every,
            args=(settings, client, stop, metrics),
            name="retrain",
            daemon=True,
        )
        retrainer.start()
    if settings.notify_url:
        start_notifier(settings, client, shard, stop, metrics)
    try:
        run_every(
            settings.interval_seconds,
            cycle,
            stop=stop,
            max_cycles=args.max_cycles,
            max_backoff_s=settings.max_backoff_seconds,
        )
    finally:
        stop.set()
        if server is not None:
            server.stop()
    return 0


def start_notifier(settings: Settings, client, shard, stop: threading.Event, metrics):
    """The notifier thread (sidecar/app/notifier.py): this replica's hosts' incidents."""
    from sidecar.app.notifier import Notifier
    from sidecar.app.wiring import notifier_config
    from sidecar.cluster.notifications import ClusterNotices

    notifier = Notifier(
        ClusterNotices(client, settings.incident_search, settings.notify_index),
        notifier_config(settings),
        owns=shard.owns,
        metrics=metrics,
    )
    thread = threading.Thread(target=notifier.run, args=(stop,), name="notify", daemon=True)
    thread.start()
    return thread


def _update_in_child(settings: Settings, name: str, version: str, marked, _gauges) -> str:
    """The child's side of an online update (sidecar/app/child.py): the marked version loaded
    from the store, updated, saved and activated there; returns the new version."""
    from sidecar.app.logging import configure_logging
    from sidecar.app.wiring import detector_options, model_store
    from sidecar.cluster.client import make_client
    from sidecar.lifecycle.active import apply_false_positives
    from sidecar.models.artifacts import load_artifact

    configure_logging(settings.log_level, settings.log_format)
    store = model_store(settings, make_client(settings))
    artifact = load_artifact(store, name, version)
    updated = apply_false_positives(store, artifact, marked, detector_options(settings))
    if updated is None:  # the parent checked the kind; a version without an update is a bug
        raise ModelError(f"{name} {version}: no online update")
    return updated.version


def maintain_models(settings: Settings, client, models) -> bool:
    """Before a cycle: learn analysts' new false-positive marks (one replica does it), then
    load any version that became active since the last cycle. Returns whether a model changed.

    A failure to learn feedback is logged and the cycle goes on with the current models;
    the marks stay pending and are tried again next cycle."""

    from sidecar.app.child import ChildFailed, run_in_child
    from sidecar.cluster.feedback import (
        mark_applied,
        pending_false_positives,
        spread_incident_verdicts,
    )
    from sidecar.models.catalog import kind_of

    if settings.online_update and settings.shard().index == 0:
        try:
            spread = spread_incident_verdicts(
                client, settings.incident_search, settings.anomaly_search
            )
        except OpenSearchException as exc:
            # The marks stay on the incidents and are spread by a later cycle; the cycle itself
            # reports whether the cluster can be reached.
            log.warning("incident_feedback_deferred", error=str(exc)[:300])
            spread = 0
        if spread:
            log.info("incident_feedback_spread", annotations=spread)
        for name in settings.models:
            artifact = models.artifacts.get(name)
            marked = pending_false_positives(client, settings.anomaly_search, name)
            if not marked or artifact is None:
                continue
            if kind_of(name).update is None:
                log.info(
                    "online_update_unsupported",
                    model=name,
                    marked=len(marked),
                    hint="learned at the next retraining",
                )
                continue
            try:
                # In a child, like retraining: the fine-tuning's memory goes with it.
                version = run_in_child(
                    _update_in_child,
                    (settings, name, artifact.version, marked),
                    None,
                    threading.Event(),
                )
            except ChildFailed as exc:
                log.error("online_update_failed", model=name, marked=len(marked), error=str(exc))
                continue
            mark_applied(client, settings.anomaly_search, [m.document_id for m in marked], version)
    return bool(models.refresh())
