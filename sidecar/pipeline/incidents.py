"""Detections -> incidents (pure): what an analyst is shown instead of one document per event.

Anomalies of one host less than a gap apart form one incident, whichever models flagged them.
The incident still open at the end of a batch rides in the host's saved state, so the next
batch (or cycle) extends it instead of starting another: the incidents, and which per-event
documents are kept, come out the same however the events are cut into cycles. A retry storm of
600 lines is one incident with its count, its first, last and most anomalous lines, and the
first few per-event documents per model (the drill-down); the rest is counted, not written.

An incident's id is a hash of its host and first member event, so a redo of any range rebuilds
the same document under the same id; its `revision` (member detections so far) only grows,
which lets the store keep the furthest version when two writers race. An incident formed again
by a re-read after late documents continues from the revision stored before, even with fewer
members, so its rebuilt document replaces the old one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sidecar.encoding.vocabulary import key_label
from sidecar.types import Detection

__all__ = [
    "IncidentLimits",
    "OpenIncident",
    "IncidentUpdate",
    "advance_incidents",
    "incident_document",
    "incident_id",
    "incident_grade",
    "grade_band",
    "GRADE_BANDS",
]

_MAX_KEYS = 50
_MAX_TEMPLATES = 20
_MAX_PATTERNS = 20
_TOP_EVENTS = 5
# Grade of a member flagged by a rule without a calibrated score: at the flagging threshold.
_UNCALIBRATED_GRADE = 50.0
# Grade bands, lowest first, with the grade each starts at: what alerting routes on (a bounded
# label, unlike hosts). 50 is the flagging threshold of a calibrated member.
GRADE_BANDS: tuple[tuple[str, float], ...] = (
    ("low", 0.0),
    ("medium", 50.0),
    ("high", 75.0),
    ("critical", 90.0),
)


@dataclass(frozen=True, slots=True)
class IncidentLimits:
    gap_ms: int = 600_000
    # Per-event anomaly documents written per incident and model.
    event_docs: int = 10
    # Member log_uuids listed on the incident; beyond it they are counted.
    log_uuids: int = 200
    models_running: int = 1


def incident_id(host: str, first_ms: int, first_log_uuid: str) -> str:
    text = f"{host}\n{first_ms}\n{first_log_uuid}"
    return "inc-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _event_summary(d: Detection, message_chars: int) -> dict[str, object]:
    message = d.event.message
    if message is not None and len(message) > message_chars:
        message = message[: message_chars - 1] + "…"
    return {
        "@timestamp": d.event.timestamp_ms,
        "log_uuid": d.event.log_uuid,
        "model": d.model,
        "reason": d.reason,
        "key": d.observed_key,
        "message": message,
        "grade": _grade_of(d),
        "p_value": d.p_value,
        "expected": [
            {"key": e.key, "probability": round(e.probability, 6)} for e in d.expected[:3]
        ],
    }


def _grade_of(d: Detection) -> float:
    return d.grade if d.grade is not None else _UNCALIBRATED_GRADE


@dataclass(slots=True)
class OpenIncident:
    """An incident as it stands: plain JSON-able fields, kept in the host's state while open."""

    id: str
    host: str
    first_ms: int
    first_log_uuid: str
    last_ms: int
    last_log_uuid: str
    detected_at: int
    events: int = 0
    detections: int = 0
    models: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    log_uuids: list[str] = field(default_factory=list)
    docs_written: dict[str, int] = field(default_factory=dict)
    patterns: dict[str, int] = field(default_factory=dict)
    first_event: dict[str, object] = field(default_factory=dict)
    last_event: dict[str, object] = field(default_factory=dict)
    top: list[dict[str, object]] = field(default_factory=list)
    max_grade: float = 0.0
    workflow: dict[str, object] | None = None
    # The stored revision a re-read formed this incident again over (0: first formed).
    revision_base: int = 0

    @property
    def revision(self) -> int:
        return self.revision_base + self.detections

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OpenIncident:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """One host's batch: incidents changed (to write), the detections that keep a per-event
    document, and the incident left open for the next batch."""

    changed: list[OpenIncident]
    # (detection, its incident's id)
    kept: list[tuple[Detection, str]]
    still_open: OpenIncident | None
    # Detections at or before the open incident's last member (a redo or a late re-read):
    # already counted, so not counted again.
    repeated: int = 0


def _pattern(d: Detection) -> str:
    window = " ".join(key_label(e.event_id, e.severity) for e in d.window[-3:])
    return f"{d.model}|{window} -> {d.observed_key}"


