"""What a notification says about an incident (pure): which incidents are worth one, and the
body sent to an Alertmanager v2 endpoint or a generic JSON webhook.

Both carry the incident id as the key a receiver deduplicates on: Alertmanager identifies an
alert by its labels, and `incident_id` is one of them, so a resent incident updates the same
alert instead of raising a second; the webhook body and its `Idempotency-Key` header carry it
too. Delivery is at least once (sidecar/app/notifier.py), so a receiver may see an incident
twice after a crash between sending it and recording that it was sent, never zero times.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sidecar.pipeline.incidents import GRADE_BANDS, grade_band

__all__ = ["FORMATS", "min_grade_of", "notifiable", "notice_body", "notice_headers", "summary"]

FORMATS = ("alertmanager", "webhook")
ALERT_NAME = "LogAnomalyIncident"
_MAX_LISTED = 10


def min_grade_of(band: str) -> float:
    """The lowest grade of a band ("high" -> 75)."""
    for name, lowest in GRADE_BANDS:
        if name == band:
            return lowest
    raise ValueError(f"unknown grade band {band!r}; choose from {[b for b, _ in GRADE_BANDS]}")


def notifiable(incident: Mapping[str, object], min_grade: float) -> bool:
    grade = incident.get("grade")
    return isinstance(grade, int | float) and float(grade) >= min_grade


def _iso(ms: object) -> str | None:
    if not isinstance(ms, int | float):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _listed(values: object) -> str:
    items = [str(v) for v in values] if isinstance(values, list) else []
    more = len(items) - _MAX_LISTED
    return ", ".join(items[:_MAX_LISTED]) + (f" (+{more} more)" if more > 0 else "")


def summary(incident: Mapping[str, object]) -> str:
    """One line a person reads in a chat message or a pager."""
    grade = float(incident.get("grade") or 0.0)  # type: ignore[arg-type]
    return (
        f"{grade_band(grade)} incident on {incident.get('host')}: "
        f"{incident.get('event_count')} events, grade {grade:g}, "
        f"{_listed(incident.get('reasons'))} ({_listed(incident.get('models'))})"
    )


def _description(incident: Mapping[str, object]) -> str:
    return (
        f"From {_iso(incident.get('first_event_at'))} to {_iso(incident.get('last_event_at'))}; "
        f"keys {_listed(incident.get('keys'))}; confidence {incident.get('confidence')}."
    )


def notice_body(incident: Mapping[str, object], fmt: str, link: str | None = None) -> object:
    """The JSON body for one incident. `link`: where a person opens it (Dashboards)."""
    grade = float(incident.get("grade") or 0.0)  # type: ignore[arg-type]
    if fmt == "alertmanager":
        alert: dict[str, object] = {
            "labels": {
                "alertname": ALERT_NAME,
                "incident_id": str(incident.get("incident_id")),
                "host": str(incident.get("host")),
                "severity": grade_band(grade),
            },
            "annotations": {
                "summary": summary(incident),
                "description": _description(incident),
                "grade": f"{grade:g}",
            },
            "startsAt": _iso(incident.get("detected_at")) or _iso(incident.get("first_event_at")),
        }
        if link:
            alert["generatorURL"] = link
        return [alert]
    if fmt == "webhook":
        return {
            "incident_id": incident.get("incident_id"),
            "host": incident.get("host"),
            "grade": grade,
            "band": grade_band(grade),
            "confidence": incident.get("confidence"),
            "first_event_at": _iso(incident.get("first_event_at")),
            "last_event_at": _iso(incident.get("last_event_at")),
            "detected_at": _iso(incident.get("detected_at")),
            "models": incident.get("models"),
            "reasons": incident.get("reasons"),
            "keys": incident.get("keys"),
            "event_count": incident.get("event_count"),
            "summary": summary(incident),
            **({"link": link} if link else {}),
        }
    raise ValueError(f"unknown notification format {fmt!r}; choose from {list(FORMATS)}")


def notice_headers(incident: Mapping[str, object]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": str(incident.get("incident_id")),
    }
