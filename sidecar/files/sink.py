"""Anomaly documents to a JSON-lines file, and per-host state kept in memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import orjson

from sidecar.ports import WriteResult
from sidecar.types import HostState

__all__ = ["JsonlSink", "JsonlIncidentSink", "MemoryCheckpoints"]


class JsonlSink:
    """Writes each document once per id, as one line with `_id` beside its fields.

    Same documents as the cluster mode indexes; `log_uuid` is a top-level field of each.
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._seen: set[str] = set()

    @classmethod
    def open(cls, path: Path) -> JsonlSink:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("wb"))

    def write(self, documents: Sequence[tuple[str, dict[str, object]]]) -> WriteResult:
        created = 0
        for doc_id, doc in documents:
            if doc_id in self._seen:
                continue
            self._seen.add(doc_id)
            self._handle.write(orjson.dumps({"_id": doc_id, **doc}) + b"\n")
            created += 1
        self._handle.flush()
        return WriteResult(created=created, already_present=len(documents) - created)

    def close(self) -> None:
        self._handle.close()


class JsonlIncidentSink:
    """Incident documents to a JSON-lines file: the furthest revision of each, written on close.

    An incident grows while a run goes on; a file cannot rewrite a line, so the documents are
    held (one per incident) and written once, in the order incidents began."""

    def __init__(self, handle: BinaryIO | None) -> None:
        # None: incidents are formed (they decide which anomalies are written) but not kept.
        self._handle = handle
        self._documents: dict[str, dict[str, object]] = {}

    @classmethod
    def open(cls, path: Path) -> JsonlIncidentSink:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("wb"))

    def write(self, documents: Sequence[tuple[str, dict[str, object]]]) -> WriteResult:
        created = 0
        for doc_id, doc in documents:
            held = self._documents.get(doc_id)
            if held is None or int(held["revision"]) < int(doc["revision"]):  # type: ignore[call-overload]
                created += 1
                self._documents[doc_id] = doc
        return WriteResult(created=created, already_present=len(documents) - created)

    def close(self) -> None:
        if self._handle is None:
            return
        ordered = sorted(
            self._documents.items(), key=lambda kv: (kv[1]["first_event_at"], kv[1]["host"])
        )
        for doc_id, doc in ordered:
            self._handle.write(orjson.dumps({"_id": doc_id, **doc}) + b"\n")
        self._handle.close()


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.states: dict[str, HostState] = {}

    def load(self) -> dict[str, HostState]:
        return dict(self.states)

    def save(self, states: Sequence[HostState]) -> int:
        for state in states:
            self.states[state.host] = state
        return 0
