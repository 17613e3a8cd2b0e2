"""One function per command besides `run` (sidecar/app/service.py): each takes the parsed
arguments and settings and returns the exit code."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import structlog

from sidecar.app.output import dumps, parse_instant
from sidecar.app.retraining import retrain_all
from sidecar.app.settings import Settings
from sidecar.app.training_data import cluster_training_streams, mine_training_keys
from sidecar.app.wiring import (
    active_models,
    device_for,
    install_sidecar_templates,
    model_config,
    model_store,
)
from sidecar.errors import ConfigError, ModelError
from sidecar.types import InputStats

log = structlog.get_logger("sidecar.app.commands")


def cmd_setup(_args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.cluster.client import make_client

    install_sidecar_templates(settings, make_client(settings))
    print(
        "installed templates and indices: "
        f"{settings.anomaly_search}, {settings.incident_search}, {settings.state_index}"
    )
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.app.progress import TrainingProgress
    from sidecar.cluster.client import make_client

    client = make_client(settings)
    end_ms = parse_instant(args.end) if args.end else None
    store = model_store(settings, client)
    outcomes = retrain_all(
        settings, client, store, None, end_ms, args.days, TrainingProgress.for_command()
    )
    print(dumps(outcomes[0] if len(outcomes) == 1 else outcomes))
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.lifecycle.active import rollback

    store = model_store(settings)
    name = args.model or settings.models[0]
    if args.action == "rollback":
        activation = rollback(store, name, args.to)
        print(dumps({"model": name, **activation.to_json()}))
        return 0
    if args.action == "promote":
        if not args.to:
            raise ConfigError("models promote needs --to VERSION")
        activation = store.activate(name, args.to, "promoted by hand")
        print(dumps({"model": name, **activation.to_json()}))
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
        dumps(
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
    index = settings.incident_search if args.id.startswith("inc-") else settings.anomaly_search
    set_verdict(make_client(settings), index, args.id, args.verdict, args.by, args.note)
    print(f"{args.id}: feedback.verdict = {args.verdict}")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.app.progress import TrainingProgress
    from sidecar.lifecycle.training import train_model
    from sidecar.models.fitting import training_device

    stats = InputStats()
    progress = TrainingProgress.for_command()
    if args.from_file:
        from sidecar.files.source import read_jsonl_events
        from sidecar.files.spill import SpilledStreams

        # Grouped by host on local disk as the lines come, sorted per host when read back:
        # a file of any size trains in the memory of its hosts' windows, not of its lines.
        streams = SpilledStreams(settings.training_spill_dir)
        for f in args.from_file:
            for e in read_jsonl_events(
                Path(f),
                settings.fields,
                stats,
                settings.host_case_sensitive,
                settings.template_mining != "off",
            ):
                streams.add(e.host, (e,), ordered=False)
        streams.flush()
        progress.read(streams.events, len(streams), done=True)
        data: dict[str, object] = {"source": "files", "files": [str(f) for f in args.from_file]}
    else:
        streams, data = cluster_training_streams(args, settings, stats, progress)
    mined = mine_training_keys(settings, streams, stats, in_cluster=not args.from_file)
    if mined is not None:
        from sidecar.templates.drain import STATE_FORMAT

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
    with training_device(device_for(settings)):
        for name in settings.models:
            artifact = train_model(
                name,
                streams,
                model_config(name, settings),
                store,
                data,
                on_epoch=progress.epochs(name),
                host_group_pattern=settings.host_group_pattern or None,
                budget=(settings.alert_budget, len(settings.models)),
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
    print(dumps(results[0] if len(results) == 1 else results))
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.files.sink import JsonlIncidentSink, JsonlSink, MemoryCheckpoints
    from sidecar.files.source import FileSource
    from sidecar.pipeline.cycle import CycleOptions, run_cycle

    models = active_models(settings)
    detectors = models.detectors
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
        from sidecar.files.minerstate import MINER_STATE_FILE, MemoryMinerStore
        from sidecar.templates.keys import TemplateLabeller

        # Starts from the state training saved; what this file teaches it is not kept.
        seeded = MemoryMinerStore.seeded_from(settings.model_dir / MINER_STATE_FILE)
        keys = TemplateLabeller(
            settings.template_mining,
            seeded,
            max_clusters=settings.template_max_clusters,
            known=models.known_event_ids(),
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
    print(dumps(report.summary()))
    return 0


def cmd_workflow(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.models.artifacts import load_artifact
    from sidecar.workflows.learn import WorkflowSet
    from sidecar.workflows.render import render_dot, render_json, render_text, select

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


def cmd_alerting(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.app.alerting import alert_definition

    definition = alert_definition(args.product, settings.incident_search, args.band, args.every)
    print(dumps(definition))
    return 0


def cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.app.dashboards import import_saved_objects, ndjson, saved_objects

    objects = saved_objects(
        settings.anomaly_index,
        ",".join(settings.watched_indices),
        args.product,
        incident_index=settings.incident_index,
        titles=(settings.anomaly_search, settings.incident_search),
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
