"""Gated retraining: a candidate trained on the rolling window is promoted only if, on the
held-out slice, it flags no more unconfirmed events and no fewer confirmed ones than the
active version (sidecar/lifecycle/active.py holds the active versions and rollback).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import structlog

from sidecar.errors import ModelError
from sidecar.files.spill import SpilledStreams
from sidecar.lifecycle.training import event_count, train_model
from sidecar.models.artifacts import ModelArtifact, load_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.fitting import EpochHook
from sidecar.ports import Detector, ModelStore
from sidecar.types import HostSequence, LogEvent

__all__ = [
    "Evaluation",
    "RetrainOutcome",
    "evaluate",
    "gate",
    "retrain",
    "split_streams",
    "without_events",
]

log = structlog.get_logger("sidecar.lifecycle")

# Held-out events scored in one detector call: the gate's memory is a batch, not the slice.
EVALUATION_BATCH_EVENTS = 50_000

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
    flagged: set[str] = set()
    total = 0
    for batch in _batches(holdout):
        sequences = [
            HostSequence(host, tuple(context.get(host, ())), events) for host, events in batch
        ]
        flagged |= {d.event.log_uuid for d in detector.detect(sequences).detections} - confirmed
        total += sum(1 for _, events in batch for e in events if e.log_uuid not in confirmed)
    incidents = caught = 0
    if window is not None and confirmed:
        # Only the hosts with confirmed events stay in memory (streams may be on disk).
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


def _batches(
    streams: Mapping[str, list[LogEvent]], events: int = EVALUATION_BATCH_EVENTS
) -> Iterator[list[tuple[str, list[LogEvent]]]]:
    """Hosts with events, a few at a time: at least one host, about `events` events a batch."""
    batch: list[tuple[str, list[LogEvent]]] = []
    size = 0
    for host, stream in streams.items():
        if not stream:
            continue
        batch.append((host, stream))
        size += len(stream)
        if size >= events:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def split_streams(
    streams: Mapping[str, list[LogEvent]], at_ms: int
) -> tuple[Mapping[str, list[LogEvent]], Mapping[str, list[LogEvent]]]:
    """(events before `at_ms`, events from it on), per host; streams are in time order.
    Spilled streams split into spilled streams, one host in memory at a time."""
    before, after = SpilledStreams.like(streams), SpilledStreams.like(streams)
    for host, events in streams.items():
        cut = bisect.bisect_left(events, at_ms, key=lambda e: e.timestamp_ms)
        if cut:
            before[host] = events[:cut]  # type: ignore[index]
        if cut < len(events):
            after[host] = events[cut:]  # type: ignore[index]
    return _flushed(before), _flushed(after)


def without_events(
    streams: Mapping[str, list[LogEvent]], log_uuids: set[str]
) -> Mapping[str, list[LogEvent]]:
    """The streams minus the named events (hosts left with none are dropped)."""
    if not log_uuids:
        return streams
    kept = SpilledStreams.like(streams)
    for host, events in streams.items():
        rest = [e for e in events if e.log_uuid not in log_uuids]
        if rest:
            kept[host] = rest  # type: ignore[index]
    return _flushed(kept)


def _flushed(streams: Mapping[str, list[LogEvent]]) -> Mapping[str, list[LogEvent]]:
    if isinstance(streams, SpilledStreams):
        streams.flush()
    return streams


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
    withheld: set[str] = frozenset(),  # type: ignore[assignment]
    tolerance: float = 0.0,
    recall_tolerance: float = 0.0,
    host_group_pattern: str | None = None,
    on_epoch: EpochHook | None = None,
) -> RetrainOutcome:
    """Train a candidate on the events before `holdout_from_ms`, minus the events analysts
    confirmed as incidents and the `withheld` ones (alerted on, not reviewed): they are not
    normal behaviour to learn. Score the held-out rest and the confirmed incidents with the
    candidate and with the active version; promote the candidate only if it passes `gate`."""
    train, holdout = split_streams(streams, holdout_from_ms)
    if not event_count(train) or not event_count(holdout):
        raise ModelError(
            f"retraining {name}: the window has {event_count(train)} events to train "
            f"on and {event_count(holdout)} to hold out; both must be non-empty"
        )
    window = config.window_size  # type: ignore[attr-defined]
    context = {host: events[-window:] for host, events in train.items()}
    candidate = train_model(
        name,
        without_events(train, confirmed | withheld),
        config,
        store,
        {
            **training_data,
            "holdout_from_ms": holdout_from_ms,
            "left_out_incidents": len(confirmed),
            "withheld_unreviewed": len(withheld - confirmed),
        },
        activate=None,
        host_group_pattern=host_group_pattern,
        on_epoch=on_epoch,
        budget=(options.alert_budget, options.models_sharing),
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
