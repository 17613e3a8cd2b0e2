"""Analysts' verdicts on anomaly documents, read from and recorded in the anomaly index.

An analyst sets `feedback.verdict` on an anomaly document ("false_positive" or
"true_positive"), from Dashboards' Dev Tools, the `feedback` command or any client (see
docs/model-lifecycle.md). False positives not yet learned are read here; once a new model
version has learned them, the documents get `feedback.applied_version`.

`index` arguments are what reads search (the partitions, "log-anomalies*"); a document is
updated in the partition that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError

from sidecar.encoding.marks import MarkedWindow, marked_from_document
from sidecar.errors import WriteError
from sidecar.types import now_iso

__all__ = [
    "VERDICTS",
    "spread_incident_verdicts",
    "pending_false_positives",
    "mark_applied",
    "confirmed_incidents",
    "unreviewed_incidents",
    "set_verdict",
]

VERDICTS = ("false_positive", "true_positive")
_FIELDS = ["window.keys", "event.id", "event.severity", "event.message", "parameters.values"]


def pending_false_positives(
    client: OpenSearch, index: str, model: str, limit: int = 1_000
) -> list[MarkedWindow]:
    """Documents of `model` marked false positive and not yet applied, oldest first."""
    body = {
        "size": limit,
        "_source": _FIELDS,
        "query": {
            "bool": {
                "filter": [
                    {"term": {"feedback.verdict": "false_positive"}},
                    {"term": {"model.name": model}},
                ],
                "must_not": [{"exists": {"field": "feedback.applied_version"}}],
            }
        },
        "sort": [{"@timestamp": "asc"}],
    }
    try:
        hits = client.search(index=index, body=body)["hits"]["hits"]
    except NotFoundError:
        return []
    return [marked_from_document(hit["_id"], hit["_source"]) for hit in hits]


def mark_applied(client: OpenSearch, index: str, ids: Sequence[str], version: str) -> None:
    """Record that `version` learned these false positives, so they are applied once."""
    at = now_iso()
    actions = (
        {
            "_op_type": "update",
            "_index": partition,
            "_id": doc_id,
            "doc": {"feedback": {"applied_version": version, "applied_at": at}},
        }
        for doc_id, partition in holders(client, index, ids).items()
    )
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="wait_for")
    if errors:
        raise WriteError(f"could not mark {len(errors)} feedback documents applied", errors)


def confirmed_incidents(
    client: OpenSearch,
    index: str,
    start_ms: int,
    end_ms: int,
    incident_index: str | None = None,
) -> set[str]:
    """log_uuids analysts confirmed as real incidents in a time range: a retraining gate does
    not count them as false positives. A confirmed incident confirms every member it lists,
    those without an annotation of their own too."""
    found = _confirmed_annotations(client, index, start_ms, end_ms)
    if incident_index is not None:
        verdict = {"term": {"feedback.verdict": "true_positive"}}
        found |= _incident_members(client, incident_index, start_ms, end_ms, [verdict])
    return found


def unreviewed_incidents(
    client: OpenSearch, incident_index: str, start_ms: int, end_ms: int, min_grade: float
) -> set[str]:
    """log_uuids of the incidents in a time range graded at least `min_grade` that nobody has
    given a verdict: what the sidecar alerted on and no one called normal."""
    graded = {"range": {"grade": {"gte": min_grade}}}
    unmarked = {"exists": {"field": "feedback.verdict"}}
    return _incident_members(client, incident_index, start_ms, end_ms, [graded], [unmarked])


def _incident_members(
    client: OpenSearch,
    incident_index: str,
    start_ms: int,
    end_ms: int,
    filters: list[dict],
    must_not: tuple[dict, ...] | list[dict] = (),
) -> set[str]:
    """The listed members of the incidents overlapping [start, end] that match `filters`."""
    overlapping = [
        {"range": {"last_event_at": {"gte": start_ms, "format": "epoch_millis"}}},
        {"range": {"first_event_at": {"lte": end_ms, "format": "epoch_millis"}}},
    ]
    query = {"bool": {"filter": [*filters, *overlapping], "must_not": list(must_not)}}
    body = {"size": 10_000, "_source": ["log_uuids"], "query": query}
    try:
        hits = client.search(index=incident_index, body=body)["hits"]["hits"]
    except NotFoundError:
        return set()
    return {u for hit in hits for u in hit["_source"].get("log_uuids") or []}


def spread_incident_verdicts(
    client: OpenSearch, incident_index: str, anomaly_index: str, limit: int = 100
) -> int:
    """Incidents are what people mark: an incident's verdict is copied to each of its member
    annotations (the online update learns false-positive members, the retraining gate keeps
    confirmed ones), then the incident records that it was spread. Returns members marked.

    Marking is idempotent (the same verdict again), so a crash half-way is finished by the
    next call."""
    body = {
        "size": limit,
        "_source": ["feedback"],
        "query": {
            "bool": {
                "filter": [{"terms": {"feedback.verdict": list(VERDICTS)}}],
                "must_not": [{"exists": {"field": "feedback.applied_at"}}],
            }
        },
    }
    try:
        incidents = client.search(index=incident_index, body=body)["hits"]["hits"]
    except NotFoundError:
        return 0
    marked = 0
    for incident in incidents:
        feedback = incident["_source"]["feedback"]
        members = client.search(
            index=anomaly_index,
            body={
                "size": 10_000,
                "_source": False,
                "query": {"term": {"incident_id": incident["_id"]}},
            },
        )["hits"]["hits"]
        actions = [
            {
                "_op_type": "update",
                "_index": m["_index"],
                "_id": m["_id"],
                "doc": {"feedback": {k: v for k, v in feedback.items() if k != "applied_at"}},
            }
            for m in members
        ]
        if actions:
            helpers.bulk(client, actions, refresh="wait_for")
        marked += len(actions)
        client.update(
            index=incident["_index"],
            id=incident["_id"],
            body={"doc": {"feedback": {"applied_at": now_iso()}}},
            refresh="wait_for",
        )
    return marked


def _confirmed_annotations(client: OpenSearch, index: str, start_ms: int, end_ms: int) -> set[str]:
    body = {
        "size": 10_000,
        "_source": ["log_uuid"],
        "query": {
            "bool": {
                "filter": [
                    {"term": {"feedback.verdict": "true_positive"}},
                    {
                        "range": {
                            "@timestamp": {"gte": start_ms, "lte": end_ms, "format": "epoch_millis"}
                        }
                    },
                ]
            }
        },
    }
    try:
        hits = client.search(index=index, body=body)["hits"]["hits"]
    except NotFoundError:
        return set()
    return {h["_source"]["log_uuid"] for h in hits}


def set_verdict(
    client: OpenSearch, index: str, doc_id: str, verdict: str, by: str | None, note: str | None
) -> None:
    """What Dashboards' Dev Tools does with `POST <index>/_update/<id>`, for the CLI."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    feedback: dict[str, object] = {"verdict": verdict, "at": now_iso()}
    if by:
        feedback["by"] = by
    if note:
        feedback["note"] = note
    partition = holders(client, index, [doc_id]).get(doc_id)
    if partition is None:  # written in the last second: searchable once refreshed
        client.indices.refresh(index=index)
        partition = holders(client, index, [doc_id]).get(doc_id)
    if partition is None:
        raise NotFoundError(404, "document_missing", f"no document {doc_id!r} in {index!r}")
    client.update(
        index=partition, id=doc_id, body={"doc": {"feedback": feedback}}, refresh="wait_for"
    )


def holders(client: OpenSearch, index: str, ids: Sequence[str]) -> dict[str, str]:
    """The partition that holds each of `ids` (those found) among the indices `index` names."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), 1_000):
        chunk = list(ids[start : start + 1_000])
        body = {"size": len(chunk), "_source": False, "query": {"ids": {"values": chunk}}}
        try:
            hits = client.search(index=index, body=body)["hits"]["hits"]
        except NotFoundError:
            return found
        found.update({hit["_id"]: hit["_index"] for hit in hits})
    return found
