"""Fit a vocabulary and a DeepLog model on normal events and save a versioned artifact."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import structlog
import torch

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.artifacts import ModelArtifact, save_artifact
from sidecar.models.deeplog import DeepLogConfig, DeepLogNet, train_next_key_model, training_pairs
from sidecar.types import LogEvent

__all__ = ["group_by_host", "train_deeplog"]

log = structlog.get_logger("sidecar.training")


def group_by_host(events: Iterable[LogEvent]) -> dict[str, list[LogEvent]]:
    """Per-host streams in the order the detector reads them: (timestamp, log_uuid)."""
    by_host: dict[str, list[LogEvent]] = {}
    for event in events:
        by_host.setdefault(event.host, []).append(event)
    for stream in by_host.values():
        stream.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))
    return by_host


def train_deeplog(
    streams: Mapping[str, list[LogEvent]],
    config: DeepLogConfig,
    model_dir: Path,
    training_data: dict[str, object],
    on_epoch: Callable[[int, float], None] | None = None,
) -> ModelArtifact:
    events = [e for stream in streams.values() for e in stream]
    if not events:
        raise ValueError("no events to train on")
    vocabulary = Vocabulary.fit(events)
    pairs = training_pairs(
        (vocabulary.encode(stream) for stream in streams.values()), config.window_size
    )
    torch.manual_seed(config.seed)
    net = DeepLogNet.from_config(vocabulary.size, config)
    log.info(
        "training_started",
        model="deeplog",
        hosts=len(streams),
        events=len(events),
        keys=vocabulary.known,
        distinct_windows=len(pairs.targets),
    )
    summary = train_next_key_model(net, pairs, config, on_epoch=on_epoch)
    summary.events = len(events)
    artifact = save_artifact(
        model_dir,
        "deeplog",
        net,
        vocabulary,
        config,
        summary,
        {**training_data, "hosts": len(streams), "events": len(events)},
    )
    log.info(
        "training_finished",
        model="deeplog",
        version=artifact.version,
        epochs=summary.epochs_run,
        final_loss=round(summary.losses[-1], 4),
        seconds=round(summary.seconds, 1),
    )
    return artifact
