"""Command line: the only place that wires concrete adapters, detectors and the scheduler."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog
import torch
from opensearchpy.exceptions import OpenSearchException
from pydantic import ValidationError

from sidecar import __version__
from sidecar.errors import AccessError, ConfigError, ModelError, SidecarError
from sidecar.logging import configure_logging
from sidecar.settings import Settings, describe_validation_error
from sidecar.types import CycleReport, InputStats

__all__ = ["main", "load_settings"]

log = structlog.get_logger("sidecar.cli")

EXIT_CONFIG = 2
EXIT_ACCESS = 3


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def _device(settings: Settings) -> torch.device:
    if settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def model_store(settings: Settings, client=None):  # -> ModelStore
    """The configured model store: the cluster's model index, or a directory (PVC)."""
    if settings.model_store == "file":
        from sidecar.models.store import FileModelStore

        return FileModelStore(settings.model_dir)
    from sidecar.cluster.client import make_client
    from sidecar.cluster.modelstore import ClusterModelStore

    return ClusterModelStore(client or make_client(settings), settings.model_index)


def detector_options(settings: Settings):  # -> DetectorOptions
    from sidecar.models.catalog import DetectorOptions

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    return DetectorOptions(
        top_g=settings.top_g,
        device=_device(settings),
        similarity_threshold=settings.template_similarity,
        min_probability=settings.min_probability,
        parameter_confidence=settings.parameter_confidence,
        verdict_rule=settings.verdict_rule,
        alert_budget=settings.alert_budget,
        models_sharing=len(settings.models),
    )


def _detectors(settings: Settings, store=None):  # -> list[Detector]
    """The detectors of the active versions (see sidecar.lifecycle.ActiveModels)."""
    return active_models(settings, store=store).detectors


def model_config(name: str, settings: Settings):
    """The training configuration of model `name` from settings."""
    from sidecar.models.deeplog import DeepLogConfig
    from sidecar.models.loganomaly import LogAnomalyConfig

    common = {
        "window_size": settings.window_size,
        "top_g": settings.top_g,
        "epochs": settings.train_epochs,
        "batch_size": settings.train_batch_size,
        "seed": settings.train_seed,
    }
    if name == "loganomaly":
        return LogAnomalyConfig(**common, similarity_threshold=settings.template_similarity)
    if name == "parameters":
        from sidecar.models.parameters import ParameterConfig

        return ParameterConfig(
            window_size=settings.window_size, confidence=settings.parameter_confidence
        )
    if name == "pca":
        from sidecar.models.pca import PCAConfig

        return PCAConfig(
            window_size=settings.window_size,
            variance=settings.pca_variance,
            alpha=settings.pca_alpha,
        )
    if name == "autoencoder":
        from sidecar.models.autoencoder import AutoencoderConfig

        return AutoencoderConfig(
            window_size=settings.window_size,
            quantile=settings.autoencoder_quantile,
            epochs=settings.train_epochs,
            batch_size=settings.train_batch_size,
            seed=settings.train_seed,
        )
    return DeepLogConfig(**common)


def _cycle_options(settings: Settings):
    from sidecar.pipeline import CycleOptions

    return CycleOptions(
        read_lag_ms=int(settings.read_lag_seconds * 1000),
        initial_lookback_ms=int(settings.initial_lookback_seconds * 1000),
        batch_events=settings.batch_events,
        message_excerpt_chars=settings.message_excerpt_chars,
        shard=settings.shard(),
        lateness_ms=int(settings.lateness_seconds * 1000),
        future_tolerance_ms=int(settings.future_tolerance_seconds * 1000),
        incident_gap_ms=int(settings.incident_gap_seconds * 1000),
        incident_event_docs=settings.incident_event_docs,
    )


def cluster_source(settings: Settings, client):  # -> ClusterSource
    from sidecar.cluster.reader import ClusterSource

    return ClusterSource(
        client,
        settings.watched_indices,
        settings.fields,
        settings.page_size,
        case_sensitive_hosts=settings.host_case_sensitive,
        event_id_optional=settings.template_mining != "off",
    )


