"""Which incidents still need a notification, and the record that one was sent, in the cluster.

The incident index is the outbox: an incident document is written before the cycle's
checkpoint (sidecar/pipeline/cycle.py), so whatever a crash interrupts, the incident is there
to be found. A notification record (one document per incident in the notification index, its
id the incident id) is written only after the receiver accepted it, with `op_type=create`: a
second replica or a retry that finds it already there has nothing to do. Incidents are not
marked in place because every revision of an incident rewrites its document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError

__all__ = ["ClusterNotices"]

_PAGE = 200


class ClusterNotices:
    def __init__(self, client: OpenSearch, incident_index: str, notify_index: str) -> None:
        self.client = client
        self.incident_index = incident_index
        self.notify_index = notify_index

    def pending(
        self, since_ms: int, min_grade: float, owns: Callable[[str], bool] = lambda _h: True
    ) -> Iterator[dict]:
        """Incidents updated at or after `since_ms` with a grade of at least `min_grade`, of
        hosts `owns` accepts, not yet notified; oldest update first."""
        body: dict = {
            "size": _PAGE,
            "query": {
                "bool": {
                    "filter": [
                        {"range": {"updated_at": {"gte": since_ms}}},
                        {"range": {"grade": {"gte": min_grade}}},
                    ]
                }
            },
            "sort": [{"updated_at": "asc"}, {"incident_id": "asc"}],
        }
        while True:
            try:
                hits = self.client.search(index=self.incident_index, body=body)["hits"]["hits"]
            except NotFoundError:
                return
            if not hits:
                return
            mine = [h["_source"] for h in hits if owns(str(h["_source"].get("host")))]
            done = self._notified([str(doc["incident_id"]) for doc in mine])
            yield from (doc for doc in mine if str(doc["incident_id"]) not in done)
            if len(hits) < _PAGE:
                return
            body["search_after"] = hits[-1]["sort"]

    def _notified(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        try:
            found = self.client.mget(index=self.notify_index, body={"ids": ids}, _source=False)
        except NotFoundError:
            return set()
        return {d["_id"] for d in found["docs"] if d.get("found")}

    def mark(self, incident: dict, record: dict) -> bool:
        """Records that `incident` was notified; False if another sidecar already had."""
        try:
            self.client.index(
                index=self.notify_index,
                id=str(incident["incident_id"]),
                body=record,
                op_type="create",
                refresh="wait_for",
            )
        except ConflictError:
            return False
        return True
