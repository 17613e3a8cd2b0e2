"""Calibration of next-key models (DeepLog, LogAnomaly): the held-out slice and the surprise.

The held-out slice is sidecar/models/calibration.py's `holdout_mask`.

The surprise of an observed key is how much less likely the model finds it here than the key
is in general: log(frequency of the key) − log(probability of the key after this window). A
rare event that turns up at random times (a weekly patch run) is no more surprising than its
rarity, so it stops being a verdict; a common event where it never occurs (privileges assigned
without a logon) is very surprising; an unseen key or a count never seen in training is
impossible (+inf).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sidecar.encoding.vocabulary import PAD, UNKNOWN
from sidecar.encoding.windows import windows_with_targets
from sidecar.models.calibration import Calibration, events_per_host_day, fit_calibration
from sidecar.models.nextkey.core import NextKeyModel, score_next_keys
from sidecar.types import LogEvent

__all__ = [
    "NextKeyCalibration",
    "calibrate_next_key",
]

_MIN_PROBABILITY = 1e-12
RELATIVE = True


class NextKeyCalibration:
    """A calibration and the key frequencies the surprise is measured against."""

    def __init__(
        self, calibration: Calibration, log_frequency: np.ndarray, relative: bool = RELATIVE
    ) -> None:
        self.calibration = calibration
        self.log_frequency = np.asarray(log_frequency, dtype=np.float64)
        # Relative: measured against the key's own frequency; absolute: −log probability.
        self.relative = relative

    def surprise(
        self, targets: np.ndarray, probability: np.ndarray, impossible: np.ndarray | None = None
    ) -> np.ndarray:
        s = -np.log(np.maximum(probability.astype(np.float64), _MIN_PROBABILITY))
        if self.relative:
            s += self._log_base(targets)
        s = np.where(targets == UNKNOWN, np.inf, s)
        return s if impossible is None else np.where(impossible, np.inf, s)

    def _log_base(self, targets: np.ndarray) -> np.ndarray:
        freq = self.log_frequency
        # Keys added after training (an online update) are as rare as the rarest known one.
        floor = float(freq[freq > -np.inf].min()) if np.isfinite(freq).any() else 0.0
        base = np.full(len(targets), floor)
        known = targets < len(freq)
        base[known] = freq[targets[known]]
        return np.where(np.isfinite(base), base, floor)

    def p_values(
        self, targets: np.ndarray, probability: np.ndarray, impossible: np.ndarray | None = None
    ) -> np.ndarray:
        return self.calibration.p_values(self.surprise(targets, probability, impossible))

    def to_json(self) -> dict[str, object]:
        return {
            **self.calibration.to_json(),
            "surprise": "relative" if self.relative else "absolute",
            "key_log_frequency": [
                round(float(v), 6) if np.isfinite(v) else None for v in self.log_frequency
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> NextKeyCalibration:
        freq = [(-np.inf if v is None else float(v)) for v in data["key_log_frequency"]]  # type: ignore[union-attr]
        relative = data.get("surprise", "relative") == "relative"
        return cls(Calibration.from_json(dict(data)), np.asarray(freq), relative)


def key_log_frequency(targets: np.ndarray, counts: np.ndarray, vocab_size: int) -> np.ndarray:
    totals = np.bincount(targets, weights=counts, minlength=vocab_size).astype(np.float64)
    totals[PAD] = totals[UNKNOWN] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(totals / max(totals.sum(), 1.0))


def calibrate_next_key(
    model: NextKeyModel,
    encoded: Mapping[str, np.ndarray],
    held: Mapping[str, np.ndarray],
    streams: Mapping[str, list[LogEvent]],
    h: int,
    log_frequency: np.ndarray,
    impossible_of=None,
    relative: bool = RELATIVE,
) -> NextKeyCalibration:
    """Score the held-out events (with their real preceding context) and fit the calibration.

    `impossible_of(windows, targets)` marks what the model's invariants call impossible
    (LogAnomaly's counts); those stay out of the normal reference."""
    windows, targets = [], []
    for host, keys in encoded.items():
        mask = held[host]
        if not mask.any():
            continue
        w, t = windows_with_targets(np.empty(0, dtype=np.int64), keys, h)
        windows.append(w[mask])
        targets.append(t[mask])
    spans = [
        (stream[0].timestamp_ms, stream[-1].timestamp_ms, len(stream))
        for stream in streams.values()
        if stream
    ]
    rate = events_per_host_day(spans)
    unfitted = NextKeyCalibration(fit_calibration(np.empty(0), rate), log_frequency, relative)
    if not targets:
        return unfitted
    w = np.concatenate(windows)
    t = np.concatenate(targets)
    scores = score_next_keys(model, w, t, 1)
    impossible = impossible_of(w, t) if impossible_of is not None else None
    surprise = unfitted.surprise(t, scores.probability, impossible)
    return NextKeyCalibration(fit_calibration(surprise, rate), log_frequency, relative)
