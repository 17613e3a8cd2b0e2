"""Log keys: (EVENTID, SEVERITY) pairs mapped to dense integer ids fitted at training time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from sidecar.types import LogEvent

__all__ = ["PAD", "UNKNOWN", "RESERVED", "Vocabulary", "key_label"]

PAD = 0  # left padding for a host's first events (fewer than h before them)
UNKNOWN = 1  # a key never seen in training: anomalous by definition
RESERVED = 2


def key_label(event_id: str, severity: str) -> str:
    return f"{event_id}/{severity}" if severity else event_id


class Vocabulary:
    """Immutable key <-> id mapping. Ids 0 and 1 are reserved for padding and unknown keys."""

    __slots__ = ("_keys", "_ids", "_counts", "_labels")

    def __init__(self, keys: Sequence[tuple[str, str]], counts: Sequence[int] | None = None):
        self._keys: tuple[tuple[str, str], ...] = tuple((str(e), str(s)) for e, s in keys)
        if len(set(self._keys)) != len(self._keys):
            raise ValueError("vocabulary keys must be unique")
        self._ids = {key: RESERVED + i for i, key in enumerate(self._keys)}
        self._counts = tuple(counts) if counts is not None else (0,) * len(self._keys)
        # Labels by id, computed once: annotation looks them up for every expected key.
        self._labels = ("<pad>", "<unknown>", *(key_label(*k) for k in self._keys))

    @classmethod
    def fit(cls, events: Iterable[LogEvent]) -> Vocabulary:
        counts = Counter((e.event_id, e.severity) for e in events)
        # Most frequent first, ties by name: deterministic for the same data.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([k for k, _ in ordered], [c for _, c in ordered])

    @property
    def size(self) -> int:
        """Number of id slots, reserved ones included (the model's output width)."""
        return RESERVED + len(self._keys)

    @property
    def known(self) -> int:
        return len(self._keys)

    def id_of(self, event_id: str, severity: str) -> int:
        return self._ids.get((event_id, severity), UNKNOWN)

    def encode(self, events: Sequence[LogEvent]) -> np.ndarray:
        ids = self._ids
        return np.fromiter(
            (ids.get((e.event_id, e.severity), UNKNOWN) for e in events),
            dtype=np.int64,
            count=len(events),
        )

    def key_of(self, key_id: int) -> tuple[str, str] | None:
        if RESERVED <= key_id < RESERVED + len(self._keys):
            return self._keys[key_id - RESERVED]
        return None

    def label_of(self, key_id: int) -> str:
        return self._labels[key_id] if 0 <= key_id < len(self._labels) else "<unknown>"

    def to_json(self) -> dict[str, object]:
        return {
            "reserved": {"pad": PAD, "unknown": UNKNOWN},
            "keys": [
                {"event_id": e, "severity": s, "count": c}
                for (e, s), c in zip(self._keys, self._counts, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Vocabulary:
        entries = data["keys"]
        assert isinstance(entries, list)
        return cls(
            [(str(k["event_id"]), str(k["severity"])) for k in entries],
            [int(k.get("count", 0)) for k in entries],
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._keys == other._keys

    def __hash__(self) -> int:
        return hash(self._keys)
