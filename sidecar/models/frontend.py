"""The front half every detector shares: which sequences to judge, the batch laid out and
windowed in one pass, the garbage collector paused while detections are built, and the flagged
events walked back to their hosts. A detector adds only how it scores and what it says.
"""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecar.encoding.vocabulary import RESERVED, Vocabulary
from sidecar.encoding.windows import windows_for_streams
from sidecar.types import DetectionBatch, HostSequence, LogEvent

if TYPE_CHECKING:
    from sidecar.workflows.learn import WorkflowSet

__all__ = [
    "REASON_UNSEEN_KEY",
    "BatchDetector",
    "Windowed",
    "Flagged",
    "windowed",
    "flagged_events",
    "key_names",
    "lay_out",
    "gc_paused",
]

REASON_UNSEEN_KEY = "unseen_key"

# events -> (key ids, template matches by position); the matches are LogAnomaly's
KeyEncoder = Callable[[Sequence[LogEvent]], tuple[np.ndarray, Mapping[int, Any]]]


def key_names(vocabulary: Vocabulary) -> list[tuple[str, str, str] | None]:
    """(label, EVENTID, SEVERITY) by key id, None for the reserved slots."""
    return [None] * RESERVED + [
        (vocabulary.label_of(i), *vocabulary.key_of(i))  # type: ignore[misc]
        for i in range(RESERVED, vocabulary.size)
    ]


def lay_out(
    spans: Sequence[HostSequence], h: int
) -> tuple[list[LogEvent], list[tuple[int, int, int]]]:
    """Every host's last h context events and new events in one list, with (start, first new,
    end) per host: one encode call and one windowing pass keep per-host Python work O(hosts)
    and per-event work in numpy."""
    layout: list[LogEvent] = []
    bounds = []
    for seq in spans:
        start = len(layout)
        layout.extend(seq.context[-h:])
        middle = len(layout)
        layout.extend(seq.events)
        bounds.append((start, middle, len(layout)))
    return layout, bounds


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BatchDetector(ABC):
    """Scores every event of every sequence in one batched pass (all hosts together).

    `detect` is the Detector port; subclasses implement `_detect` on the sequences that hold
    new events. Detections are acyclic; a cyclic-GC pass over a heap of live events costs more
    than building them, so collection waits until the batch is done."""

    name: str
    version: str
    window_size: int
    # The normal workflows learned with the model (sidecar/workflows/), attached after loading.
    workflows: WorkflowSet | None = None

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        spans = [seq for seq in sequences if seq.events]
        if not spans:
            return DetectionBatch([], 0)
        with gc_paused():
            return self._detect(spans)

    @abstractmethod
    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        """Detections for `spans`: every sequence holds at least one new event."""


@dataclass(frozen=True, slots=True)
class Windowed:
    """A batch laid out for window models: one (window of h keys before, key) row per new event,
    hosts in order."""

    spans: list[HostSequence]
    bounds: list[tuple[int, int, int]]  # per host: (start, first new event, end) in the layout
    matches: Mapping[int, Any]  # the encoder's template matches by layout position
    windows: np.ndarray  # [events, h]
    targets: np.ndarray  # [events]


def windowed(spans: list[HostSequence], h: int, encode: KeyEncoder) -> Windowed:
    layout, bounds = lay_out(spans, h)
    ids, matches = encode(layout)
    contexts = [ids[a:b] for a, b, _ in bounds]
    streams = [ids[b:c] for _, b, c in bounds]
    windows, targets = windows_for_streams(contexts, streams, h)
    return Windowed(spans, bounds, matches, windows, targets)


@dataclass(frozen=True, slots=True)
class Flagged:
    event: LogEvent
    row: int  # in the batch's windows, targets and scores
    history: tuple[LogEvent, ...]  # the host's last h context events, then its new events
    position: int  # of the event in `history`
    match: Any  # the encoder's template match for the event, if any


def flagged_events(batch: Windowed, anomalous: np.ndarray, h: int) -> Iterator[Flagged]:
    """The flagged events host by host, each with the history its detection describes."""
    offset = 0
    for seq, (_, middle, _) in zip(batch.spans, batch.bounds, strict=True):
        n = len(seq.events)
        flagged = np.flatnonzero(anomalous[offset : offset + n])
        if len(flagged):
            history = (*seq.context[-h:], *seq.events)
            base = len(history) - n
            for i in flagged:
                yield Flagged(
                    seq.events[i],
                    offset + int(i),
                    history,
                    base + int(i),
                    batch.matches.get(middle + int(i)),
                )
        offset += n