def _add(
    incident: OpenIncident,
    group: Sequence[Detection],
    limits: IncidentLimits,
    message_chars: int,
    template_of,
) -> list[Detection]:
    """Add one event's detections (one per model that flagged it); returns those to keep as
    per-event documents."""
    event = group[0].event
    incident.events += 1
    incident.last_ms, incident.last_log_uuid = event.timestamp_ms, event.log_uuid
    if len(incident.log_uuids) < limits.log_uuids:
        incident.log_uuids.append(event.log_uuid)
    kept = []
    best = max(group, key=_grade_of)
    summary = _event_summary(best, message_chars)
    if incident.events == 1:
        incident.first_event = summary
    incident.last_event = summary
    for d in group:
        incident.detections += 1
        incident.models[d.model] = incident.models.get(d.model, 0) + 1
        incident.versions[d.model] = d.model_version
        incident.reasons[d.reason] = incident.reasons.get(d.reason, 0) + 1
        if d.observed_key in incident.keys or len(incident.keys) < _MAX_KEYS:
            incident.keys[d.observed_key] = incident.keys.get(d.observed_key, 0) + 1
        pattern = _pattern(d)
        if pattern in incident.patterns or len(incident.patterns) < _MAX_PATTERNS:
            incident.patterns[pattern] = incident.patterns.get(pattern, 0) + 1
        written = incident.docs_written.get(d.model, 0)
        if written < limits.event_docs:
            incident.docs_written[d.model] = written + 1
            kept.append(d)
        if incident.workflow is None and d.workflow is not None:
            flow = d.workflow
            incident.workflow = {
                "group": flow.group,
                "from_key": flow.from_key,
                "path_before": list(flow.path_before),
                "expected_next": [
                    {"key": s.key, "probability": s.probability} for s in flow.expected_next
                ],
                "expected_path": list(flow.expected_path),
            }
    template = template_of(event) if template_of is not None else None
    if template and template not in incident.templates and len(incident.templates) < _MAX_TEMPLATES:
        incident.templates.append(template)
    g = _grade_of(best)
    incident.max_grade = max(incident.max_grade, g)
    # The most anomalous members, ties to the earliest: a stable choice under any cut.
    if len(incident.top) < _TOP_EVENTS or g > float(incident.top[-1]["grade"]):  # type: ignore[arg-type]
        incident.top.append(summary)
        incident.top.sort(key=lambda e: -float(e["grade"]))  # type: ignore[arg-type]
        del incident.top[_TOP_EVENTS:]
    return kept


def advance_incidents(
    host: str,
    detections: Sequence[Detection],
    open_incident: OpenIncident | None,
    limits: IncidentLimits,
    now_ms: int,
    *,
    message_chars: int = 512,
    template_of=None,
    revisions: Mapping[str, int] | None = None,
) -> IncidentUpdate:
    """Fold one host's detections (any order, any models) into its incidents; `revisions`:
    stored incidents a re-read forms again (id -> revision)."""
    ordered = sorted(detections, key=lambda d: (d.event.timestamp_ms, d.event.log_uuid, d.model))
    changed: dict[str, OpenIncident] = {}
    kept: list[tuple[Detection, str]] = []
    current = open_incident
    repeated = 0
    i = 0
    while i < len(ordered):
        j = i
        event = ordered[i].event
        while (
            j < len(ordered)
            and ordered[j].event.log_uuid == event.log_uuid
            and (ordered[j].event.timestamp_ms == event.timestamp_ms)
        ):
            j += 1
        group = ordered[i:j]
        i = j
        position = (event.timestamp_ms, event.log_uuid)
        if current is not None and position <= (current.last_ms, current.last_log_uuid):
            repeated += len(group)
            continue
        if current is None or event.timestamp_ms - current.last_ms > limits.gap_ms:
            current = OpenIncident(
                incident_id(host, event.timestamp_ms, event.log_uuid),
                host,
                event.timestamp_ms,
                event.log_uuid,
                event.timestamp_ms,
                event.log_uuid,
                detected_at=now_ms,
            )
            current.revision_base = (revisions or {}).get(current.id, 0)
        kept.extend(
            (d, current.id) for d in _add(current, group, limits, message_chars, template_of)
        )
        changed[current.id] = current
    return IncidentUpdate(list(changed.values()), kept, current, repeated)


def incident_grade(incident: OpenIncident, models_running: int) -> float:
    """0–100: the most anomalous member's calibrated grade, raised by corroboration (more
    distinct events, more distinct keys) and by agreement between models."""
    corroboration = min(15.0, 5.0 * math.log2(max(1, incident.events)))
    spread = min(10.0, 2.5 * (len(incident.keys) - 1))
    agreement = 10.0 * (len(incident.models) - 1)
    return round(min(100.0, incident.max_grade + corroboration + spread + agreement), 1)


def grade_band(grade: float) -> str:
    band = GRADE_BANDS[0][0]
    for name, start in GRADE_BANDS:
        if grade >= start:
            band = name
    return band


def incident_confidence(incident: OpenIncident, models_running: int) -> float:
    """0–1: how much evidence stands behind it; one event seen by one of several models is
    weak, many events seen by every model strong."""
    agreeing = len(incident.models) / max(1, models_running, len(incident.models))
    repeated = 1.0 - 1.0 / (1.0 + incident.events)
    return round(0.5 * agreeing + 0.5 * repeated, 3)


def incident_document(incident: OpenIncident, updated_ms: int, models_running: int) -> dict:
    """The incident as indexed (mappings/incidents.template.json)."""
    return {
        "@timestamp": incident.first_ms,
        "incident_id": incident.id,
        "host": incident.host,
        "first_event_at": incident.first_ms,
        "last_event_at": incident.last_ms,
        "duration_ms": incident.last_ms - incident.first_ms,
        "detected_at": incident.detected_at,
        "updated_at": updated_ms,
        "revision": incident.revision,
        "grade": incident_grade(incident, models_running),
        "confidence": incident_confidence(incident, models_running),
        "models": sorted(incident.models),
        "model_versions": [f"{m}:{v}" for m, v in sorted(incident.versions.items())],
        "reasons": sorted(incident.reasons),
        "keys": sorted(incident.keys, key=lambda k: (-incident.keys[k], k)),
        "templates": list(incident.templates),
        "event_count": incident.events,
        "detection_count": incident.detections,
        "anomaly_documents": sum(incident.docs_written.values()),
        "log_uuids": list(incident.log_uuids),
        "log_uuids_total": incident.events,
        "patterns": [
            {"pattern": p, "count": n}
            for p, n in sorted(incident.patterns.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "first_event": incident.first_event,
        "last_event": incident.last_event,
        "top_events": list(incident.top),
        **({"workflow": incident.workflow} if incident.workflow else {}),
    }
