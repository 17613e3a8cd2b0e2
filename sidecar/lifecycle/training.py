"""Fit a vocabulary and a model of any kind in the catalog on normal events, and store a
versioned artifact."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import structlog

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.files.spill import SpilledStreams
from sidecar.models.artifacts import ModelArtifact, ModelConfig, save_artifact
from sidecar.models.calibration import Calibration, budget_report
from sidecar.models.catalog import EpochHook, kind_of
from sidecar.ports import ModelStore
from sidecar.types import LogEvent
from sidecar.workflows.learn import learn_workflows

__all__ = ["event_count", "group_by_host", "train_model"]

log = structlog.get_logger("sidecar.training")

T = TypeVar("T")


def group_by_host(events: Iterable[LogEvent]) -> dict[str, list[LogEvent]]:
    """Per-host streams in the order the detector reads them: (timestamp, log_uuid)."""
    by_host: dict[str, list[LogEvent]] = {}
    for event in events:
        by_host.setdefault(event.host, []).append(event)
    for stream in by_host.values():
        stream.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))
    return by_host


def event_count(streams: Mapping[str, list[LogEvent]]) -> int:
    """Events in `streams`; spilled streams know it without being read."""
    if isinstance(streams, SpilledStreams):
        return streams.events
    return sum(len(s) for s in streams.values())


def _once(streams: Mapping[str, list[LogEvent]], key: object, compute: Callable[[], T]) -> T:
    """What every model trained on these streams shares, computed once for spilled streams."""
    if isinstance(streams, SpilledStreams):
        return streams.derived(key, compute)
    return compute()


def train_model(
    name: str,
    streams: Mapping[str, list[LogEvent]],
    config: ModelConfig,
    store: ModelStore | Path,
    training_data: dict[str, object],
    on_epoch: EpochHook | None = None,
    *,
    activate: str | None = "trained",
    extra: dict[str, object] | None = None,
    host_group_pattern: str | None = None,
    budget: tuple[float, int] | None = None,
) -> ModelArtifact:
    """Train `name` on `streams` and store it; `activate` (a reason) makes it the active
    version at once, None keeps it a candidate (see sidecar/lifecycle/).

    Every kind's manifest also gets the normal workflows of the same streams per host group
    (`host_group_pattern`, see sidecar/encoding/hostgroups.py), for anomaly summaries and the
    `workflow` command. With `budget` (ALERT_BUDGET, the number of models sharing it), a
    calibrated model's manifest records what that budget's threshold flags on its held-out
    slice (calibration.at_budget)."""
    kind = kind_of(name)
    events = event_count(streams)
    if not events:
        raise ValueError("no events to train on")
    vocabulary = _once(
        streams, "vocabulary", lambda: Vocabulary.fit(e for s in streams.values() for e in s)
    )
    log.info(
        "training_started", model=name, hosts=len(streams), events=events, keys=vocabulary.known
    )
    trained = kind.fit(streams, vocabulary, config, on_epoch)
    workflows = _once(
        streams,
        ("workflows", host_group_pattern),
        lambda: learn_workflows(streams, HostGrouping(host_group_pattern)),
    )
    calibration = trained.extra.get("calibration")
    if budget is not None and isinstance(calibration, dict):
        # The rate the budget's threshold achieves on the held-out slice, kept with the model;
        # a model with several calibrated verdicts splits its share between them.
        verdicts = trained.extra.get("calibrated_verdicts", 1)
        alert_budget, models_sharing = budget
        at_budget = budget_report(
            Calibration.from_json(calibration),
            alert_budget,
            models_sharing,
            verdicts=verdicts if isinstance(verdicts, int) else 1,
        )
        trained.extra["calibration"] = {**calibration, "at_budget": at_budget}
    trained.summary.events = events
    artifact = save_artifact(
        store,
        name,
        trained.net,
        vocabulary,
        config,
        trained.summary,
        {**training_data, "hosts": len(streams), "events": events},
        {**trained.extra, "workflow": workflows.to_json(), **(extra or {})},
        tensors=trained.tensors or None,
        activate=activate,
    )
    losses = trained.summary.losses
    log.info(
        "training_finished",
        model=name,
        version=artifact.version,
        events=events,
        hosts=len(streams),
        keys=vocabulary.known,
        epochs=trained.summary.epochs_run,
        stopped=trained.summary.stopped or None,
        final_loss=round(losses[-1], 4) if losses else None,
        held_out_loss=(
            round(min(trained.summary.held_out_losses), 4)
            if trained.summary.held_out_losses
            else None
        ),
        seconds=round(trained.summary.seconds, 1),
    )
    return artifact
