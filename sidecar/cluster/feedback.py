"""Analysts' verdicts on anomaly documents, read from and recorded in the anomaly index.

An analyst sets `feedback.verdict` on an anomaly document ("false_positive" or
"true_positive"), from Dashboards' Dev Tools, the `feedback` command or any client (see
docs/model-lifecycle.md). False positives not yet learned are read here; once a new model
version has learned them, the documents get `feedback.applied_version`.
"""

from __future__ import annotations

from collections.abc import Sequence

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError

from sidecar.errors import WriteError
from sidecar.models.online import MarkedWindow, marked_from_document
from sidecar.models.store import now_iso

__all__ = [
    "VERDICTS",
    "pending_false_positives",
    "mark_applied",
    "confirmed_incidents",
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
            "_index": index,
            "_id": doc_id,
            "doc": {"feedback": {"applied_version": version, "applied_at": at}},
        }
        for doc_id in ids
    )
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="wait_for")
    if errors:
        raise WriteError(f"could not mark {len(errors)} feedback documents applied", errors)


def confirmed_incidents(client: OpenSearch, index: str, start_ms: int, end_ms: int) -> set[str]:
    """log_uuids analysts confirmed as real incidents in a time range: a retraining gate does
    not count them as false positives."""
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
    client.update(index=index, id=doc_id, body={"doc": {"feedback": feedback}}, refresh="wait_for")
