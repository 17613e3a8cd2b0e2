"""Events in, parameter and timing detections out: the adapter between host sequences and the
parameter model (sidecar/models/parameter/).

Every host's saved tail and new events are laid end to end and scored in one batch. The tail
gives the first new event its time since the previous event, and gives each key its previous
vectors where the tail holds them; the tail's own events are never judged (they were, in the
cycle that read them). Events of keys the model does not cover are skipped and counted:
unknown keys (the next-key models flag those) and keys too rare in training to model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from sidecar.encoding.vocabulary import UNKNOWN, Vocabulary, key_label
from sidecar.models.frontend import BatchDetector
from sidecar.models.parameter.features import (
    features_of,
    history_matrix,
    layout_of,
    previous_of_same_key,
)
from sidecar.models.parameter.model import (
    TIMING,
    AcceptedDeviations,
    ParameterNet,
    ParameterScores,
    normalise,
    score_vectors,
)
from sidecar.models.parameter.slots import slot_source
from sidecar.types import (
    Detection,
    DetectionBatch,
    HostSequence,
    LogEvent,
    ParameterDeviation,
    ParameterValue,
)

__all__ = ["ParameterDetector", "REASON_PARAMETER", "SKIP_REASONS"]

REASON_PARAMETER = "parameter"
# Why an event was not judged: its key is unknown, too rare in training, or nothing the key's
# model reads was observed (a host's first event of a key whose message lacks its numbers).
SKIP_REASONS = ("unknown_key", "rare_key", "nothing_observed")


class ParameterDetector(BatchDetector):
    def __init__(
        self,
        name: str,
        version: str,
        vocabulary: Vocabulary,
        net: ParameterNet,
        slots: Sequence[Sequence[str]],
        window_size: int,
        confidence: float,
        min_error: float,
        accepted: AcceptedDeviations | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.vocabulary = vocabulary
        self.net = net.cpu().eval()
        self.slots = [list(s) for s in slots]
        self.window_size = window_size
        self.confidence = confidence
        self.min_error = min_error
        self.accepted = accepted
        # Events not judged since this detector was built, by reason (SKIP_REASONS).
        self.skipped: Counter[str] = Counter()
        dims = net.dims
        self._names = [
            [TIMING, *(f"value_{i}" for i in range(1, len(s) + 1))][:dims] for s in self.slots
        ]
        self._sources = [
            ["time since the host's previous event", *(slot_source(x) for x in s)]
            for s in self.slots
        ]

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        runs = [(*seq.context, *seq.events) for seq in spans]
        layout = layout_of(runs, self.vocabulary)
        is_new = np.concatenate(
            [
                np.r_[np.zeros(len(seq.context), dtype=bool), np.ones(len(seq.events), dtype=bool)]
                for seq in spans
            ]
        )
        features = features_of(layout, self.slots, self.net.dims)
        normalised = normalise(features, layout.keys, self.net)
        usable = features.observed & self.net.active.numpy()[layout.keys]
        history = history_matrix(normalised, previous_of_same_key(layout, self.net.history))
        scores = score_vectors(
            self.net,
            normalised,
            usable,
            history,
            layout.keys,
            self.confidence,
            self.min_error,
            rows=is_new,
            accepted=self.accepted,
        )
        self._count_skipped(layout.keys[is_new], scores.judged[is_new])
        detections = [
            self._detection(
                layout.events, int(i), layout.host, int(layout.keys[i]), scores, features.raw
            )
            for i in np.flatnonzero(scores.flagged & is_new)
        ]
        return DetectionBatch(detections, int((scores.judged & is_new).sum()))

    def _count_skipped(self, keys: np.ndarray, judged: np.ndarray) -> None:
        modelled = self.net.modelled.numpy()[keys]
        self.skipped["unknown_key"] += int((keys == UNKNOWN).sum())
        self.skipped["rare_key"] += int(((keys != UNKNOWN) & ~modelled).sum())
        self.skipped["nothing_observed"] += int((modelled & ~judged).sum())

    def _expected_raw(self, key: int, d: int, predicted: float) -> float:
        value = predicted * float(self.net.std[key, d]) + float(self.net.mean[key, d])
        if d == 0:
            return float(np.expm1(max(value, 0.0)))
        return float(np.sign(value) * np.expm1(abs(value)))

    def _detection(
        self,
        events: list[LogEvent],
        i: int,
        hosts: np.ndarray,
        key: int,
        scores: ParameterScores,
        raw: np.ndarray,
    ) -> Detection:
        h = self.window_size
        first = i
        while first > 0 and i - first < h and hosts[first - 1] == hosts[i]:
            first -= 1
        window = tuple(events[first:i])
        values = []
        for d, name in enumerate(self._names[key]):
            seen = bool(scores.observed[i, d])
            values.append(
                ParameterValue(
                    name=name,
                    source=self._sources[key][d],
                    observed=float(raw[i, d]) if seen else None,
                    expected=round(self._expected_raw(key, d, scores.predicted[i, d]), 6),
                    deviation=round(float(scores.residual[i, d]), 4) if seen else None,
                )
            )
        # The value that weighs most in the error: an early timing weighs nothing (see
        # score_vectors), however far from its prediction.
        weights = scores.residual[i, : len(values)].copy()
        weights[0] = max(weights[0], 0.0)
        worst = int(np.argmax(np.abs(weights)))
        tail = float(scores.tail[i])
        event = events[i]
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=window,
            padded=h - len(window),
            reason=REASON_PARAMETER,
            score=round(1.0 - tail, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=0,
            observed_probability=tail,
            expected=(),
            window_size=h,
            top_g=0,
            parameters=ParameterDeviation(
                values=tuple(values),
                error=round(float(scores.error[i]), 6),
                threshold=round(float(scores.threshold[i]), 6),
                deviating=values[worst].name,
            ),
        )
