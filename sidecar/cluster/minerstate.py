"""The template miner's state as one document of the state index, shared by every replica.

Saves are conditional on the version last read (optimistic concurrency, as for host states):
a replica that finds another's newer state reads it, merges it into its own (the miner merges
by template id, keeping every id of both) and tries again, so no replica's templates are lost.
"""

from __future__ import annotations

import time

import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, ConnectionTimeout, NotFoundError, TransportError
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from sidecar.errors import CheckpointError
from sidecar.templates.drain import TemplateMiner

__all__ = ["ClusterMinerStore", "MINER_DOCUMENT_ID", "MINER_FIELD"]

log = structlog.get_logger("sidecar.cluster.minerstate")

# Host state documents have sha256 ids, so this one cannot clash with a host's.
MINER_DOCUMENT_ID = "template-miner"
MINER_FIELD = "template_miner"  # mapped `enabled: false`: stored, never indexed
_MAX_CONFLICT_ROUNDS = 5

# (seq_no, primary_term) of the document as last read or written; None: not there.
_Version = tuple[int, int] | None


class ClusterMinerStore:
    def __init__(self, client: OpenSearch, index: str) -> None:
        self._client = client
        self._index = index
        self._version: _Version = None

    def load(self) -> TemplateMiner | None:
        miner, self._version = self._read()
        return miner

    def save(self, miner: TemplateMiner) -> None:
        for _round in range(_MAX_CONFLICT_ROUNDS):
            try:
                self._write(miner)
                return
            except ConflictError:
                theirs, self._version = self._read()
                if theirs is not None:
                    miner.merge(theirs)
                log.info("template_state_merged_from_other_writer", clusters=len(miner.clusters))
        raise CheckpointError(
            f"the template miner state in {self._index} kept changing under this sidecar; not saved"
        )

    def _read(self) -> tuple[TemplateMiner | None, _Version]:
        try:
            doc = self._client.get(index=self._index, id=MINER_DOCUMENT_ID)
        except NotFoundError:
            return None, None  # no such document, or no state index yet
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(
                f"cannot read the template miner state from {self._index}: {exc}"
            ) from exc
        try:
            miner = TemplateMiner.from_state(doc["_source"][MINER_FIELD])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"the template miner state in {self._index} is unreadable: {exc!r}"
            ) from exc
        return miner, (int(doc["_seq_no"]), int(doc["_primary_term"]))

    def _write(self, miner: TemplateMiner) -> None:
        body = {"updated_at": int(time.time() * 1000), MINER_FIELD: miner.to_state()}
        try:
            if self._version is None:
                # Nobody has saved a state yet, as far as this sidecar knows.
                response = self._client.create(index=self._index, id=MINER_DOCUMENT_ID, body=body)
            else:
                seq_no, primary_term = self._version
                response = self._client.index(
                    index=self._index,
                    id=MINER_DOCUMENT_ID,
                    body=body,
                    params={"if_seq_no": seq_no, "if_primary_term": primary_term},
                )
        except ConflictError:
            raise
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise CheckpointError(
                f"cannot save the template miner state to {self._index}: {exc}"
            ) from exc
        self._version = (int(response["_seq_no"]), int(response["_primary_term"]))
