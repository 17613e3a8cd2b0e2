"""What keeps detection good after day one: the active version of each model, online updates
from analysts' false-positive marks, gated retraining, and rollback.

Everything here works through a ModelStore (a directory or the cluster's model index) and
pure detectors; the cluster-specific parts (reading feedback, marking it applied) live in
sidecar/cluster/feedback.py.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from sidecar.diagnosis import attach_workflows
from sidecar.errors import ModelError
from sidecar.models.artifacts import ModelArtifact, load_artifact, save_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.nextkey import TrainingSummary
from sidecar.models.online import MarkedWindow
from sidecar.models.store import Activation, ModelStore
from sidecar.ports import Detector
from sidecar.training import train_model
from sidecar.types import HostSequence, LogEvent

__all__ = [
    "ActiveModels",
    "Evaluation",
    "RetrainOutcome",
    "apply_false_positives",
    "evaluate",
    "retrain",
    "rollback",
    "split_streams",
]

log = structlog.get_logger("sidecar.lifecycle")

# Manifest entries every artifact writes itself; the rest (LogAnomaly's semantics, the
# workflow, ...) is model-specific and carried over to a version derived by an update.
_OWN_MANIFEST_KEYS = {
    "format_version",
    "model",
    "version",
    "created_at",
    "sidecar_version",
    "torch_version",
    "weights_sha256",
    "blobs",
    "config",
    "vocabulary",
    "training",
    "training_data",
    "parent",
    "online_update",
}


class ActiveModels:
    """The detectors of the store's active versions, reloaded when a pointer moves (a
    promotion, an online update, a rollback made by any replica or by the CLI)."""

    def __init__(self, store: ModelStore, names: Sequence[str], options: DetectorOptions):
        self.store = store
        self.names = list(names)
        self.options = options
        self._detectors: dict[str, Detector] = {}
        self.artifacts: dict[str, ModelArtifact] = {}

    @property
    def detectors(self) -> list[Detector]:
        return [self._detectors[name] for name in self.names if name in self._detectors]

    def versions(self) -> dict[str, str]:
        return {name: artifact.version for name, artifact in self.artifacts.items()}

    def refresh(self) -> list[str]:
        """Load every model whose active version changed; returns the names reloaded."""
        changed = []
        for name in self.names:
            version = self.store.active(name)
            if version is None:
                raise ModelError(f"no active {name} model in {self.store}; run `train` first")
            current = self.artifacts.get(name)
            if current is not None and current.version == version:
                continue
            artifact = load_artifact(self.store, name, version)
            detector = kind_of(name).detector(artifact, self.options)
            attach_workflows(detector, artifact.manifest)  # kinds that do not load them
            self._detectors[name] = detector
            self.artifacts[name] = artifact
            changed.append(name)
            log.info(
                "model_loaded",
                model=name,
                version=version,
                previous=current.version if current else None,
                keys=artifact.vocabulary.known,
            )
        return changed


# -- online update ---------------------------------------------------------------------------


def apply_false_positives(
    store: ModelStore,
    artifact: ModelArtifact,
    marked: Sequence[MarkedWindow],
    options: DetectorOptions,
) -> ModelArtifact | None:
    """A new active version updated on `marked`, or None when this kind has no online
    update (its false positives are learned at the next retraining instead)."""
    kind = kind_of(artifact.name)
    if kind.update is None or not marked:
        return None
    updated = kind.update(artifact, list(marked), options)
    carried = {k: v for k, v in artifact.manifest.items() if k not in _OWN_MANIFEST_KEYS}
    report = {
        **updated.report,
        "false_positives": len(marked),
        "documents": [m.document_id for m in marked[:1_000]],
    }
    summary = TrainingSummary(epochs_run=int(updated.report.get("epochs", 0)))  # type: ignore[arg-type]
    new = save_artifact(
        store,
        artifact.name,
        updated.net,
        updated.vocabulary,
        artifact.config,
        summary,
        dict(artifact.manifest.get("training_data") or {}),  # type: ignore[arg-type]
        {
            **carried,
            **updated.manifest_changes,
            "parent": artifact.version,
            "online_update": report,
        },
        tensors=updated.tensors or None,
        activate=f"online update: {len(marked)} false positive(s) marked on {artifact.version}",
    )
    log.info(
        "online_update",
        model=artifact.name,
        parent=artifact.version,
        version=new.version,
        **updated.report,
    )
    return new


# -- retraining with a promotion gate --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How often a model flags the events of a held-out slice that nobody confirmed as an
    incident: the false-positive rate the promotion gate compares."""

    version: str
    events: int
    flagged: int

    @property
    def false_positive_rate(self) -> float:
        return self.flagged / self.events if self.events else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "events": self.events,
            "flagged": self.flagged,
            "false_positive_rate": round(self.false_positive_rate, 6),
        }


