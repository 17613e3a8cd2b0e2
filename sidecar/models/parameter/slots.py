"""Numbers in a MESSAGE, by position: the raw material of DeepLog's parameter model.

DeepLog (Du et al., CCS'17) models the parameter values of each log key. Here a parameter
position ("slot") is named by the word before the number and how many numbers followed that
word before it: in "took 120 ms" the slot is `took#0`; in "uid=0 euid=0" the slots are `uid#0`
and `euid#0`. Naming slots by their anchor word rather than by the number's ordinal keeps a
slot in place when an earlier, optional number (a numeric user name, say) comes and goes.

Identifiers that contain digits but are not quantities (uuids, block ids, addresses, hex ids,
dates and times of day) are masked first, as drain's masks do (sidecar/templates/drain.py),
so they are never read as values. Version strings (6.1.7601) and names with digits (host-003,
ssh2) are not numbers either. Only the first CONTEXT_MESSAGE_CHARS are read, so an event read
back from a host's saved tail yields the same values as when it was first read.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from sidecar.types import CONTEXT_MESSAGE_CHARS

__all__ = [
    "number_slots",
    "choose_slots",
    "slot_source",
    "is_counter",
    "signed_log",
    "log_seconds",
]

_IDENTIFIERS = "|".join(
    [
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        r"blk_-?\d+",
        r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?",  # IPv4 with an optional port
        r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b",  # IPv6
        r"\b0[xX][0-9a-fA-F]+\b",
        r"\b[0-9a-fA-F]{16,}\b",  # long hex ids
        # Dates, optionally with a time: a date is a point in time, not a quantity.
        r"\b\d{1,4}[-/]\d{1,2}[-/]\d{1,4}(?:[ T:]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?",
        r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b",  # times of day
    ]
)
# A stand-alone number: not part of a word, a name (host-003) or a version (6.1.7601).
_NUMBER = r"(?<![\w.\-])-?\d+(?:\.\d+)?(?!\.?\w|-\w)"
# One pass: at each position an identifier is tried first, so its digits are never a number
# and its letters never an anchor word.
_TOKENS = re.compile(
    rf"(?P<identifier>{_IDENTIFIERS})|(?P<word>[A-Za-z][A-Za-z_]*)|(?P<number>{_NUMBER})"
)
START = "^"  # the anchor of numbers before any word


def number_slots(message: str | None) -> list[tuple[str, float]]:
    """(slot, value) of every stand-alone number in the message, in order."""
    if not message:
        return []
    anchor = START
    seen: Counter[str] = Counter()
    slots: list[tuple[str, float]] = []
    for match in _TOKENS.finditer(message[:CONTEXT_MESSAGE_CHARS]):
        kind = match.lastgroup
        if kind == "identifier":
            continue
        if kind == "word":
            anchor = match.group().lower()
            continue
        value = float(match.group())
        if not math.isfinite(value):
            continue  # a 400-digit number is an identifier, whatever it looks like
        slots.append((f"{anchor}#{seen[anchor]}", value))
        seen[anchor] += 1
    return slots


def choose_slots(
    parsed: Iterable[Sequence[tuple[str, float]]], min_share: float, limit: int
) -> list[tuple[str, float]]:
    """The slots numeric in at least `min_share` of the messages (each given as its
    `number_slots`), most common first (ties: the earlier in the message), at most `limit`;
    each with its share."""
    total = 0
    present: Counter[str] = Counter()
    first_place: dict[str, int] = {}
    for slots in parsed:
        total += 1
        for place, (slot, _) in enumerate(slots):
            first_place.setdefault(slot, place)
        present.update({slot for slot, _ in slots})
    if total == 0:
        return []
    ranked = sorted(present.items(), key=lambda kv: (-kv[1], first_place[kv[0]], kv[0]))
    return [(slot, n / total) for slot, n in ranked if n / total >= min_share][:limit]


def slot_source(slot: str) -> str:
    """Where a slot's number comes from, for an analyst: "number after 'took'"."""
    anchor, _, index = slot.rpartition("#")
    ordinal = "" if index == "0" else f" {int(index) + 1}"
    if anchor == START:
        return f"number{ordinal} at the start of the message"
    return f"number{ordinal} after '{anchor}'"


def is_counter(runs: Iterable[Sequence[float]], min_pairs: int = 10, share: float = 0.95) -> bool:
    """Whether a slot's values only grow within each run (a host's values of one key): a
    sequence number or an embedded clock. Such values leave any training range by design, so
    the model does not use them."""
    rising = pairs = 0
    for values in runs:
        if len(values) < 2:
            continue
        steps = np.diff(np.asarray(values, dtype=np.float64))
        rising += int((steps > 0).sum())
        pairs += len(steps)
    return pairs >= min_pairs and rising >= share * pairs


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x)·log(1 + |x|): sizes and durations span orders of magnitude, and their logs
    are far closer to the Gaussian errors the model assumes."""
    return np.sign(values) * np.log1p(np.abs(values))


def log_seconds(gaps_ms: np.ndarray) -> np.ndarray:
    """log(1 + seconds): sub-second jitter counts for little, minutes against hours for much."""
    return np.log1p(np.maximum(gaps_ms, 0) / 1000.0)
