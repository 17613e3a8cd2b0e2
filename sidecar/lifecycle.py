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
from sidecar.eventkeys import key_scheme_mismatch
from sidecar.models.artifacts import ModelArtifact, load_artifact, save_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.fitting import EpochHook
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
    "gate",
    "retrain",
    "rollback",
    "split_streams",
    "without_events",
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

    def __init__(
        self,
        store: ModelStore,
        names: Sequence[str],
        options: DetectorOptions,
        template_mining: str | None = None,
    ):
        self.store = store
        self.names = list(names)
        self.options = options
        # The mining mode events are keyed under here; None skips the check (tests, tools).
        self.template_mining = template_mining
        self._detectors: dict[str, Detector] = {}
        self.artifacts: dict[str, ModelArtifact] = {}
        # Versions made active that cannot score here, by model: refused once, not reloaded.
        self.refused: dict[str, str] = {}

    @property
    def detectors(self) -> list[Detector]:
        return [self._detectors[name] for name in self.names if name in self._detectors]

    def versions(self) -> dict[str, str]:
        return {name: artifact.version for name, artifact in self.artifacts.items()}

    def refresh(self) -> list[str]:
        """Load every model whose active version changed; returns the names reloaded.

        A version that cannot score here (see `_check_key_scheme`) stops the process at
        start-up; made active later, it is refused with an error log and the loaded version
        keeps scoring, so a bad promotion does not halt detection."""
        changed = []
        for name in self.names:
            version = self.store.active(name)
            if version is None:
                raise ModelError(f"no active {name} model in {self.store}; run `train` first")
            current = self.artifacts.get(name)
            if current is not None and version in (current.version, self.refused.get(name)):
                continue
            artifact = load_artifact(self.store, name, version)
            try:
                self._check_key_scheme(artifact)
            except ModelError as exc:
                if current is None:
                    raise
                self.refused[name] = version
                log.error(
                    "model_refused",
                    model=name,
                    version=version,
                    kept=current.version,
                    error=str(exc),
                )
                continue
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

    def _check_key_scheme(self, artifact: ModelArtifact) -> None:
        if self.template_mining is None:
            return
        vocabulary = artifact.vocabulary
        event_ids = [
            key[0]
            for key in (vocabulary.key_of(i) for i in range(vocabulary.size))
            if key is not None
        ]
        mining = (artifact.manifest.get("training_data") or {}).get("template_mining")  # type: ignore[union-attr]
        trained_mode = mining.get("mode") if isinstance(mining, dict) else None
        miner_format = mining.get("miner_format") if isinstance(mining, dict) else None
        why = key_scheme_mismatch(event_ids, trained_mode, self.template_mining, miner_format)
        if why is not None:
            raise ModelError(f"{artifact.name} {artifact.version} cannot score here: {why}")


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
    """What the promotion gate compares: how often a model flags the held-out events nobody
    confirmed as an incident (its false-positive rate), and how many of the events analysts
    did confirm as incidents anywhere in the window it still flags (its recall on them)."""

    version: str
    events: int
    flagged: int
    incidents: int = 0
    caught: int = 0

    @property
    def false_positive_rate(self) -> float:
        return self.flagged / self.events if self.events else 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.incidents if self.incidents else 1.0

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "events": self.events,
            "flagged": self.flagged,
            "false_positive_rate": round(self.false_positive_rate, 6),
            "confirmed_incident_events": self.incidents,
            "caught": self.caught,
            "recall": round(self.recall, 6),
        }


def evaluate(
    detector: Detector,
    version: str,
    holdout: Mapping[str, list[LogEvent]],
    context: Mapping[str, Sequence[LogEvent]],
    confirmed: set[str] = frozenset(),  # type: ignore[assignment]
    window: Mapping[str, list[LogEvent]] | None = None,
) -> Evaluation:
    """Score the held-out streams (each after its host's earlier events) and count flagged
    events, leaving out the ones analysts confirmed as real incidents. With `window`, also
    score the whole streams of the hosts that have confirmed events and count those flagged."""
    sequences = [
        HostSequence(host, tuple(context.get(host, ())), events)
        for host, events in holdout.items()
        if events
    ]
    flagged = {d.event.log_uuid for d in detector.detect(sequences).detections} - confirmed
    total = sum(1 for events in holdout.values() for e in events if e.log_uuid not in confirmed)
    incidents = caught = 0
    if window is not None and confirmed:
        hosts = {
            host: events
            for host, events in window.items()
            if any(e.log_uuid in confirmed for e in events)
        }
        present = {e.log_uuid for events in hosts.values() for e in events} & confirmed
        found = detector.detect([HostSequence(h, (), events) for h, events in hosts.items()])
        incidents = len(present)
        caught = len({d.event.log_uuid for d in found.detections} & present)
    return Evaluation(version, total, len(flagged), incidents, caught)


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


def without_events(
    streams: Mapping[str, list[LogEvent]], log_uuids: set[str]
) -> dict[str, list[LogEvent]]:
    """The streams minus the named events (hosts left with none are dropped)."""
    if not log_uuids:
        return dict(streams)
    kept = {h: [e for e in events if e.log_uuid not in log_uuids] for h, events in streams.items()}
    return {h: events for h, events in kept.items() if events}


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


def gate(
    candidate: Evaluation,
    current: Evaluation | None,
    fpr_tolerance: float = 0.0,
    recall_tolerance: float = 0.0,
) -> tuple[bool, str]:
    """Promote only a candidate that is not noisier on the held-out slice and still flags
    the incidents analysts confirmed (each within its absolute tolerance)."""
    if current is None:
        return True, "no active version"
    fpr_ok = candidate.false_positive_rate <= current.false_positive_rate + fpr_tolerance
    recall_ok = candidate.recall >= current.recall - recall_tolerance
    parts = [
        f"held-out FPR {candidate.false_positive_rate:.4%} {'<=' if fpr_ok else '>'} "
        f"{current.false_positive_rate:.4%} of {current.version}"
        + (f" + tolerance {fpr_tolerance:.4%}" if fpr_tolerance else "")
    ]
    if candidate.incidents or current.incidents:
        parts.append(
            f"confirmed incidents caught {candidate.caught}/{candidate.incidents} "
            f"{'>=' if recall_ok else '<'} {current.caught}/{current.incidents}"
            + (f" - tolerance {recall_tolerance:.2%}" if recall_tolerance else "")
        )
    return fpr_ok and recall_ok, "; ".join(parts)


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
    recall_tolerance: float = 0.0,
    host_group_pattern: str | None = None,
    on_epoch: EpochHook | None = None,
) -> RetrainOutcome:
    """Train a candidate on the events before `holdout_from_ms`, minus the events analysts
    confirmed as incidents (they are not normal behaviour to learn); score the held-out rest
    and the confirmed incidents with the candidate and with the active version; promote the
    candidate only if it passes `gate`."""
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
        without_events(train, confirmed),
        config,
        store,
        {**training_data, "holdout_from_ms": holdout_from_ms, "left_out_incidents": len(confirmed)},
        activate=None,
        host_group_pattern=host_group_pattern,
        on_epoch=on_epoch,
    )
    kind = kind_of(name)

    def assess(artifact: ModelArtifact) -> Evaluation:
        detector = kind.detector(artifact, options)
        return evaluate(detector, artifact.version, holdout, context, confirmed, streams)

    candidate_eval = assess(candidate)
    active = store.active(name)
    current_eval = assess(load_artifact(store, name, active)) if active is not None else None
    promoted, reason = gate(candidate_eval, current_eval, tolerance, recall_tolerance)
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
