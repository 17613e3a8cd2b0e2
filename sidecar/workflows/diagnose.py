"""Detections + the learned workflows -> where the host left its normal path (pure).

An analyst looking at an anomaly asks "what should have happened here?". The model's top-g
list answers for the model's whole window; the workflow answers in terms of the group's
normal key-to-key flow: what usually follows the last key before the anomaly, where the normal
path would have gone from there, and whether the transition that happened was ever normal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from sidecar.encoding.vocabulary import key_label
from sidecar.ports import Detector
from sidecar.types import Detection, NextStep, WorkflowSummary
from sidecar.workflows.learn import FLEET_GROUP, WorkflowSet

__all__ = [
    "workflow_summary",
    "with_workflows",
    "attach_workflows",
    "PATH_BEFORE",
    "NEXT_KEYS",
    "PATH_STEPS",
]

PATH_BEFORE = 5  # keys of the window shown before the anomaly
NEXT_KEYS = 3  # most likely successors listed
PATH_STEPS = 5  # steps of the expected continuation


def workflow_summary(
    detection: Detection,
    workflows: WorkflowSet,
    *,
    before: int = PATH_BEFORE,
    next_keys: int = NEXT_KEYS,
    path_steps: int = PATH_STEPS,
) -> WorkflowSummary:
    """The expected path around `detection` per its host's group's workflow (the fleet's, shown
    as group "*", when training never saw the group).

    The expectation starts from the last window key the workflow knows, so an unseen key just
    before the anomaly does not leave the analyst without one. The observed transition is the
    one that really happened: from the key right before the event (or, at the very start of a
    host's stream, whether the event's key is part of the workflow at all).
    """
    group = workflows.group_of(detection.event.host)
    workflow = workflows.groups.get(group)
    if workflow is None:
        group, workflow = FLEET_GROUP, workflows.fleet
    keys = [key_label(e.event_id, e.severity) for e in detection.window]
    observed = detection.observed_key
    seen = workflow.has_edge(keys[-1], observed) if keys else workflow.knows(observed)
    from_key = next((k for k in reversed(keys) if workflow.knows(k)), None)
    expected_next: tuple[NextStep, ...] = ()
    expected_path: tuple[str, ...] = ()
    if from_key is not None:
        expected_next = tuple(
            NextStep(s.key, round(s.probability, 6))
            for s in workflow.successors(from_key)[:next_keys]
        )
        expected_path = workflow.main_path(from_key, path_steps).keys
    return WorkflowSummary(
        group=group,
        from_key=from_key,
        path_before=tuple(keys[-before:]) if before > 0 else (),
        expected_next=expected_next,
        expected_path=expected_path,
        observed_transition_seen=seen,
    )


def with_workflows(
    detections: Sequence[Detection], workflows: WorkflowSet | None
) -> Sequence[Detection]:
    """The detections, each carrying its workflow summary; unchanged without workflows (a
    model trained before workflows were learned, or a detector that has none)."""
    if workflows is None:
        return detections
    return [replace(d, workflow=workflow_summary(d, workflows)) for d in detections]


def attach_workflows(detector: Detector, manifest: Mapping[str, object]) -> None:
    """Give a detector its artifact's workflows unless it already carries some: every model
    kind's manifest has them, not every kind's detector loads them."""
    if detector.workflows is None:
        detector.workflows = WorkflowSet.from_manifest(manifest)
