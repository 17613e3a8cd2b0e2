"""Detections -> anomaly documents (pure). The document shape is the one in
mappings/anomalies.template.json; both the cluster and the JSON-lines sink write it."""

from __future__ import annotations

import hashlib

from sidecar.encoding.vocabulary import RESERVED, key_label
from sidecar.types import Detection

__all__ = ["anomaly_id", "anomaly_document"]


def anomaly_id(model: str, log_uuid: str) -> str:
    """Deterministic: redoing a range overwrites nothing and duplicates nothing.

    The log_uuid is hashed because ids are capped at 512 bytes and log_uuids come from the
    wild; the log_uuid itself is stored in the document for look-ups.
    """
    return f"{model}-{hashlib.sha256(log_uuid.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


def _excerpt(message: str | None, limit: int) -> str | None:
    if message is None:
        return None
    return message if len(message) <= limit else message[: limit - 1] + "…"


def anomaly_document(
    detection: Detection,
    detected_at_ms: int,
    message_excerpt_chars: int = 512,
    incident_id: str | None = None,
) -> dict[str, object]:
    event = detection.event
    document = {
        "@timestamp": event.timestamp_ms,
        "detected_at": detected_at_ms,
        "host": event.host,
        "log_uuid": event.log_uuid,
        "reason": detection.reason,
        "score": detection.score,
        "p_value": detection.p_value,
        "grade": detection.grade,
        # The incident this event belongs to (the drill-down link), when incidents are formed.
        "incident_id": incident_id,
        "event": {
            "id": event.event_id,
            "severity": event.severity,
            "key": key_label(event.event_id, event.severity),
            "message": _excerpt(event.message, message_excerpt_chars),
            "index": event.index,
        },
        "model": {
            "name": detection.model,
            "version": detection.model_version,
            "window_size": detection.window_size,
            "top_g": detection.top_g,
        },
        "observed": {
            "key": detection.observed_key,
            "rank": detection.observed_rank,
            "probability": round(detection.observed_probability, 6),
        },
        "expected": [
            {
                "key": e.key,
                "event_id": e.event_id,
                "severity": e.severity,
                "probability": round(e.probability, 6),
            }
            for e in detection.expected
        ],
        "window": {
            "keys": [key_label(w.event_id, w.severity) for w in detection.window],
            "log_uuids": [w.log_uuid for w in detection.window],
            "padded": detection.padded,
            "start": detection.window[0].timestamp_ms if detection.window else None,
        },
    }
    match = detection.approximation
    if match is not None:
        # How the unseen key was read: the closest known template, and whether it was close
        # enough to stand in for it (then the verdict is about the matched key).
        document["template"] = {
            "text": match.template,
            "matched": match.key_id >= RESERVED,
            "closest_key": match.closest_key,
            "closest_template": match.closest_template,
            "similarity": match.similarity,
        }
    flow = detection.workflow
    if flow is not None:
        # The host group's normal path around the event (docs/workflow.md).
        document["workflow"] = {
            "group": flow.group,
            "from_key": flow.from_key,
            "path_before": list(flow.path_before),
            "expected_next": [
                {"key": step.key, "probability": step.probability} for step in flow.expected_next
            ],
            "expected_path": list(flow.expected_path),
            "observed_transition_seen": flow.observed_transition_seen,
        }
    deviation = detection.parameters
    if deviation is not None:
        # DeepLog's parameter model: the event's timing and numbers against their prediction.
        document["parameters"] = {
            "error": deviation.error,
            "threshold": deviation.threshold,
            "deviating": deviation.deviating,
            "values": [
                {
                    "name": v.name,
                    "source": v.source,
                    "observed": v.observed,
                    "expected": v.expected,
                    "deviation": v.deviation,
                }
                for v in deviation.values
            ],
        }
    content = detection.content
    if content is not None:
        # The content detector: the tokens that made the text unusual for its template.
        document["content"] = {
            "surprise": content.surprise,
            "threshold": content.threshold,
            "forest_score": content.forest_score,
            "template_messages": content.template_messages,
            "unseen": content.unseen,
            "tokens": [
                {
                    "token": t.token,
                    "class": t.token_class,
                    "position": t.position,
                    "seen": t.seen,
                    "typical": [{"token": tok, "share": share} for tok, share in t.typical],
                }
                for t in content.tokens
            ],
        }
    return document