def event_keys(settings: Settings, client=None):  # -> TemplateLabeller | None
    """Template mining as SIDECAR_TEMPLATE_MINING says (None when off), its state in the state
    index with a client, else in SIDECAR_MODEL_DIR. A fresh one per cycle: it loads the
    shared state when first needed, and a failed cycle's learning is dropped with it."""
    if settings.template_mining == "off":
        return None
    from sidecar.eventkeys import TemplateLabeller

    if client is not None:
        from sidecar.cluster.minerstate import ClusterMinerStore

        return TemplateLabeller(
            settings.template_mining,
            ClusterMinerStore(client, settings.state_index),
            max_clusters=settings.template_max_clusters,
        )
    from sidecar.files.minerstate import MINER_STATE_FILE, FileMinerStore

    return TemplateLabeller(
        settings.template_mining,
        FileMinerStore(settings.model_dir / MINER_STATE_FILE),
        max_clusters=settings.template_max_clusters,
    )


# -- run ---------------------------------------------------------------------------------------


def cluster_cycle(settings: Settings, client, detectors, stop: threading.Event) -> CycleReport:
    from sidecar.cluster.checkpoints import ClusterCheckpoints
    from sidecar.cluster.writer import ClusterSink, IncidentSink
    from sidecar.pipeline import run_cycle

    return run_cycle(
        cluster_source(settings, client),
        detectors,
        ClusterSink(
            client,
            settings.anomaly_index,
            chunk_docs=settings.bulk_chunk_docs,
            dead_letter_index=settings.dead_letter_index,
        ),
        ClusterCheckpoints(client, settings.state_index),
        now_ms=int(time.time() * 1000),
        options=_cycle_options(settings),
        stop=stop,
        keys=event_keys(settings, client),
        incidents=IncidentSink(
            client,
            settings.incident_index,
            chunk_docs=settings.bulk_chunk_docs,
            dead_letter_index=settings.dead_letter_index,
        ),
    )


def _guarded_cycle(
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
        report = cluster_cycle(settings, client, models.detectors, stop)
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
    from sidecar.cluster.client import check_access, make_client, reachable
    from sidecar.metrics import SidecarMetrics
    from sidecar.scheduler import run_every
    from sidecar.server import Health, HealthServer

    try:
        shard = settings.shard()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log.info("shard", index=shard.index, count=shard.count)
    client = make_client(settings)
    check_access(client, settings)
    if settings.manage_templates:
        _install_templates(settings, client)
    models = active_models(settings, client)
    if args.once:
        maintain_models(settings, client, models)
        report = cluster_cycle(settings, client, models.detectors, threading.Event())
        print(_dumps({**report.summary(), "models": models.versions()}))
        return 0
    metrics = SidecarMetrics(alert_budget=settings.alert_budget)
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
            target=_retrain_every,
            args=(settings, client, stop, metrics),
            name="retrain",
            daemon=True,
        )
        retrainer.start()
    try:
        run_every(
            settings.interval_seconds,
            lambda stop: _guarded_cycle(settings, client, models, stop, metrics, health),
            stop=stop,
            max_cycles=args.max_cycles,
            max_backoff_s=settings.max_backoff_seconds,
        )
    finally:
        stop.set()
        if server is not None:
            server.stop()
    return 0


def _install_templates(settings: Settings, client) -> None:
    from sidecar.cluster.bootstrap import install_templates

    install_templates(
        client,
        settings.anomaly_index,
        settings.state_index,
        settings.dead_letter_index,
        settings.model_index if settings.model_store == "cluster" else None,
        settings.incident_index,
    )


