"""Anomaly documents to the anomaly index with the bulk API, every item checked.

`create` with a deterministic id: a redo finds the document already there (409) and leaves it
alone, so analyst edits on an anomaly survive a replayed range.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import orjson
import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from sidecar.errors import WriteError
from sidecar.ports import WriteResult

__all__ = ["ClusterSink", "bulk_create_body"]

log = structlog.get_logger("sidecar.cluster.writer")

_RETRYABLE = {429, 502, 503, 504}


def bulk_create_body(index: str, documents: Sequence[tuple[str, dict[str, object]]]) -> bytes:
    lines = []
    for doc_id, doc in documents:
        lines.append(orjson.dumps({"create": {"_index": index, "_id": doc_id}}))
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


class ClusterSink:
    def __init__(
        self,
        client: OpenSearch,
        index: str,
        chunk_docs: int = 1_000,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        refresh: str | None = None,
    ) -> None:
        self._client = client
        self._index = index
        self._chunk_docs = chunk_docs
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._refresh = refresh

    def write(self, documents: Sequence[tuple[str, dict[str, object]]]) -> WriteResult:
        created = present = 0
        for start in range(0, len(documents), self._chunk_docs):
            c, p = self._write_chunk(documents[start : start + self._chunk_docs])
            created += c
            present += p
        return WriteResult(created=created, already_present=present)

    def _write_chunk(self, chunk: Sequence[tuple[str, dict[str, object]]]) -> tuple[int, int]:
        created = present = 0
        pending = list(chunk)
        for attempt in range(1, self._max_attempts + 1):
            try:
                params = {"refresh": self._refresh} if self._refresh else None
                response = self._client.bulk(
                    body=bulk_create_body(self._index, pending), params=params
                )
            except (OSConnectionError, ConnectionTimeout) as exc:
                if attempt == self._max_attempts:
                    raise WriteError(f"bulk write failed, cluster unreachable: {exc}") from exc
                self._sleep(attempt)
                continue
            except TransportError as exc:
                if exc.status_code in _RETRYABLE and attempt < self._max_attempts:
                    self._sleep(attempt)
                    continue
                raise WriteError(f"bulk write rejected ({exc.status_code}): {exc.error}") from exc
            retry, failures = [], []
            for item, doc in zip(response["items"], pending, strict=True):
                result = item.get("create") or {}
                status = int(result.get("status", 0))
                if status in (200, 201):
                    created += 1
                elif status == 409:
                    present += 1
                elif status in _RETRYABLE:
                    retry.append(doc)
                else:
                    failures.append({"_id": doc[0], "status": status, "error": result.get("error")})
            if failures:
                raise WriteError(
                    f"{len(failures)} anomaly document(s) rejected by the cluster, e.g. "
                    f"{failures[0]}",
                    failures,
                )
            if not retry:
                return created, present
            if attempt == self._max_attempts:
                raise WriteError(f"{len(retry)} document(s) still throttled after {attempt} tries")
            log.warning("bulk_items_throttled", count=len(retry), attempt=attempt)
            pending = retry
            self._sleep(attempt)
        return created, present

    def _sleep(self, attempt: int) -> None:
        # Exponential backoff with full jitter, so several sidecars do not retry in step.
        time.sleep(random.uniform(0, self._backoff_s * 2 ** (attempt - 1)))
