"""Events in, content detections out: the adapter between host sequences and the content model.

Only new events are judged, each on its own text; events of one template and one shape are
scored once. Events whose key the model has never seen, or saw too rarely to know its text,
are skipped and counted: an unseen or rare template is the sequence models' verdict, not a
token variation.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from sidecar.encoding.vocabulary import RESERVED, Vocabulary, key_label
from sidecar.models.calibration import Calibration, grade
from sidecar.models.content.features import features_of, token_counts
from sidecar.models.content.fit import labels_of, surprise_of
from sidecar.models.content.model import ContentNet
from sidecar.models.content.rows import Rows, rows_of
from sidecar.models.content.stats import TemplateStats
from sidecar.models.content.tokens import CLASSES, class_of
from sidecar.models.frontend import BatchDetector
from sidecar.types import (
    ContentDeviation,
    Detection,
    DetectionBatch,
    HostSequence,
    LogEvent,
    UnusualToken,
)

__all__ = ["ContentDetector", "REASON_CONTENT", "unusual_tokens"]

REASON_CONTENT = "content"
# Tokens named on an annotation, and the share of its template's messages below which a token
# counts as unusual there.
_SHOWN_TOKENS = 3
_UNUSUAL_SHARE = 0.01


def unusual_tokens(
    tokens: list[str],
    counts: np.ndarray,
    messages: float,
    typical: dict[str, list[list[object]]],
) -> tuple[UnusualToken, ...]:
    """The rarest tokens of a message for its template, rarest first (ties: in order)."""
    order = np.argsort(counts, kind="stable")
    out = []
    for j in order[:_SHOWN_TOKENS].tolist():
        if counts[j] > _UNUSUAL_SHARE * messages and out:
            break
        out.append(
            UnusualToken(
                token=tokens[j],
                token_class=CLASSES[class_of(tokens[j])],
                position=j,
                seen=int(counts[j]),
                typical=tuple((str(t), float(s)) for t, s in typical.get(str(j), ())),  # type: ignore[misc]
            )
        )
    return tuple(out)


class ContentDetector(BatchDetector):
    def __init__(
        self,
        name: str,
        version: str,
        vocabulary: Vocabulary,
        net: ContentNet,
        typical: dict[str, dict[str, list[list[object]]]],
        calibration: Calibration,
        threshold: float,
        window_size: int,
        min_messages: int = 0,
    ) -> None:
        self.name = name
        self.version = version
        self.vocabulary = vocabulary
        self.net = net.eval()
        self.stats: TemplateStats = net.stats(typical)
        self.calibration = calibration
        self.threshold = threshold
        self.threshold_surprise = calibration.surprise_at(threshold)
        self.window_size = window_size
        self.min_messages = min_messages
        self._labels = labels_of(vocabulary)
        # Events not judged since this detector was built: their key is unknown to the model
        # (`unknown_key`) or had too few training messages to know its text (`rare_key`).
        self.skipped: Counter[str] = Counter()
        # Events judged and the distinct (template, shape) rows they were scored as.
        self.judged_events = 0
        self.distinct_rows = 0

    def _detect(self, spans: list[HostSequence]) -> DetectionBatch:
        events = [e for seq in spans for e in seq.events]
        keys = self.vocabulary.encode(events)
        known = keys >= RESERVED
        common = known & (self.stats.messages[np.where(known, keys, 0)] >= self.min_messages)
        self.skipped["unknown_key"] += int((~known).sum())
        self.skipped["rare_key"] += int((known & ~common).sum())
        judged = np.flatnonzero(common)
        rows = rows_of(keys[judged], [events[i].message for i in judged], self._labels)
        self.judged_events += len(judged)
        self.distinct_rows += len(rows.keys)
        counts = token_counts(self.stats, rows, leave_one_out=False)
        normalised = self.net.normalise(features_of(self.stats, rows, counts))
        # Many text shapes have the same features: each distinct vector is scored once.
        unique, inverse = np.unique(normalised, axis=0, return_inverse=True)
        forest_u, surprise_u = surprise_of(self.net, unique)
        forest, surprise = forest_u[inverse.ravel()], surprise_u[inverse.ravel()]
        p_values = self.calibration.p_values(surprise)
        flagged_rows = (p_values <= self.threshold) & (surprise > 0)
        if not flagged_rows.any():
            return DetectionBatch([], len(judged))
        # Only the flagged events are walked back to their hosts.
        hits = np.flatnonzero(flagged_rows[rows.row_of])  # positions among the judged
        ends = np.cumsum([len(seq.events) for seq in spans])
        detections = []
        histories: dict[int, tuple[LogEvent, ...]] = {}
        for hit in hits.tolist():
            at = int(judged[hit])  # position among all new events
            span = int(np.searchsorted(ends, at, side="right"))
            seq = spans[span]
            history = histories.get(span)
            if history is None:
                history = histories[span] = (*seq.context[-self.window_size :], *seq.events)
            first = int(ends[span]) - len(seq.events)
            detections.append(
                self._detection(
                    history,
                    len(history) - len(seq.events) + at - first,
                    rows,
                    counts,
                    p_values,
                    surprise,
                    forest,
                    int(rows.row_of[hit]),
                )
            )
        return DetectionBatch(detections, len(judged))

    def _detection(
        self,
        history: tuple[LogEvent, ...],
        at: int,
        rows: Rows,
        counts: np.ndarray,
        p_values: np.ndarray,
        surprise: np.ndarray,
        forest: np.ndarray,
        row: int,
    ) -> Detection:
        event = history[at]
        key = int(rows.keys[row])
        label = rows.labels[row]
        messages = float(self.stats.messages[key])
        p = float(p_values[row])
        window = history[max(0, at - self.window_size) : at]
        return Detection(
            model=self.name,
            model_version=self.version,
            event=event,
            window=window,
            padded=self.window_size - len(window),
            reason=REASON_CONTENT,
            score=round(1.0 - p, 6),
            observed_key=key_label(event.event_id, event.severity),
            observed_rank=0,
            observed_probability=p,
            expected=(),
            window_size=self.window_size,
            top_g=0,
            content=ContentDeviation(
                surprise=round(float(surprise[row]), 6),
                threshold=round(self.threshold_surprise, 6),
                forest_score=round(float(forest[row]), 4),
                template_messages=int(messages),
                unseen=int((rows.of_row(counts, row) == 0).sum()),
                tokens=unusual_tokens(
                    rows.tokens[row],
                    rows.of_row(counts, row),
                    messages,
                    self.stats.typical.get(label, {}),
                ),
            ),
            p_value=p,
            grade=float(grade(np.array([p]), self.threshold)[0]),
        )