def cmd_setup(_args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.cluster.client import make_client

    _install_templates(settings, make_client(settings))
    print(
        "installed templates and indices: "
        f"{settings.anomaly_index}, {settings.incident_index}, {settings.state_index}"
    )
    return 0


# -- model lifecycle ---------------------------------------------------------------------------


def active_models(settings: Settings, client=None, store=None):  # -> ActiveModels
    from sidecar.lifecycle import ActiveModels

    store = store if store is not None else model_store(settings, client)
    models = ActiveModels(
        store, settings.models, detector_options(settings), settings.template_mining
    )
    models.refresh()
    return models


def maintain_models(settings: Settings, client, models) -> bool:
    """Before a cycle: learn analysts' new false-positive marks (one replica does it), then
    load any version that became active since the last cycle. Returns whether a model changed.

    A failure to learn feedback is logged and the cycle goes on with the current models;
    the marks stay pending and are tried again next cycle."""
    from opensearchpy.exceptions import OpenSearchException

    from sidecar.cluster.feedback import (
        mark_applied,
        pending_false_positives,
        spread_incident_verdicts,
    )
    from sidecar.lifecycle import apply_false_positives

    if settings.online_update and settings.shard().index == 0:
        try:
            spread = spread_incident_verdicts(
                client, settings.incident_index, settings.anomaly_index
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
            marked = pending_false_positives(client, settings.anomaly_index, name)
            if not marked or artifact is None:
                continue
            try:
                updated = apply_false_positives(models.store, artifact, marked, models.options)
            except (ModelError, ValueError, RuntimeError) as exc:
                log.error("online_update_failed", model=name, marked=len(marked), error=str(exc))
                continue
            if updated is None:
                log.info(
                    "online_update_unsupported",
                    model=name,
                    marked=len(marked),
                    hint="learned at the next retraining",
                )
                continue
            mark_applied(
                client, settings.anomaly_index, [m.document_id for m in marked], updated.version
            )
    return bool(models.refresh())


def _retrain_window(
    settings: Settings, now_ms: int, end_ms: int | None = None, days: float | None = None
) -> tuple[int, int, int]:
    """(start, holdout start, end) of the rolling training window."""
    end = end_ms if end_ms is not None else now_ms - int(settings.read_lag_seconds * 1000)
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
    if the held-out slice's false-positive rate does not rise (sidecar.lifecycle.retrain).
    `progress`: a TrainingProgress (sidecar/training_progress.py) to report to."""
    from sidecar.cluster.feedback import confirmed_incidents
    from sidecar.lifecycle import retrain
    from sidecar.training_progress import TrainingProgress

    progress = progress or TrainingProgress()
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    start, holdout_from, end = _retrain_window(settings, now_ms, end_ms, days)
    stats = InputStats()
    streams = _read_streams(settings, client, start, end, stats, progress)
    _mine_training_keys(settings, streams, stats, in_cluster=True)
    confirmed = confirmed_incidents(
        client, settings.anomaly_index, start, end, settings.incident_index
    )
    data = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start,
        "end_ms": end,
        "schedule": "retrain",
    }
    outcomes = []
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
            tolerance=settings.retrain_fpr_tolerance,
            recall_tolerance=settings.retrain_recall_tolerance,
            host_group_pattern=settings.host_group_pattern or None,
            on_epoch=progress.epochs(name),
        )
        progress.finished()
        outcomes.append(outcome.to_json())
    return outcomes


def _retrain_every(settings: Settings, client, stop: threading.Event, metrics) -> None:
    from sidecar.training_progress import TrainingProgress

    store = model_store(settings, client)
    while not stop.wait(settings.retrain_interval_seconds):
        try:
            retrain_all(settings, client, store, progress=TrainingProgress(gauges=metrics))
        except Exception as exc:  # noqa: BLE001 - a failed retraining keeps the current model
            log.error("retrain_failed", kind=type(exc).__name__, error=str(exc))


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.cluster.client import make_client
    from sidecar.training_progress import TrainingProgress

    client = make_client(settings)
    end_ms = _parse_instant(args.end) if args.end else None
    store = model_store(settings, client)
    outcomes = retrain_all(
        settings, client, store, None, end_ms, args.days, TrainingProgress.for_command()
    )
    print(_dumps(outcomes[0] if len(outcomes) == 1 else outcomes))
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.lifecycle import rollback

    store = model_store(settings)
    name = args.model or settings.models[0]
    if args.action == "rollback":
        activation = rollback(store, name, args.to)
        print(_dumps({"model": name, **activation.to_json()}))
        return 0
    if args.action == "promote":
        if not args.to:
            raise ConfigError("models promote needs --to VERSION")
        activation = store.activate(name, args.to, "promoted by hand")
        print(_dumps({"model": name, **activation.to_json()}))
        return 0
    active = store.active(name)
    rows = []
    for manifest in store.manifests(name):
        version = str(manifest["version"])
        notes = store.notes(name, version)
        training = manifest.get("training") or {}
        rows.append(
            {
                "version": version,
                "active": version == active,
                "created_at": manifest.get("created_at"),
                "parent": manifest.get("parent"),
                "status": notes.get("status"),
                "keys": len((manifest.get("vocabulary") or {}).get("keys") or []),  # type: ignore[union-attr]
                "events": training.get("events"),  # type: ignore[union-attr]
                "evaluation": notes.get("evaluation"),
                "online_update": bool(manifest.get("online_update")),
            }
        )
    history = [a.to_json() for a in store.history(name)]
    print(
        _dumps(
            {
                "model": name,
                "store": str(store),
                "active": active,
                "versions": rows,
                "history": history,
            }
        )
    )
    return 0


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.cluster.client import make_client
    from sidecar.cluster.feedback import set_verdict

    # An incident (the unit people mark) or one annotation; the next cycle spreads an
    # incident's verdict to its members.
    index = settings.incident_index if args.id.startswith("inc-") else settings.anomaly_index
    set_verdict(make_client(settings), index, args.id, args.verdict, args.by, args.note)
    print(f"{args.id}: feedback.verdict = {args.verdict}")
    return 0


# -- train -------------------------------------------------------------------------------------


def _parse_instant(text: str) -> int:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.training import group_by_host, train_model
    from sidecar.training_progress import TrainingProgress

    stats = InputStats()
    progress = TrainingProgress.for_command()
    if args.from_file:
        from sidecar.files.source import read_jsonl_events

        events = [
            e
            for f in args.from_file
            for e in read_jsonl_events(
                Path(f),
                settings.fields,
                stats,
                settings.host_case_sensitive,
                settings.template_mining != "off",
            )
        ]
        streams = group_by_host(events)
        progress.read(len(events), len(streams), done=True)
        data: dict[str, object] = {"source": "files", "files": [str(f) for f in args.from_file]}
    else:
        streams, data = _cluster_training_streams(args, settings, stats, progress)
    mined = _mine_training_keys(settings, streams, stats, in_cluster=not args.from_file)
    if mined is not None:
        from sidecar.encoding.drain import STATE_FORMAT

        data["template_mining"] = {
            "mode": settings.template_mining,
            "mined_event_ids": mined,
            "miner_format": STATE_FORMAT,
        }
    if stats.rejected or stats.repaired:
        log.warning(
            "bad_input",
            rejected=dict(stats.rejected),
            repaired=dict(stats.repaired),
            samples=stats.samples,
        )
    if not streams:
        print("no events found to train on", file=sys.stderr)
        return 1
    results = []
    store = model_store(settings)
    for name in settings.models:
        artifact = train_model(
            name,
            streams,
            model_config(name, settings),
            store,
            data,
            on_epoch=progress.epochs(name),
            host_group_pattern=settings.host_group_pattern or None,
        )
        progress.finished()
        results.append(
            {
                "model": artifact.name,
                "version": artifact.version,
                "store": str(store),
                "keys": artifact.vocabulary.known,
                "training": artifact.manifest["training"],
            }
        )
    print(_dumps(results[0] if len(results) == 1 else results))
    return 0


def _mine_training_keys(
    settings: Settings, streams: dict, stats: InputStats, in_cluster: bool
) -> int | None:
    """Key the training events as the cycles will and save the miner state the cycles start
    from, so the vocabulary holds the ids they produce. Returns how many events got a mined
    id, None with template mining off."""
    if settings.template_mining == "off":
        return None
    client = None
    if in_cluster:
        from sidecar.cluster.client import make_client

        client = make_client(settings)
    keys = event_keys(settings, client)
    assert keys is not None
    mined = 0
    for host, stream in streams.items():
        labelled = keys.label(stream, stats)
        streams[host] = labelled.events
        mined += labelled.mined
    # Templates merged after their first events were keyed (a place learned to vary): those
    # events take the merged template's id, the one the cycles will give their messages.
    for host, stream in streams.items():
        streams[host] = keys.final_ids(stream)
    if mined:
        if client is not None and settings.manage_templates:
            from sidecar.cluster.bootstrap import install_templates

            # The state index must have its strict mapping before the state lands in it.
            install_templates(
                client, settings.anomaly_index, settings.state_index, settings.dead_letter_index
            )
        keys.save()
        log.info(
            "template_mining",
            mode=settings.template_mining,
            mined_event_ids=mined,
            templates=len(keys.miner.clusters),
        )
    return mined


# Events between two "training_data_reading" progress lines.
READ_PROGRESS_EVERY = 100_000


def _read_streams(
    settings: Settings, client, start_ms: int, end_ms: int, stats: InputStats, progress=None
):
    """Every host's events in [start, end] from the watched indices, in reading order."""
    source = cluster_source(settings, client)
    streams = {}
    events = reported = 0
    for host in source.hosts_with_new({}, start_ms, end_ms):
        stream = [
            e for page in source.read(host, None, start_ms, end_ms, stats) for e in page.events
        ]
        if stream:
            streams[host] = stream
            events += len(stream)
        if progress is not None and events - reported >= READ_PROGRESS_EVERY:
            progress.read(events, len(streams))
            reported = events
    if progress is not None:
        progress.read(events, len(streams), done=True)
    return streams


def _cluster_training_streams(args, settings: Settings, stats: InputStats, progress=None):
    from sidecar.cluster.client import make_client

    now_ms = int(time.time() * 1000)
    end_ms = (
        _parse_instant(args.end) if args.end else now_ms - int(settings.read_lag_seconds * 1000)
    )
    days = args.days if args.days is not None else settings.train_days
    start_ms = _parse_instant(args.start) if args.start else end_ms - int(days * 86_400_000)
    streams = _read_streams(settings, make_client(settings), start_ms, end_ms, stats, progress)
    data = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }
    return streams, data


# -- score (embedded mode) ---------------------------------------------------------------------


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.files.sink import JsonlIncidentSink, JsonlSink, MemoryCheckpoints
    from sidecar.files.source import FileSource
    from sidecar.pipeline import CycleOptions, run_cycle

    detectors = _detectors(settings)
    stats = InputStats()
    source = FileSource.from_file(
        Path(args.from_file),
        settings.fields,
        stats,
        settings.page_size,
        settings.host_case_sensitive,
        settings.template_mining != "off",
    )
    keys = None
    if settings.template_mining != "off":
        from sidecar.eventkeys import TemplateLabeller
        from sidecar.files.minerstate import MINER_STATE_FILE, MemoryMinerStore

        # Starts from the state training saved; what this file teaches it is not kept.
        seeded = MemoryMinerStore.seeded_from(settings.model_dir / MINER_STATE_FILE)
        keys = TemplateLabeller(
            settings.template_mining, seeded, max_clusters=settings.template_max_clusters
        )
    sink = JsonlSink.open(Path(args.to_file))
    # Incidents are formed either way, so the anomaly file holds what the cluster mode would
    # index; the option only decides whether they are written out.
    incidents = (
        JsonlIncidentSink.open(Path(args.incidents_file))
        if args.incidents_file
        else JsonlIncidentSink(None)
    )
    try:
        report = run_cycle(
            source,
            detectors,
            sink,
            MemoryCheckpoints(),
            now_ms=int(time.time() * 1000),
            # A file is complete: no read lag, no look-back limit.
            options=CycleOptions(
                read_lag_ms=None,
                initial_lookback_ms=None,
                batch_events=settings.batch_events,
                message_excerpt_chars=settings.message_excerpt_chars,
                incident_gap_ms=int(settings.incident_gap_seconds * 1000),
                incident_event_docs=settings.incident_event_docs,
            ),
            keys=keys,
            incidents=incidents,
        )
    finally:
        sink.close()
        incidents.close()
    report.input.merge(stats)
    print(_dumps(report.summary()))
    return 0


# -- workflow ----------------------------------------------------------------------------------


def cmd_workflow(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.encoding.workflow import WorkflowSet
    from sidecar.models.artifacts import load_artifact
    from sidecar.workflow_view import render_dot, render_json, render_text, select

    name = args.model or settings.models[0]
    artifact = load_artifact(model_store(settings), name)
    workflows = WorkflowSet.from_manifest(artifact.manifest)
    if workflows is None:
        raise ModelError(f"{name} {artifact.version} was trained without workflows; retrain it")
    try:
        chosen = select(workflows, args.group)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    title = f"{name} {artifact.version}"
    if args.format == "dot":
        sys.stdout.write(render_dot(chosen, title))
    elif args.format == "json":
        sys.stdout.write(render_json(workflows, chosen, name, artifact.version))
    else:
        sys.stdout.write(render_text(workflows, chosen, title))
    return 0


# -- dashboards --------------------------------------------------------------------------------


def cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.dashboards import import_saved_objects, ndjson, saved_objects

    objects = saved_objects(
        settings.anomaly_index,
        ",".join(settings.watched_indices),
        args.product,
        incident_index=settings.incident_index,
    )
    if args.url is None:
        sys.stdout.buffer.write(ndjson(objects))
        return 0
    result = import_saved_objects(
        args.url,
        args.product,
        objects,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        verify=settings.verify_certs,
        space=args.space,
    )
    if not result.success:
        print(f"import failed: {result.errors[:3]}", file=sys.stderr)
        return 1
    print(f"imported {result.count} saved objects into {args.product} at {args.url}")
    return 0


# -- demo --------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.demo.runner import run_demo

    return run_demo(hosts=args.hosts, cycles=args.cycles, keep_node=args.keep_node)


# -- entry point -------------------------------------------------------------------------------


def _dumps(data: object) -> str:
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="log-anomaly-sidecar",
        description="Log anomaly detection (DeepLog) for Elasticsearch / OpenSearch. "
        "Configured by SIDECAR_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="score new log documents on a schedule")
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument("--max-cycles", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--model-dir", type=Path)

    sub.add_parser("setup", help="install index templates and create the sidecar's indices")

    models = sub.add_parser(
        "models", help="list a model's versions, roll back, or promote a version by hand"
    )
    models.add_argument(
        "action", choices=["list", "rollback", "promote"], nargs="?", default="list"
    )
    models.add_argument("--model", help="model name (default: the first of SIDECAR_MODELS)")
    models.add_argument("--to", help="version to roll back to or promote")
    models.add_argument("--model-dir", type=Path)

    retrain = sub.add_parser(
        "retrain",
        help="retrain on the rolling window now; promote only if the held-out FPR does not rise",
    )
    retrain.add_argument("--days", type=float, help="window length (SIDECAR_TRAIN_DAYS)")
    retrain.add_argument("--end", help="ISO-8601 end of the window (default: now - lag)")

    feedback = sub.add_parser(
        "feedback", help="set an analyst's verdict on an anomaly document (as Dev Tools would)"
    )
    feedback.add_argument(
        "--id", required=True, help="an incident's id (inc-…) or an anomaly document's _id"
    )
    feedback.add_argument("--verdict", required=True, choices=["false_positive", "true_positive"])
    feedback.add_argument("--by", help="who decided")
    feedback.add_argument("--note", help="why")

    train = sub.add_parser("train", help="fit the vocabulary and DeepLog, save an artifact")
    train.add_argument(
        "--from-file",
        action="append",
        metavar="JSONL",
        help="train on JSON-lines files instead of the cluster (repeatable)",
    )
    train.add_argument("--days", type=float, help="train on the last N days (SIDECAR_TRAIN_DAYS)")
    train.add_argument("--start", help="ISO-8601 start of the training range")
    train.add_argument("--end", help="ISO-8601 end of the training range (default: now - lag)")
    train.add_argument("--model-dir", type=Path)
    train.add_argument("--epochs", type=int)

    score = sub.add_parser("score", help="embedded mode: score a JSON-lines file, no cluster")
    score.add_argument("--from-file", required=True, metavar="JSONL")
    score.add_argument("--to-file", required=True, metavar="JSONL")
    score.add_argument(
        "--incidents-file", metavar="JSONL", help="also write the incident documents here"
    )
    score.add_argument("--model-dir", type=Path)

    dashboards = sub.add_parser(
        "dashboards", help="import the Dashboards / Kibana saved objects (or print them)"
    )
    dashboards.add_argument(
        "--product", choices=["opensearch-dashboards", "kibana"], default="opensearch-dashboards"
    )
    dashboards.add_argument("--url", help="Dashboards / Kibana base URL; without it, print NDJSON")
    dashboards.add_argument("--space", help="Kibana space")

    workflow = sub.add_parser(
        "workflow", help="print the normal workflows of log keys learned with the active model"
    )
    workflow.add_argument("--group", help="a host group, a host name (its group), or '*' (all)")
    workflow.add_argument("--model", help="model name (default: the first of SIDECAR_MODELS)")
    workflow.add_argument("--format", choices=["text", "dot", "json"], default="text")
    workflow.add_argument("--model-dir", type=Path)

    demo = sub.add_parser("demo", help="provision a local OpenSearch and run an end-to-end demo")
    demo.add_argument("--hosts", type=int, default=12)
    demo.add_argument("--cycles", type=int, default=3)
    demo.add_argument("--keep-node", action="store_true", help="leave OpenSearch running")
    return parser


COMMANDS = {
    "run": cmd_run,
    "setup": cmd_setup,
    "train": cmd_train,
    "score": cmd_score,
    "demo": cmd_demo,
    "dashboards": cmd_dashboards,
    "workflow": cmd_workflow,
    "models": cmd_models,
    "retrain": cmd_retrain,
    "feedback": cmd_feedback,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if getattr(args, "model_dir", None) is not None:
        overrides["model_dir"] = args.model_dir
    if getattr(args, "epochs", None) is not None:
        overrides["train_epochs"] = args.epochs
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    if args.command != "demo":  # the demo prints its own story
        log.info(
            "starting", command=args.command, version=__version__, settings=settings.redacted()
        )
    try:
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ModelError as exc:
        print(f"model error: {exc}", file=sys.stderr)
        return 1
    except AccessError as exc:
        print(f"access error: {exc}", file=sys.stderr)
        return EXIT_ACCESS
    except SidecarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OpenSearchException as exc:
        print(f"error: cluster request failed: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
