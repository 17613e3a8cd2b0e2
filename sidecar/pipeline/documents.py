"""A batch's detections -> the documents to write (pure): one anomaly document per kept
detection, the incident documents that changed, and each host's incident still open.

Without an incident store every detection becomes an anomaly document, as before incidents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sidecar.encoding.semantics import template_text
from sidecar.pipeline.annotate import anomaly_document, anomaly_id
from sidecar.pipeline.incidents import (
    IncidentLimits,
    OpenIncident,
    advance_incidents,
    grade_band,
    incident_document,
    incident_grade,
)
from sidecar.types import Detection

__all__ = ["Documents", "documents_for"]

Document = tuple[str, dict[str, object]]


@dataclass(slots=True)
class Documents:
    anomalies: list[Document] = field(default_factory=list)
    incidents: list[Document] = field(default_factory=list)
    still_open: dict[str, dict[str, object] | None] = field(default_factory=dict)
    opened: int = 0
    extended: int = 0
    folded: int = 0  # detections counted in an incident instead of written
    # Incidents that entered a grade band in this batch: opened in it, or raised into it.
    entered_bands: Counter[str] = field(default_factory=Counter)


def documents_for(
    by_host: Mapping[str, list[Detection]],
    open_incident: Callable[[str], dict[str, object] | None],
    limits: IncidentLimits | None,
    now_ms: int,
    chars: int,
    revisions: Mapping[str, int] | None = None,
) -> Documents:
    """`open_incident(host)`: the incident the host's saved state carries, if any; `limits`
    None writes every detection (no incident store); `revisions`: stored incidents a re-read
    after late documents forms again (id -> revision)."""
    made = Documents()
    if limits is None:
        for detections in by_host.values():
            for d in detections:
                made.anomalies.append(
                    (anomaly_id(d.model, d.event.log_uuid), anomaly_document(d, now_ms, chars))
                )
        return made
    for host, detections in by_host.items():
        saved = open_incident(host)
        current = OpenIncident.from_json(saved) if saved else None
        band_before = (
            grade_band(incident_grade(current, limits.models_running)) if current else None
        )
        update = advance_incidents(
            host,
            detections,
            current,
            limits,
            now_ms,
            message_chars=chars,
            template_of=template_text,
            revisions=revisions,
        )
        for d, incident in update.kept:
            made.anomalies.append(
                (
                    anomaly_id(d.model, d.event.log_uuid),
                    anomaly_document(d, now_ms, chars, incident),
                )
            )
        for incident in update.changed:
            extended = current is not None and incident.id == current.id
            # Formed again by a re-read: opened (and alerted on) when first formed.
            reformed = incident.id in (revisions or {})
            if extended or reformed:
                made.extended += 1
            else:
                made.opened += 1
            document = incident_document(incident, now_ms, limits.models_running)
            band = grade_band(float(document["grade"]))
            if not reformed and (not extended or band != band_before):
                made.entered_bands[band] += 1
            made.incidents.append((incident.id, document))
        made.folded += len(detections) - len(update.kept) - update.repeated
        made.still_open[host] = None if update.still_open is None else update.still_open.to_json()
    return made
