"""Taking back verdicts in the cluster (the VerdictStore port): what a re-read after late
documents no longer reaches is deleted, kept anomaly documents follow their rebuilt incident.

Documents an analyst marked (`feedback.verdict`) stay: the mark is a judgement about what was
shown, and the online update or the retraining gate still reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from sidecar.cluster.searching import HITS_PATH, search
from sidecar.errors import SourceUnavailable, WriteError
from sidecar.types import Rebuilt, StoredIncident, Withdrawn

__all__ = ["ClusterVerdicts"]

_PAGE = 1_000
# Hosts per search: one bool clause each, well below the engines' clause limits.
_HOSTS_PER_SEARCH = 200
# Sort orders that page through each index without ties (an anomaly is one per model and
# event; Elasticsearch refuses to sort on _id).
_ANOMALY_ORDER = ("@timestamp", "log_uuid", "model.name")
_INCIDENT_ORDER = ("first_event_at", "incident_id")
_EXISTING = {"ignore_unavailable": "true", "allow_no_indices": "true"}


class ClusterVerdicts:
    def __init__(self, client: OpenSearch, anomaly_search: str, incident_search: str) -> None:
        self._client = client
        self._anomalies = anomaly_search
        self._incidents = incident_search

    def incidents_reaching(self, hosts: Mapping[str, int]) -> dict[str, list[StoredIncident]]:
        found: dict[str, list[StoredIncident]] = {}
        if not hosts:
            return found
        self._refresh(self._incidents)
        names = sorted(hosts)
        for i in range(0, len(names), _HOSTS_PER_SEARCH):
            clauses = [
                _host_range(host, "last_event_at", hosts[host], None)
                for host in names[i : i + _HOSTS_PER_SEARCH]
            ]
            fields = ["incident_id", "host", "first_event_at", "last_event_at", "revision"]
            for hit in self._hits(self._incidents, clauses, fields, _INCIDENT_ORDER):
                doc = hit["_source"]
                found.setdefault(str(doc["host"]), []).append(
                    StoredIncident(
                        str(doc["incident_id"]),
                        int(doc["first_event_at"]),
                        int(doc["last_event_at"]),
                        int(doc["revision"]),
                    )
                )
        return found

    def withdraw(self, rebuilt: Sequence[Rebuilt]) -> Withdrawn:
        if not rebuilt:
            return Withdrawn()
        self._refresh(f"{self._anomalies},{self._incidents}")
        by_host = {r.host: r for r in rebuilt}
        actions: list[bytes] = []
        anomalies = incidents = relinked = marked = 0
        for chunk in _chunks(rebuilt):
            clauses = [_host_range(r.host, "@timestamp", r.from_ms, r.through_ms) for r in chunk]
            fields = ["host", "incident_id", "feedback.verdict"]
            for hit in self._hits(self._anomalies, clauses, fields, _ANOMALY_ORDER):
                doc, where = hit["_source"], {"_index": hit["_index"], "_id": hit["_id"]}
                kept = by_host[str(doc["host"])].anomalies
                if hit["_id"] not in kept:
                    if _marked(doc):
                        marked += 1
                        continue
                    actions.append(orjson.dumps({"delete": where}))
                    anomalies += 1
                elif kept[hit["_id"]] != doc.get("incident_id"):
                    actions.append(orjson.dumps({"update": where}))
                    actions.append(orjson.dumps({"doc": {"incident_id": kept[hit["_id"]]}}))
                    relinked += 1
            clauses = [
                _host_range(r.host, "first_event_at", r.from_ms, r.through_ms) for r in chunk
            ]
            fields = ["host", "feedback.verdict"]
            for hit in self._hits(self._incidents, clauses, fields, _INCIDENT_ORDER):
                doc = hit["_source"]
                if hit["_id"] in by_host[str(doc["host"])].incidents:
                    continue
                if _marked(doc):
                    marked += 1
                    continue
                actions.append(
                    orjson.dumps({"delete": {"_index": hit["_index"], "_id": hit["_id"]}})
                )
                incidents += 1
        if actions:
            self._bulk(actions)
        return Withdrawn(anomalies, incidents, relinked, marked)

    def _hits(
        self, index: str, clauses: list[dict], fields: list[str], order: tuple[str, ...]
    ) -> Iterator[dict]:
        body: dict = {
            "size": _PAGE,
            "_source": fields,
            "query": {"bool": {"should": clauses, "minimum_should_match": 1}},
            "sort": [{name: "asc"} for name in order],
        }
        while True:
            hits = search(self._client, index, body, HITS_PATH).get("hits", {}).get("hits", [])
            yield from hits
            if len(hits) < _PAGE:
                return
            body["search_after"] = hits[-1]["sort"]

    def _refresh(self, index: str) -> None:
        # The previous cycle's writes must be visible to the searches that follow.
        try:
            self._client.indices.refresh(index=index, params=_EXISTING)
        except (OSConnectionError, ConnectionTimeout) as exc:
            raise SourceUnavailable(f"cluster unreachable while refreshing: {exc}") from exc
        except TransportError as exc:
            raise SourceUnavailable(f"refresh failed ({exc.status_code}): {exc.error}") from exc

    def _bulk(self, actions: list[bytes]) -> None:
        try:
            response = self._client.bulk(body=b"\n".join(actions) + b"\n")
        except (OSConnectionError, ConnectionTimeout, TransportError) as exc:
            raise WriteError(f"withdrawing verdicts failed: {exc}") from exc
        # 404: already gone (a redo, or the retention dropped its partition).
        failed = [
            item
            for entry in response["items"]
            for item in entry.values()
            if item.get("status") not in (200, 404)
        ]
        if failed:
            raise WriteError(f"{len(failed)} verdict(s) not withdrawn, e.g. {failed[0]}", failed)


def _host_range(host: str, field: str, gte: int, lte: int | None) -> dict:
    bounds = {"gte": gte} if lte is None else {"gte": gte, "lte": lte}
    return {"bool": {"filter": [{"term": {"host": host}}, {"range": {field: bounds}}]}}


def _chunks(rebuilt: Sequence[Rebuilt]) -> Iterator[Sequence[Rebuilt]]:
    for i in range(0, len(rebuilt), _HOSTS_PER_SEARCH):
        yield rebuilt[i : i + _HOSTS_PER_SEARCH]


def _marked(doc: dict) -> bool:
    feedback = doc.get("feedback")
    return isinstance(feedback, dict) and feedback.get("verdict") is not None
