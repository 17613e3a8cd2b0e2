"""Anomaly documents to the anomaly index with the bulk API, every item checked.

`create` with a deterministic id: a redo finds the document already there (409) and leaves it
alone, so analyst edits on an anomaly survive a replayed range. Throttled items (429) and
unavailable nodes are retried with jittered backoff a bounded number of times; items the
cluster refuses for good (400 such as a mapping conflict, 413) go to the dead-letter index
with the reason, so the cursor can move on and nothing is dropped without a trace.

Each document goes to the partition of its own event time (sidecar/cluster/partitions.py);
one older than the retention is counted as expired and not written.
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

from sidecar.cluster.partitions import UNPARTITIONED, Partitioning
from sidecar.errors import WriteError
from sidecar.ports import WriteResult

__all__ = ["ClusterSink", "IncidentSink", "bulk_create_body"]

log = structlog.get_logger("sidecar.cluster.writer")

_RETRYABLE = {429, 502, 503, 504}
# Refusals that are about the document itself: retrying the same bytes cannot succeed.
_PERMANENT = {400, 413}


def bulk_create_body(
    index: str,
    documents: Sequence[tuple[str, dict[str, object]]],
    partitioning: Partitioning = UNPARTITIONED,
) -> bytes:
    lines = []
    for doc_id, doc in documents:
        target = partitioning.index_for(index, event_time(doc))
        lines.append(orjson.dumps({"create": {"_index": target, "_id": doc_id}}))
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


def event_time(doc: dict[str, object]) -> int:
    """The event time a result is filed under: its `@timestamp` (epoch ms)."""
    return int(doc["@timestamp"])  # type: ignore[call-overload]


class ClusterSink:
    def __init__(
        self,
        client: OpenSearch,
        index: str,
        chunk_docs: int = 1_000,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        refresh: str | None = None,
        dead_letter_index: str | None = None,
        partitioning: Partitioning = UNPARTITIONED,
    ) -> None:
        self._client = client
        self._index = index
        self._partitioning = partitioning
        self._dead_letter_index = dead_letter_index
        self._chunk_docs = chunk_docs
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._refresh = refresh

    def write(self, documents: Sequence[tuple[str, dict[str, object]]]) -> WriteResult:
        now_ms = int(time.time() * 1000)
        kept = [d for d in documents if not self._partitioning.expired(event_time(d[1]), now_ms)]
        expired = len(documents) - len(kept)
        expired_ids = frozenset(d[0] for d in documents) - {d[0] for d in kept}
        if expired:
            log.warning(
                "results_past_retention_dropped",
                count=expired,
                index=self._index,
                retention_days=self._partitioning.retention_days,
            )
        documents = kept
        created = present = dead = 0
        for start in range(0, len(documents), self._chunk_docs):
            c, p, d = self._write_chunk(documents[start : start + self._chunk_docs])
            created += c
            present += p
            dead += d
        return WriteResult(
            created=created,
            already_present=present,
            dead_lettered=dead,
            expired=expired,
            expired_ids=expired_ids,
        )

    def _write_chunk(self, chunk: Sequence[tuple[str, dict[str, object]]]) -> tuple[int, int, int]:
        created = present = dead = 0
        pending = list(chunk)
        for attempt in range(1, self._max_attempts + 1):
            try:
                params = {"refresh": self._refresh} if self._refresh else None
                response = self._client.bulk(body=self._body(pending), params=params)
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
            retry, refused, failures = [], [], []
            for item, doc in zip(response["items"], pending, strict=True):
                result = item.get("create") or item.get("index") or {}
                status = int(result.get("status", 0))
                if status in (200, 201):
                    created += 1
                elif status == 409:
                    present += 1
                elif status in _RETRYABLE:
                    retry.append(doc)
                elif status in _PERMANENT and self._dead_letter_index is not None:
                    refused.append((doc, status, result.get("error") or {}))
                else:
                    failures.append({"_id": doc[0], "status": status, "error": result.get("error")})
            if failures:
                raise WriteError(
                    f"{len(failures)} anomaly document(s) rejected by the cluster, e.g. "
                    f"{failures[0]}",
                    failures,
                )
            if refused:
                dead += self._dead_letter(refused)
            if not retry:
                return created, present, dead
            if attempt == self._max_attempts:
                raise WriteError(f"{len(retry)} document(s) still throttled after {attempt} tries")
            log.warning("bulk_items_throttled", count=len(retry), attempt=attempt)
            pending = retry
            self._sleep(attempt)
        return created, present, dead

    def _body(self, pending: Sequence[tuple[str, dict[str, object]]]) -> bytes:
        return bulk_create_body(self._index, pending, self._partitioning)

    def _dead_letter(self, refused: list[tuple[tuple[str, dict[str, object]], int, dict]]) -> int:
        """Keep refused documents with the reason; raises (cursor stays) if that fails too."""
        now_ms = int(time.time() * 1000)
        dead_letter_index = str(self._dead_letter_index)
        lines = []
        for (doc_id, doc), status, error in refused:
            model = doc.get("model")
            entry = {
                "anomaly_id": doc_id,
                "target_index": self._partitioning.index_for(self._index, event_time(doc)),
                "failed_at": now_ms,
                "status": status,
                "error_type": str(error.get("type", "unknown")),
                "error_reason": str(error.get("reason", ""))[:2_000],
                "model": model.get("name") if isinstance(model, dict) else None,
                "host": doc.get("host"),
                "log_uuid": doc.get("log_uuid"),
                "document": doc,
            }
            # `create` with the anomaly's own id: a redo of the same range adds nothing.
            target = self._partitioning.index_for(dead_letter_index, event_time(doc))
            lines.append(orjson.dumps({"create": {"_index": target, "_id": doc_id}}))
            lines.append(orjson.dumps(entry))
        try:
            response = self._client.bulk(body=b"\n".join(lines) + b"\n")
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise WriteError(f"dead-letter write failed: {exc}") from exc
        failed = [
            i["create"]
            for i in response["items"]
            if i["create"].get("status") not in (200, 201, 409)
        ]
        if failed:
            raise WriteError(f"{len(failed)} dead letter(s) not stored, e.g. {failed[0]}")
        first = refused[0]
        log.error(
            "anomalies_dead_lettered",
            count=len(refused),
            index=self._dead_letter_index,
            status=first[1],
            error=str(first[2].get("reason", ""))[:300],
            sample_id=first[0][0],
        )
        return len(refused)

    def _sleep(self, attempt: int) -> None:
        # Exponential backoff with full jitter, so several sidecars do not retry in step.
        time.sleep(random.uniform(0, self._backoff_s * 2 ** (attempt - 1)))


# Room between two revisions of an incident for edits made in between (an analyst's feedback
# through the update API raises the version by one each time).
_REVISION_STEP = 1_000


class IncidentSink(ClusterSink):
    """Incident documents: each write replaces the document, but only with a later revision.

    An incident grows while it stays open, so its document is rewritten; the version is its
    revision (external versioning), so a redo (same revision) or a writer that lags behind
    (older revision) gets a 409 and the furthest version stays."""

    def _body(self, pending: Sequence[tuple[str, dict[str, object]]]) -> bytes:
        lines = []
        for doc_id, doc in pending:
            version = int(doc["revision"]) * _REVISION_STEP  # type: ignore[call-overload]
            action = {
                "_index": self._partitioning.index_for(self._index, event_time(doc)),
                "_id": doc_id,
                "version": version,
                "version_type": "external",
            }
            lines.append(orjson.dumps({"index": action}))
            lines.append(orjson.dumps(doc))
        return b"\n".join(lines) + b"\n"
