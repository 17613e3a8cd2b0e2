"""Per-host cursors and context tails in the state index, one document per host.

Saves are conditional on the version that was loaded (optimistic concurrency): when two
sidecars work on the same hosts, the one that finds a host already moved at least as far keeps
the other's state, so a cursor never moves backwards and no work is double-counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import orjson
import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from sidecar.cluster.minerstate import MINER_DOCUMENT_ID
from sidecar.errors import CheckpointError
from sidecar.types import Cursor, HostState, LogEvent

__all__ = ["ClusterCheckpoints", "state_document", "state_from_document", "state_id"]

log = structlog.get_logger("sidecar.cluster.checkpoints")

# (seq_no, primary_term) of a state document as last seen.
_Version = tuple[int, int]
_MAX_CONFLICT_ROUNDS = 5


def state_id(host: str) -> str:
    return hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()


def state_document(state: HostState, now_ms: int) -> dict[str, object]:
    return {
        "host": state.host,
        "cursor_timestamp_ms": state.cursor.timestamp_ms if state.cursor else None,
        "cursor_log_uuid": state.cursor.log_uuid if state.cursor else None,
        "updated_at": now_ms,
        "read_through_ms": state.read_through_ms,
        "late_counts": [{"b": b, "n": n} for b, n in state.counts],
        "tail": [
            {
                "t": e.timestamp_ms,
                "u": e.log_uuid,
                "e": e.event_id,
                "s": e.severity,
                "i": e.index,
                "m": e.message,
            }
            for e in state.tail
        ],
        "incident": state.incident,
    }


def state_from_document(doc: dict) -> HostState:
    host = doc["host"]
    cursor = None
    if doc.get("cursor_timestamp_ms") is not None and doc.get("cursor_log_uuid") is not None:
        cursor = Cursor(int(doc["cursor_timestamp_ms"]), str(doc["cursor_log_uuid"]))
    tail = tuple(
        LogEvent(host, int(t["t"]), str(t["u"]), str(t["e"]), str(t["s"]), t.get("m"), t.get("i"))
        for t in doc.get("tail") or []
    )
    counts = tuple((int(c["b"]), int(c["n"])) for c in doc.get("late_counts") or [])
    read_through = doc.get("read_through_ms")
    return HostState(
        host,
        cursor,
        tail,
        counts,
        int(read_through) if read_through else None,
        doc.get("incident") or None,
    )


def _at_least_as_far(theirs: Cursor | None, ours: Cursor | None) -> bool:
    return theirs is not None and (ours is None or theirs >= ours)


class ClusterCheckpoints:
    def __init__(self, client: OpenSearch, index: str, page_size: int = 1_000) -> None:
        self._client = client
        self._index = index
        self._page_size = page_size
        self._versions: dict[str, _Version] = {}

    def load(self) -> dict[str, HostState]:
        states: dict[str, HostState] = {}
        self._versions = {}
        try:
            # The state index is small; a refresh makes the last save visible to this search.
            self._client.indices.refresh(index=self._index)
            search_after = None
            while True:
                body: dict[str, object] = {
                    # Host states only: the index also holds the template miner's state.
                    # (By id: a host longer than the keyword's ignore_above is not indexed.)
                    "query": {"bool": {"must_not": {"ids": {"values": [MINER_DOCUMENT_ID]}}}},
                    "size": self._page_size,
                    "sort": [{"host": "asc"}],
                    "track_total_hits": False,
                    "seq_no_primary_term": True,
                }
                if search_after is not None:
                    body["search_after"] = search_after
                response = self._client.search(index=self._index, body=body)
                hits = response["hits"]["hits"]
                for hit in hits:
                    state = state_from_document(hit["_source"])
                    states[state.host] = state
                    self._versions[state.host] = (hit["_seq_no"], hit["_primary_term"])
                if len(hits) < self._page_size:
                    return states
                search_after = hits[-1]["sort"]
        except NotFoundError:
            return states
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(f"cannot load host state from {self._index}: {exc}") from exc

    def save(self, states: Sequence[HostState]) -> int:
        """Conditional writes; returns how many hosts another writer had moved at least as far."""
        pending = {state.host: state for state in states}
        kept_theirs = 0
        for _round in range(_MAX_CONFLICT_ROUNDS):
            if not pending:
                return kept_theirs
            conflicts = self._write(list(pending.values()))
            pending = {host: pending[host] for host in conflicts}
            if not pending:
                return kept_theirs
            for host, (theirs, version) in self._current(list(pending)).items():
                if _at_least_as_far(theirs, pending[host].cursor):
                    log.info("state_kept_from_other_writer", host=host)
                    kept_theirs += 1
                    del pending[host]
                if version is None:
                    self._versions.pop(host, None)
                else:
                    self._versions[host] = version
        raise CheckpointError(
            f"{len(pending)} host state(s) kept changing under this sidecar; not saved"
        )

    def _write(self, states: list[HostState]) -> list[str]:
        """One bulk of conditional writes; returns the hosts that hit a version conflict."""
        now_ms = int(time.time() * 1000)
        lines = []
        for state in states:
            action: dict[str, object] = {"_index": self._index, "_id": state_id(state.host)}
            version = self._versions.get(state.host)
            if version is None:
                op = "create"  # nobody has saved this host yet, as far as this sidecar knows
            else:
                op = "index"
                action["if_seq_no"], action["if_primary_term"] = version
            lines.append(orjson.dumps({op: action}))
            lines.append(orjson.dumps(state_document(state, now_ms)))
        try:
            response = self._client.bulk(body=b"\n".join(lines) + b"\n")
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(f"cannot save host state to {self._index}: {exc}") from exc
        conflicts, failed = [], []
        for state, item in zip(states, response["items"], strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if status == 409:
                conflicts.append(state.host)
            elif status >= 300:
                failed.append(result)
            else:
                self._versions[state.host] = (result["_seq_no"], result["_primary_term"])
        if failed:
            raise CheckpointError(f"{len(failed)} host state(s) not saved, e.g. {failed[0]}")
        return conflicts

    def _current(self, hosts: list[str]) -> dict[str, tuple[Cursor | None, _Version | None]]:
        try:
            response = self._client.mget(
                index=self._index, body={"ids": [state_id(h) for h in hosts]}
            )
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(f"cannot read host state from {self._index}: {exc}") from exc
        current: dict[str, tuple[Cursor | None, _Version | None]] = {}
        for host, doc in zip(hosts, response["docs"], strict=True):
            if not doc.get("found"):
                current[host] = (None, None)
                continue
            state = state_from_document(doc["_source"])
            current[host] = (state.cursor, (doc["_seq_no"], doc["_primary_term"]))
        return current