def evaluate(
    detector: Detector,
    version: str,
    holdout: Mapping[str, list[LogEvent]],
    context: Mapping[str, Sequence[LogEvent]],
    confirmed: set[str] = frozenset(),  # type: ignore[assignment]
) -> Evaluation:
    """Score the held-out streams (each after its host's earlier events) and count flagged
    events, leaving out the ones analysts confirmed as real incidents."""
    sequences = [
        HostSequence(host, tuple(context.get(host, ())), events)
        for host, events in holdout.items()
        if events
    ]
    batch = detector.detect(sequences)
    flagged = {d.event.log_uuid for d in batch.detections} - confirmed
    total = sum(1 for events in holdout.values() for e in events if e.log_uuid not in confirmed)
    return Evaluation(version, total, len(flagged))


def split_streams(
    streams: Mapping[str, list[LogEvent]], at_ms: int
) -> tuple[dict[str, list[LogEvent]], dict[str, list[LogEvent]]]:
    """(events before `at_ms`, events from it on), per host; streams are in time order."""
    before, after = {}, {}
    for host, events in streams.items():
        cut = bisect.bisect_left(events, at_ms, key=lambda e: e.timestamp_ms)
        if cut:
            before[host] = events[:cut]
        if cut < len(events):
            after[host] = events[cut:]
    return before, after


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    model: str
    candidate: Evaluation
    current: Evaluation | None
    promoted: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "candidate": self.candidate.to_json(),
            "current": self.current.to_json() if self.current else None,
            "promoted": self.promoted,
            "reason": self.reason,
        }


def retrain(
    store: ModelStore,
    name: str,
    config: object,
    streams: Mapping[str, list[LogEvent]],
    holdout_from_ms: int,
    options: DetectorOptions,
    training_data: dict[str, object],
    *,
    confirmed: set[str] = frozenset(),  # type: ignore[assignment]
    tolerance: float = 0.0,
    host_group_pattern: str | None = None,
) -> RetrainOutcome:
    """Train a candidate on the events before `holdout_from_ms`, score the rest with the
    candidate and with the active version, and promote the candidate only if its
    false-positive rate there is not higher (by more than `tolerance`)."""
    train, holdout = split_streams(streams, holdout_from_ms)
    if not any(train.values()) or not any(holdout.values()):
        raise ModelError(
            f"retraining {name}: the window has {sum(map(len, train.values()))} events to train "
            f"on and {sum(map(len, holdout.values()))} to hold out; both must be non-empty"
        )
    window = config.window_size  # type: ignore[attr-defined]
    context = {host: events[-window:] for host, events in train.items()}
    candidate = train_model(
        name,
        train,
        config,
        store,
        {**training_data, "holdout_from_ms": holdout_from_ms},
        activate=None,
        host_group_pattern=host_group_pattern,
    )
    kind = kind_of(name)
    candidate_eval = evaluate(
        kind.detector(candidate, options), candidate.version, holdout, context, confirmed
    )
    active = store.active(name)
    current_eval = None
    if active is not None:
        current = load_artifact(store, name, active)
        current_eval = evaluate(
            kind.detector(current, options), active, holdout, context, confirmed
        )
    if current_eval is None:
        promoted, reason = True, "no active version"
    elif candidate_eval.false_positive_rate <= current_eval.false_positive_rate + tolerance:
        promoted = True
        reason = (
            f"held-out FPR {candidate_eval.false_positive_rate:.4%} <= "
            f"{current_eval.false_positive_rate:.4%} of {active}"
        )
    else:
        promoted = False
        reason = (
            f"held-out FPR {candidate_eval.false_positive_rate:.4%} > "
            f"{current_eval.false_positive_rate:.4%} of {active}"
            + (f" + tolerance {tolerance:.4%}" if tolerance else "")
        )
    outcome = RetrainOutcome(name, candidate_eval, current_eval, promoted, reason)
    store.annotate(
        name,
        candidate.version,
        {
            "status": "promoted" if promoted else "rejected",
            "evaluation": outcome.to_json(),
        },
    )
    if promoted:
        store.activate(name, candidate.version, f"retrained: {reason}")
    log.info("retrain_finished", **outcome.to_json())
    return outcome


# -- rollback --------------------------------------------------------------------------------


def rollback(store: ModelStore, name: str, to: str | None = None) -> Activation:
    """Make `to` active again, or by default the version that was active before the current
    one, skipping versions that were themselves rolled back (so rolling back twice goes two
    versions back, not back and forth)."""
    current = store.active(name)
    if current is None:
        raise ModelError(f"no active {name} model to roll back")
    if to is None:
        history = store.history(name)
        rolled_back = {a.previous for a in history if a.reason.startswith("rollback")}
        earlier = [
            a.version
            for a in reversed(history)
            if a.version != current and a.version not in rolled_back
        ]
        if not earlier:
            raise ModelError(f"{name} {current} has no earlier version to roll back to")
        to = earlier[0]
    if to == current:
        raise ModelError(f"{name} {to} is already the active version")
    activation = store.activate(name, to, f"rollback from {current}")
    store.annotate(name, current, {"status": "rolled_back", "rolled_back_at": activation.at})
    return activation
