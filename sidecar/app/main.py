"""The command line: argument parsing, the command table, and one table from error kinds to exit
codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import structlog
from opensearchpy.exceptions import OpenSearchException

from sidecar import __version__
from sidecar.app.commands import (
    cmd_alerting,
    cmd_dashboards,
    cmd_feedback,
    cmd_models,
    cmd_retrain,
    cmd_score,
    cmd_setup,
    cmd_train,
    cmd_workflow,
)
from sidecar.app.logging import configure_logging
from sidecar.app.retention import cmd_retention
from sidecar.app.service import cmd_run
from sidecar.app.wiring import load_settings
from sidecar.errors import AccessError, ConfigError, ModelError, SidecarError

log = structlog.get_logger("sidecar.app.main")

EXIT_CONFIG = 2
EXIT_ACCESS = 3

# Error kind -> (what stderr's one line starts with, exit code); the first kind that matches
# wins, so the specific kinds come before SidecarError. Anything else is a crash with a
# traceback: a bug, not an operator's mistake.
EXIT_CODES: tuple[tuple[type[BaseException], str, int], ...] = (
    (ConfigError, "configuration error", EXIT_CONFIG),
    (ModelError, "model error", 1),
    (AccessError, "access error", EXIT_ACCESS),
    (SidecarError, "error", 1),
    (OpenSearchException, "error: cluster request failed", 1),
    (RuntimeError, "error", 1),
    (OSError, "error", 1),
)


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

    alerting = sub.add_parser(
        "alerting",
        help="print an OpenSearch Alerting monitor or a Kibana rule on the incident index",
    )
    alerting.add_argument("--product", choices=["opensearch", "kibana"], default="opensearch")
    alerting.add_argument(
        "--band", choices=["medium", "high", "critical"], default="high", help="lowest grade band"
    )
    alerting.add_argument("--every", type=int, default=5, help="minutes between runs")

    retention = sub.add_parser(
        "retention", help="list the result partitions and which are past SIDECAR_RETENTION_DAYS"
    )
    retention.add_argument("--drop", action="store_true", help="drop those past it now")

    workflow = sub.add_parser(
        "workflow", help="print the normal workflows of log keys learned with the active model"
    )
    workflow.add_argument("--group", help="a host group, a host name (its group), or '*' (all)")
    workflow.add_argument("--model", help="model name (default: the first of SIDECAR_MODELS)")
    workflow.add_argument("--format", choices=["text", "dot", "json"], default="text")
    workflow.add_argument("--model-dir", type=Path)
    return parser


COMMANDS = {
    "run": cmd_run,
    "setup": cmd_setup,
    "train": cmd_train,
    "score": cmd_score,
    "dashboards": cmd_dashboards,
    "alerting": cmd_alerting,
    "workflow": cmd_workflow,
    "models": cmd_models,
    "retrain": cmd_retrain,
    "feedback": cmd_feedback,
    "retention": cmd_retention,
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
    log.info("starting", command=args.command, version=__version__, settings=settings.redacted())
    try:
        return COMMANDS[args.command](args, settings)
    except tuple(kind for kind, _, _ in EXIT_CODES) as exc:
        return exit_code(exc)


def exit_code(exc: BaseException) -> int:
    """Says what went wrong on one line of stderr; returns the exit code of its kind."""
    for kind, prefix, code in EXIT_CODES:
        if isinstance(exc, kind):
            print(f"{prefix}: {exc}", file=sys.stderr)
            return code
    raise exc
