"""Calibrated anomaly scores: how unusual an observation is next to held-out normal data.

A model's raw output (a next key's probability, a reconstruction error) means different things
for different models, keys and fleets, so no fixed cut on it stays quiet everywhere. Each model
is therefore calibrated when it is trained: a slice of the training range is held out from
fitting, the model scores it, and the distribution of its *surprise* there is kept. An event's
p-value is the share of held-out normal events at least as surprising (a conformal p-value);
beyond the most surprising held-out event the tail is extrapolated with an exponential fitted to
the largest excesses (peaks over threshold, as in Siffer et al., "Anomaly Detection in Streams
with Extreme Value Theory", KDD'17), so p-values keep falling past 1/n instead of stopping there.

The verdict threshold follows from the operator's false-alarm budget, not from a cut tuned per
data set: a budget of B false incidents per host per day over a fleet that logs R events per
host per day allows each event a false-alarm probability of about B / R (less when several
models share the budget). Changing the budget needs no retraining.

Pure: numpy in, numpy out; the fitted state is plain JSON for the model manifest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HOLDOUT_CHUNK",
    "HOLDOUT_SHARE",
    "holdout_mask",
    "holdout_folds",
    "Calibration",
    "events_per_host_day",
    "fit_calibration",
    "grade",
    "least_surprise",
    "threshold_for_budget",
    "budget_report",
]

# The held-out slice: chunks of consecutive events per host, chosen by a hash of (host, chunk),
# so it spans the whole training range (a time split would calibrate on one weekday) and every
# host role, and is the same in every process. A host shorter than one chunk (an HDFS block, a
# short-lived container) is held out whole or not at all. One chunk in five: enough held-out
# events for a tail estimate on a day of a small fleet, little enough that fitting keeps most.
HOLDOUT_CHUNK = 256
HOLDOUT_SHARE = 5
# Survival points kept from the held-out sample: every rank up to this, then geometric steps.
_EXACT_RANKS = 64
_RANK_GROWTH = 1.08
# The exponential tail is fitted to the largest excesses: at most this many, at most this share.
_TAIL_POINTS = 50
_TAIL_SHARE = 0.1
# A tail scale below this (in the surprise's units, nats) would call an event a hair past the
# held-out maximum impossible; one nat is a factor e in probability.
_MIN_TAIL_SCALE = 1.0
# The smallest p-value reported (log10): beyond it the grade is 100 anyway.
_MIN_LOG10_P = -30.0


@dataclass(frozen=True, slots=True)
class Calibration:
    """The survival function of a model's surprise on held-out normal events.

    `values[i]` is a surprise and `survival[i]` the share of held-out events at least that
    surprising, (rank + 1) / (n + 1) for the held-out event of that rank, values descending.
    """

    values: tuple[float, ...]
    survival: tuple[float, ...]
    n: int
    tail_scale: float
    # Events logged per host per day in the training range (what turns a budget into a rate).
    events_per_host_day: float

    def p_values(self, surprise: np.ndarray) -> np.ndarray:
        """P-values of `surprise` (float array; +inf for the impossible, which gets 0)."""
        s = np.asarray(surprise, dtype=np.float64)
        if self.n == 0:
            return np.where(np.isposinf(s), 0.0, 1.0)
        values = np.asarray(self.values)
        log_surv = np.log(np.asarray(self.survival))
        # np.interp needs ascending x: walk the table from the least to the most surprising.
        inside = np.exp(np.interp(s, values[::-1], log_surv[::-1], left=0.0))
        top, top_surv = values[0], self.survival[0]
        beyond = top_surv * np.exp(-np.maximum(s - top, 0.0) / self.tail_scale)
        p = np.where(s > top, beyond, inside)
        p = np.where(np.isposinf(s), 0.0, p)
        return np.clip(p, 0.0, 1.0)

    def surprise_at(self, p_value: float) -> float:
        """The least surprise whose p-value is at most `p_value` (the inverse of p_values):
        what an annotation shows as the threshold in the model's own units."""
        if self.n == 0 or p_value <= 0.0:
            return math.inf
        top, top_surv = self.values[0], self.survival[0]
        if p_value < top_surv:
            return top + self.tail_scale * math.log(top_surv / p_value)
        values = np.asarray(self.values)
        log_surv = np.log(np.asarray(self.survival))
        # survival rises as the surprise falls: interpolate on the ascending log-survival.
        return float(np.interp(math.log(p_value), log_surv, values))

    def to_json(self) -> dict[str, object]:
        return {
            "values": [round(v, 6) for v in self.values],
            "survival": [float(f"{v:.6g}") for v in self.survival],
            "n": self.n,
            "tail_scale": round(self.tail_scale, 6),
            "events_per_host_day": round(self.events_per_host_day, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Calibration:
        return cls(
            tuple(float(v) for v in data["values"]),  # type: ignore[union-attr]
            tuple(float(v) for v in data["survival"]),  # type: ignore[union-attr]
            int(data["n"]),  # type: ignore[call-overload]
            float(data["tail_scale"]),  # type: ignore[arg-type]
            float(data["events_per_host_day"]),  # type: ignore[arg-type]
        )


def holdout_folds(host: str, n: int) -> np.ndarray:
    """Each of a host's n events' fold, 0 to HOLDOUT_SHARE - 1, by chunk; fold 0 is the
    held-out slice. Closed-form models that can refit cheaply score every fold with a fit on
    the others (cross-fitting), so their calibration sees the whole range, not a fifth."""
    chunks = (n + HOLDOUT_CHUNK - 1) // HOLDOUT_CHUNK
    folds = np.zeros(n, dtype=np.int64)
    for c in range(chunks):
        digest = hashlib.sha256(f"{host}\n{c}".encode("utf-8", "surrogatepass")).digest()
        folds[c * HOLDOUT_CHUNK : (c + 1) * HOLDOUT_CHUNK] = digest[0] % HOLDOUT_SHARE
    return folds


def holdout_mask(host: str, n: int) -> np.ndarray:
    """Which of a host's n events (in stream order) belong to the held-out slice."""
    return holdout_folds(host, n) == 0


def _kept_ranks(n: int) -> list[int]:
    ranks = list(range(min(n, _EXACT_RANKS)))
    r = float(_EXACT_RANKS)
    while int(r) < n:
        ranks.append(int(r))
        r *= _RANK_GROWTH
    if ranks[-1] != n - 1:
        ranks.append(n - 1)
    return sorted(set(ranks))


def fit_calibration(held_out_surprise: np.ndarray, events_per_host_day: float) -> Calibration:
    """The calibration from the surprises of held-out normal events (+inf ones are dropped:
    a held-out event the model calls impossible is kept out of the normal reference, and the
    detector still flags its like as impossible)."""
    s = np.asarray(held_out_surprise, dtype=np.float64)
    s = np.sort(s[np.isfinite(s)])[::-1]
    n = len(s)
    if n == 0:
        return Calibration((), (), 0, _MIN_TAIL_SCALE, events_per_host_day)
    ranks = _kept_ranks(n)
    values = tuple(float(s[r]) for r in ranks)
    survival = tuple((r + 1) / (n + 1) for r in ranks)
    k = max(1, min(_TAIL_POINTS, int(n * _TAIL_SHARE)))
    excess = s[:k] - s[k] if n > k else s[:k] - s[-1]
    scale = max(_MIN_TAIL_SCALE, float(excess.mean()) if len(excess) else 0.0)
    return Calibration(values, survival, n, scale, events_per_host_day)


def threshold_for_budget(
    calibration: Calibration, budget_per_host_day: float, models_sharing: int = 1
) -> float:
    """The p-value at or below which an event is flagged, from the false-alarm budget.

    Each flag may open an incident, so the expected false incidents per host-day of one model
    are at most (flag probability) × (events per host-day); models that run together share
    the budget equally."""
    rate = max(calibration.events_per_host_day, 1.0)
    return budget_per_host_day / (rate * max(1, models_sharing))


def least_surprise(threshold: float) -> float:
    """The smallest surprise (nats) a verdict whose surprise is itself -log of a chance
    probability (a Poisson tail, a run of coincidences) may flag at: the model's own odds must
    be at least as long as the threshold's. Real data is burstier than those models, so the
    calibrated p-value is the rule; this floor only keeps a thin held-out sample (a short
    training range, a slice where the verdict almost never fires) from extrapolating ordinary
    fluctuations into alarms."""
    return -math.log(max(threshold, 1e-300))


def grade(p_values: np.ndarray, threshold: float) -> np.ndarray:
    """A 0–100 grade: 50 at the flagging threshold, 100 at its square or for the impossible,
    falling towards 0 as the event becomes ordinary; the same scale for every model."""
    log_p = np.log10(np.maximum(np.asarray(p_values, dtype=np.float64), 10.0**_MIN_LOG10_P))
    log_t = math.log10(min(max(threshold, 1e-300), 0.5))
    g = 50.0 * log_p / log_t
    return np.clip(np.round(g, 1), 0.0, 100.0)


def events_per_host_day(spans: Sequence[tuple[int, int, int]]) -> float:
    """Events per host per day over (first ms, last ms, events) per host.

    A host counts as observed for at least an hour: streams of a few seconds (one HDFS block,
    a short test) would otherwise claim millions of events a day."""
    events = sum(n for _, _, n in spans)
    days = sum(max(last - first, 3_600_000) for first, last, _ in spans) / 86_400_000
    return events / days if days > 0 else float(events)


def budget_report(
    calibration: Calibration,
    budget_per_host_day: float,
    models_sharing: int = 1,
    *,
    verdicts: int = 1,
) -> dict[str, object]:
    """What the budget's threshold flags on the held-out slice it was calibrated on, for the
    manifest: the share flagged there (conformal p-values put it at or below the threshold by
    construction) and the false flags per host-day that share means at the training range's
    rate. Live data is measured against the same budget by the quietness metrics. `verdicts`:
    how many calibrated verdicts split the model's share (this calibration is one of them)."""
    threshold = threshold_for_budget(calibration, budget_per_host_day, models_sharing * verdicts)
    n = calibration.n
    # The held-out event of rank r (0 = most surprising) has p-value (r + 1) / (n + 1).
    flagged = min(n, max(0, math.floor(threshold * (n + 1) + 1e-9))) if n else 0
    share = flagged / n if n else 0.0
    return {
        "alert_budget": budget_per_host_day,
        "models_sharing": models_sharing,
        **({"verdicts_sharing": verdicts} if verdicts > 1 else {}),
        "threshold": float(f"{threshold:.6g}"),
        "held_out_events": n,
        "held_out_flagged": flagged,
        "held_out_flagged_per_10k": round(share * 10_000, 4),
        "false_flags_per_host_day": round(share * calibration.events_per_host_day, 6),
    }
