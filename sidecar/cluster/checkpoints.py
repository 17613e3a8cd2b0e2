"""Per-host cursors and context tails in the state index, one document per host."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from sidecar.errors import CheckpointError
from sidecar.types import Cursor, HostState, LogEvent

__all__ = ["ClusterCheckpoints", "state_document", "state_from_document", "state_id"]


def state_id(host: str) -> str:
    return hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()


def state_document(state: HostState, now_ms: int) -> dict[str, object]:
    return {
        "host": state.host,
        "cursor_timestamp_ms": state.cursor.timestamp_ms if state.cursor else None,
        "cursor_log_uuid": state.cursor.log_uuid if state.cursor else None,
        "updated_at": now_ms,
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
    return HostState(host, cursor, tail)


class ClusterCheckpoints:
    def __init__(self, client: OpenSearch, index: str, page_size: int = 1_000) -> None:
        self._client = client
        self._index = index
        self._page_size = page_size

    def load(self) -> dict[str, HostState]:
        states: dict[str, HostState] = {}
        try:
            # The state index is small; a refresh makes the last save visible to this search.
            self._client.indices.refresh(index=self._index)
            search_after = None
            while True:
                body: dict[str, object] = {
                    "size": self._page_size,
                    "sort": [{"host": "asc"}],
                    "track_total_hits": False,
                }
                if search_after is not None:
                    body["search_after"] = search_after
                response = self._client.search(index=self._index, body=body)
                hits = response["hits"]["hits"]
                for hit in hits:
                    state = state_from_document(hit["_source"])
                    states[state.host] = state
                if len(hits) < self._page_size:
                    return states
                search_after = hits[-1]["sort"]
        except NotFoundError:
            return states
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(f"cannot load host state from {self._index}: {exc}") from exc

    def save(self, states: Sequence[HostState]) -> None:
        if not states:
            return
        now_ms = int(time.time() * 1000)
        lines = []
        for state in states:
            lines.append(
                orjson.dumps({"index": {"_index": self._index, "_id": state_id(state.host)}})
            )
            lines.append(orjson.dumps(state_document(state, now_ms)))
        try:
            response = self._client.bulk(body=b"\n".join(lines) + b"\n")
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(f"cannot save host state to {self._index}: {exc}") from exc
        failed = [i["index"] for i in response["items"] if i["index"].get("status", 500) >= 300]
        if failed:
            raise CheckpointError(f"{len(failed)} host state(s) not saved, e.g. {failed[0]}")
