"""Fit a vocabulary and a next-key model (DeepLog or LogAnomaly) on normal events, and save a
versioned artifact."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import structlog
import torch

from sidecar.encoding.semantics import fit_semantic_space, most_common_templates
from sidecar.encoding.vocabulary import RESERVED, Vocabulary
from sidecar.models.artifacts import ModelArtifact, ModelConfig, save_artifact
from sidecar.models.deeplog import DeepLogConfig, DeepLogNet
from sidecar.models.loganomaly import LogAnomalyConfig, LogAnomalyNet, count_limits, key_text
from sidecar.models.nextkey import train_next_key_model, training_pairs
from sidecar.types import LogEvent

__all__ = ["group_by_host", "train_deeplog", "train_loganomaly", "train_model"]

log = structlog.get_logger("sidecar.training")

EpochHook = Callable[[int, float], None]


def group_by_host(events: Iterable[LogEvent]) -> dict[str, list[LogEvent]]:
    """Per-host streams in the order the detector reads them: (timestamp, log_uuid)."""
    by_host: dict[str, list[LogEvent]] = {}
    for event in events:
        by_host.setdefault(event.host, []).append(event)
    for stream in by_host.values():
        stream.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))
    return by_host


def _fit(
    name: str,
    net: torch.nn.Module,
    vocabulary: Vocabulary,
    streams: Mapping[str, list[LogEvent]],
    config: ModelConfig,
    model_dir: Path,
    training_data: dict[str, object],
    on_epoch: EpochHook | None,
    extra: dict[str, object] | None = None,
) -> ModelArtifact:
    events = sum(len(s) for s in streams.values())
    pairs = training_pairs(
        (vocabulary.encode(stream) for stream in streams.values()), config.window_size
    )
    if isinstance(net, LogAnomalyNet):
        with torch.no_grad():
            limits = count_limits(pairs.windows, pairs.targets, vocabulary.size)
            net.count_limits.copy_(torch.from_numpy(limits))
    log.info(
        "training_started",
        model=name,
        hosts=len(streams),
        events=events,
        keys=vocabulary.known,
        distinct_windows=len(pairs.targets),
    )
    summary = train_next_key_model(net, pairs, config, on_epoch=on_epoch)
    summary.events = events
    artifact = save_artifact(
        model_dir,
        name,
        net,
        vocabulary,
        config,
        summary,
        {**training_data, "hosts": len(streams), "events": events},
        extra,
    )
    log.info(
        "training_finished",
        model=name,
        version=artifact.version,
        epochs=summary.epochs_run,
        final_loss=round(summary.losses[-1], 4),
        seconds=round(summary.seconds, 1),
    )
    return artifact


def _vocabulary(streams: Mapping[str, list[LogEvent]]) -> Vocabulary:
    if not any(streams.values()):
        raise ValueError("no events to train on")
    return Vocabulary.fit(e for stream in streams.values() for e in stream)


def train_deeplog(
    streams: Mapping[str, list[LogEvent]],
    config: DeepLogConfig,
    model_dir: Path,
    training_data: dict[str, object],
    on_epoch: EpochHook | None = None,
) -> ModelArtifact:
    vocabulary = _vocabulary(streams)
    torch.manual_seed(config.seed)
    net = DeepLogNet.from_config(vocabulary.size, config)
    return _fit("deeplog", net, vocabulary, streams, config, model_dir, training_data, on_epoch)


def train_loganomaly(
    streams: Mapping[str, list[LogEvent]],
    config: LogAnomalyConfig,
    model_dir: Path,
    training_data: dict[str, object],
    on_epoch: EpochHook | None = None,
) -> ModelArtifact:
    vocabulary = _vocabulary(streams)
    by_event_id = most_common_templates(
        (e.event_id, e.message) for stream in streams.values() for e in stream
    )
    key_templates = [""] * vocabulary.size
    for key_id in range(RESERVED, vocabulary.size):
        event_id, severity = vocabulary.key_of(key_id)  # type: ignore[misc]
        key_templates[key_id] = key_text(by_event_id.get(event_id, ""), severity)
    space = fit_semantic_space(key_templates[RESERVED:], dim=config.semantic_dim)
    torch.manual_seed(config.seed)
    net = LogAnomalyNet.from_config(vocabulary.size, config, len(space.words))
    with torch.no_grad():
        net.key_vectors[RESERVED:] = torch.from_numpy(space.vectors(key_templates[RESERVED:]))
        net.word_vectors.copy_(torch.from_numpy(space.word_vectors))
    semantics = {**space.to_json(), "key_templates": key_templates}
    return _fit(
        "loganomaly",
        net,
        vocabulary,
        streams,
        config,
        model_dir,
        training_data,
        on_epoch,
        {"semantics": semantics},
    )


def train_model(
    name: str,
    streams: Mapping[str, list[LogEvent]],
    config: ModelConfig,
    model_dir: Path,
    training_data: dict[str, object],
    on_epoch: EpochHook | None = None,
) -> ModelArtifact:
    if name == "deeplog":
        assert isinstance(config, DeepLogConfig)
        return train_deeplog(streams, config, model_dir, training_data, on_epoch)
    if name == "loganomaly":
        assert isinstance(config, LogAnomalyConfig)
        return train_loganomaly(streams, config, model_dir, training_data, on_epoch)
    raise ValueError(f"unknown model {name!r}")
