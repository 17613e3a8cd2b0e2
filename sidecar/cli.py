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
from sidecar.models.registry import build_detector
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


def _detectors(settings: Settings):  # -> list[NextKeyDetector]
    from sidecar.models.artifacts import load_artifact

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = _device(settings)
    detectors = []
    for name in settings.models:
        artifact = load_artifact(settings.model_dir, name)
        detectors.append(
            build_detector(
                artifact,
                settings.top_g,
                device,
                settings.template_similarity,
                settings.min_probability,
            )
        )
        log.info(
            "model_loaded",
            model=name,
            version=artifact.version,
            keys=artifact.vocabulary.known,
            window_size=artifact.config.window_size,
            top_g=settings.top_g,
            device=str(device),
        )
    return detectors


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
    )


def cluster_source(settings: Settings, client):  # -> ClusterSource
    from sidecar.cluster.reader import ClusterSource

    return ClusterSource(
        client,
        settings.watched_indices,
        settings.fields,
        settings.page_size,
        case_sensitive_hosts=settings.host_case_sensitive,
    )


# -- run ---------------------------------------------------------------------------------------


def cluster_cycle(settings: Settings, client, detectors, stop: threading.Event) -> CycleReport:
    from sidecar.cluster.checkpoints import ClusterCheckpoints
    from sidecar.cluster.writer import ClusterSink
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
    )


def _guarded_cycle(
    settings: Settings, client, detectors, stop: threading.Event, metrics, health
) -> bool:
    """A failed cycle is logged, counted and retried after a backoff; it never ends the
    process. Returns whether the cycle succeeded."""
    started = time.perf_counter()
    try:
        report = cluster_cycle(settings, client, detectors, stop)
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
    from sidecar.cluster.bootstrap import install_templates
    from sidecar.cluster.client import check_access, make_client, reachable
    from sidecar.metrics import SidecarMetrics
    from sidecar.scheduler import run_every
    from sidecar.server import Health, HealthServer

    try:
        shard = settings.shard()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    log.info("shard", index=shard.index, count=shard.count)
    detectors = _detectors(settings)
    client = make_client(settings)
    check_access(client, settings)
    if settings.manage_templates:
        install_templates(
            client, settings.anomaly_index, settings.state_index, settings.dead_letter_index
        )
    if args.once:
        report = cluster_cycle(settings, client, detectors, threading.Event())
        print(_dumps(report.summary()))
        return 0
    metrics = SidecarMetrics()
    for detector in detectors:
        metrics.model_info.labels(detector.name, detector.version).set(1)
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
    try:
        run_every(
            settings.interval_seconds,
            lambda stop: _guarded_cycle(settings, client, detectors, stop, metrics, health),
            max_cycles=args.max_cycles,
            max_backoff_s=settings.max_backoff_seconds,
        )
    finally:
        if server is not None:
            server.stop()
    return 0


def cmd_setup(_args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.cluster.bootstrap import install_templates
    from sidecar.cluster.client import make_client

    install_templates(
        make_client(settings),
        settings.anomaly_index,
        settings.state_index,
        settings.dead_letter_index,
    )
    print(f"installed templates and indices: {settings.anomaly_index}, {settings.state_index}")
    return 0


# -- train -------------------------------------------------------------------------------------


def _parse_instant(text: str) -> int:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.training import group_by_host, train_model

    stats = InputStats()
    if args.from_file:
        from sidecar.files.source import read_jsonl_events

        events = [
            e
            for f in args.from_file
            for e in read_jsonl_events(
                Path(f), settings.fields, stats, settings.host_case_sensitive
            )
        ]
        streams = group_by_host(events)
        data: dict[str, object] = {"source": "files", "files": [str(f) for f in args.from_file]}
    else:
        streams, data = _cluster_training_streams(args, settings, stats)
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
    for name in settings.models:
        artifact = train_model(
            name,
            streams,
            model_config(name, settings),
            settings.model_dir,
            data,
            on_epoch=lambda epoch, loss: log.debug("epoch", epoch=epoch, loss=round(loss, 5)),
        )
        results.append(
            {
                "model": artifact.name,
                "version": artifact.version,
                "path": str(settings.model_dir / artifact.name / artifact.version),
                "keys": artifact.vocabulary.known,
                "training": artifact.manifest["training"],
            }
        )
    print(_dumps(results[0] if len(results) == 1 else results))
    return 0


def _cluster_training_streams(args, settings: Settings, stats: InputStats):
    from sidecar.cluster.client import make_client

    now_ms = int(time.time() * 1000)
    end_ms = (
        _parse_instant(args.end) if args.end else now_ms - int(settings.read_lag_seconds * 1000)
    )
    days = args.days if args.days is not None else settings.train_days
    start_ms = _parse_instant(args.start) if args.start else end_ms - int(days * 86_400_000)
    source = cluster_source(settings, make_client(settings))
    streams = {}
    for host in source.hosts_with_new({}, start_ms, end_ms):
        stream = [
            e for page in source.read(host, None, start_ms, end_ms, stats) for e in page.events
        ]
        if stream:
            streams[host] = stream
    data = {
        "source": "cluster",
        "indices": settings.watched_indices,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }
    return streams, data


# -- score (embedded mode) ---------------------------------------------------------------------


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.files.sink import JsonlSink, MemoryCheckpoints
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
    )
    sink = JsonlSink.open(Path(args.to_file))
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
            ),
        )
    finally:
        sink.close()
    report.input.merge(stats)
    print(_dumps(report.summary()))
    return 0


# -- dashboards --------------------------------------------------------------------------------


def cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from sidecar.dashboards import import_saved_objects, ndjson, saved_objects

    objects = saved_objects(
        settings.anomaly_index, ",".join(settings.watched_indices), args.product
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
    score.add_argument("--model-dir", type=Path)

    dashboards = sub.add_parser(
        "dashboards", help="import the Dashboards / Kibana saved objects (or print them)"
    )
    dashboards.add_argument(
        "--product", choices=["opensearch-dashboards", "kibana"], default="opensearch-dashboards"
    )
    dashboards.add_argument("--url", help="Dashboards / Kibana base URL; without it, print NDJSON")
    dashboards.add_argument("--space", help="Kibana space")

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
