"""The model store in the cluster: pods keep nothing on disk, every replica scores with the
same version, and a rollback is one pointer update.

One index, four kinds of document (see mappings/models.template.json):
  version    v|<model>|<version>          the manifest and the list of its blobs
  chunk      c|<model>|<version>|<blob>|<n> a slice of a blob, base64 in a `binary` field
  pointer    p|<model>                    the active version (updated with if_seq_no)
  activation a|<model>|<at>|<version>     one move of the pointer, for history and rollback
Chunks are written before their version document, and the version document is created with
op_type=create: a version that can be found is complete and never changes.
"""

from __future__ import annotations

import base64
import hashlib

import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError

from sidecar.errors import ModelError
from sidecar.ports import Activation
from sidecar.types import now_iso

__all__ = ["ClusterModelStore", "CHUNK_BYTES"]

log = structlog.get_logger("sidecar.cluster.modelstore")

# Raw bytes per chunk: well under http.max_content_length and a comfortable request size for
# a small cluster; a DeepLog model is a few hundred kilobytes.
CHUNK_BYTES = 1 << 20
_POINTER_ROUNDS = 5


def _id(*parts: str) -> str:
    return "|".join(parts)


class ClusterModelStore:
    def __init__(self, client: OpenSearch, index: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._client = client
        self._index = index
        self._chunk = chunk_bytes

    def __repr__(self) -> str:
        return f"cluster index {self._index}"

    # -- versions --------------------------------------------------------------------------

    def put(
        self, name: str, version: str, manifest: dict[str, object], blobs: dict[str, bytes]
    ) -> None:
        described = []
        for blob, data in blobs.items():
            chunks = max(1, -(-len(data) // self._chunk))
            for n in range(chunks):
                part = data[n * self._chunk : (n + 1) * self._chunk]
                self._client.index(
                    index=self._index,
                    id=_id("c", name, version, blob, str(n)),
                    body={
                        "kind": "chunk",
                        "model": name,
                        "version": version,
                        "blob": blob,
                        "seq": n,
                        "data": base64.b64encode(part).decode("ascii"),
                    },
                )
            described.append(
                {
                    "name": blob,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "chunks": chunks,
                }
            )
        try:
            self._client.create(
                index=self._index,
                id=_id("v", name, version),
                body={
                    "kind": "version",
                    "model": name,
                    "version": version,
                    "created_at": manifest.get("created_at"),
                    "manifest": manifest,
                    "blobs": described,
                    "notes": {},
                },
                refresh="wait_for",
            )
        except ConflictError:
            raise ModelError(f"model {name} version {version} already exists in {self}") from None

    def _version_doc(self, name: str, version: str) -> dict:
        try:
            return self._client.get(index=self._index, id=_id("v", name, version))["_source"]
        except NotFoundError:
            raise ModelError(f"model {name} has no version {version} in {self}") from None

    def get(self, name: str, version: str) -> tuple[dict[str, object], dict[str, bytes]]:
        doc = self._version_doc(name, version)
        blobs: dict[str, bytes] = {}
        for blob in doc.get("blobs") or []:
            ids = [_id("c", name, version, blob["name"], str(n)) for n in range(blob["chunks"])]
            found = self._client.mget(index=self._index, body={"ids": ids})["docs"]
            missing = [d["_id"] for d in found if not d.get("found")]
            if missing:
                raise ModelError(f"model {name} {version}: chunks missing in {self}: {missing[:3]}")
            data = b"".join(base64.b64decode(d["_source"]["data"]) for d in found)
            if hashlib.sha256(data).hexdigest() != blob["sha256"]:
                raise ModelError(f"model {name} {version}: blob {blob['name']} is corrupt")
            blobs[blob["name"]] = data
        return doc["manifest"], blobs

    def _search(self, kind: str, name: str, sort: str) -> list[dict]:
        hits: list[dict] = []
        search_after = None
        while True:
            body: dict[str, object] = {
                "size": 500,
                "query": {
                    "bool": {"filter": [{"term": {"kind": kind}}, {"term": {"model": name}}]}
                },
                "sort": [{sort: "asc"}, {"version": "asc"}],
            }
            if search_after is not None:
                body["search_after"] = search_after
            try:
                page = self._client.search(index=self._index, body=body)["hits"]["hits"]
            except NotFoundError:
                return []
            hits.extend(page)
            if len(page) < 500:
                return hits
            search_after = page[-1]["sort"]

    def manifests(self, name: str) -> list[dict[str, object]]:
        return [hit["_source"]["manifest"] for hit in self._search("version", name, "created_at")]

    # -- the active pointer ------------------------------------------------------------------

    def _pointer(self, name: str) -> tuple[str | None, int | None, int | None]:
        try:
            doc = self._client.get(index=self._index, id=_id("p", name))
        except NotFoundError:
            return None, None, None
        return doc["_source"].get("version"), doc["_seq_no"], doc["_primary_term"]

    def active(self, name: str) -> str | None:
        return self._pointer(name)[0]

    def activate(self, name: str, version: str, reason: str) -> Activation:
        self._version_doc(name, version)  # raises when there is no such version
        for _ in range(_POINTER_ROUNDS):
            previous, seq_no, term = self._pointer(name)
            activation = Activation(version, previous, reason, now_iso())
            body = {"kind": "pointer", "model": name, "version": version, "at": activation.at}
            try:
                if seq_no is None:
                    self._client.create(
                        index=self._index, id=_id("p", name), body=body, refresh="wait_for"
                    )
                else:
                    self._client.index(
                        index=self._index,
                        id=_id("p", name),
                        body=body,
                        if_seq_no=seq_no,
                        if_primary_term=term,
                        refresh="wait_for",
                    )
            except ConflictError:
                log.info("model_pointer_conflict", model=name, version=version)
                continue  # another replica moved it: record against what it moved it to
            self._client.index(
                index=self._index,
                id=_id("a", name, activation.at, version),
                body={"kind": "activation", "model": name, **activation.to_json()},
                refresh="wait_for",
            )
            return activation
        raise ModelError(f"could not move the active {name} pointer: too many concurrent moves")

    def history(self, name: str) -> list[Activation]:
        return [
            Activation.from_json(hit["_source"]) for hit in self._search("activation", name, "at")
        ]

    # -- notes -------------------------------------------------------------------------------

    def annotate(self, name: str, version: str, notes: dict[str, object]) -> None:
        merged = {**self.notes(name, version), **notes}
        self._client.update(
            index=self._index,
            id=_id("v", name, version),
            body={"doc": {"notes": merged}},
            refresh="wait_for",
        )

    def notes(self, name: str, version: str) -> dict[str, object]:
        return dict(self._version_doc(name, version).get("notes") or {})
