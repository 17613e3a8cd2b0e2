"""Incidents: one host's anomalies close in time, as one document, however cycles cut them."""

from __future__ import annotations

from sidecar.pipeline.documents import documents_for
from sidecar.pipeline.incidents import (
    IncidentLimits,
    OpenIncident,
    advance_incidents,
    grade_band,
    incident_document,
    incident_id,
)
from sidecar.types import Detection, ExpectedKey, LogEvent

MINUTE = 60_000


def flagged(t_ms: int, n: int, model: str = "deeplog", grade: float = 60.0) -> Detection:
    event = LogEvent("host-1", t_ms, f"u{n:05d}", "4625", "failure", f"failed logon {n}")
    return Detection(
        model=model,
        model_version="v1",
        event=event,
        window=(),
        padded=10,
        reason="improbable",
        score=0.99,
        observed_key="4625/failure",
        observed_rank=5,
        observed_probability=0.01,
        expected=(ExpectedKey("4624/success", "4624", "success", 0.9),),
        window_size=10,
        top_g=9,
        p_value=1e-6,
        grade=grade,
    )


def run_in_cuts(detections: list[Detection], cuts: list[int], limits: IncidentLimits):
    """Feed detections in batches ending at `cuts`, carrying the open incident like a cycle."""
    documents: dict[str, dict] = {}
    kept: list[tuple[str, str]] = []
    state = None
    start = 0
    for end in [*cuts, len(detections)]:
        update = advance_incidents("host-1", detections[start:end], state, limits, now_ms=0)
        for incident in update.changed:
            documents[incident.id] = incident_document(incident, 0, 1)
        kept.extend((d.event.log_uuid, inc) for d, inc in update.kept)
        state = (
            None
            if update.still_open is None
            else OpenIncident.from_json(update.still_open.to_json())
        )
        start = end
    return documents, kept


def test_a_retry_storm_is_one_incident_with_its_count_and_a_few_event_documents() -> None:
    storm = [flagged(1_000 * i, i) for i in range(600)]  # one a second for ten minutes
    update = advance_incidents("host-1", storm, None, IncidentLimits(event_docs=10), now_ms=5)
    assert len(update.changed) == 1
    document = incident_document(update.changed[0], 7, 1)
    assert document["event_count"] == 600
    assert document["anomaly_documents"] == 10
    assert [d.event.log_uuid for d, _ in update.kept] == [f"u{i:05d}" for i in range(10)]
    assert document["first_event"]["log_uuid"] == "u00000"
    assert document["last_event"]["log_uuid"] == "u00599"
    assert document["patterns"] == [{"pattern": "deeplog| -> 4625/failure", "count": 600}]
    assert document["incident_id"] == incident_id("host-1", 0, "u00000")


def test_anomalies_further_apart_than_the_gap_are_separate_incidents() -> None:
    detections = [flagged(0, 0), flagged(9 * MINUTE, 1), flagged(20 * MINUTE, 2)]
    update = advance_incidents("host-1", detections, None, IncidentLimits(gap_ms=10 * MINUTE), 0)
    assert [incident_document(i, 0, 1)["event_count"] for i in update.changed] == [2, 1]


def test_cycle_boundaries_do_not_change_the_documents() -> None:
    detections = [flagged(1_000 * i, i, grade=50.0 + (i % 7)) for i in range(40)]
    detections += [flagged(3_600_000 + 1_000 * i, 100 + i) for i in range(5)]
    limits = IncidentLimits(event_docs=3)
    whole = run_in_cuts(detections, [], limits)
    for cuts in ([1], [13, 27], [39, 40, 41], list(range(1, 45))):
        assert run_in_cuts(detections, cuts, limits) == whole
    documents, kept = whole
    assert sorted(d["event_count"] for d in documents.values()) == [5, 40]
    assert len(kept) == 6  # three per incident


def test_a_redo_of_events_already_counted_adds_nothing() -> None:
    detections = [flagged(1_000 * i, i) for i in range(5)]
    first = advance_incidents("host-1", detections, None, IncidentLimits(), 0)
    again = advance_incidents("host-1", detections, first.still_open, IncidentLimits(), 0)
    assert again.repeated == 5
    assert again.changed == [] and again.kept == []


def test_models_that_agree_raise_grade_and_confidence() -> None:
    one = [flagged(0, 0)]
    both = [flagged(0, 0), flagged(0, 0, model="loganomaly")]
    alone = advance_incidents("host-1", one, None, IncidentLimits(), 0).changed[0]
    agreed = advance_incidents("host-1", both, None, IncidentLimits(), 0).changed[0]
    single = incident_document(alone, 0, models_running=2)
    double = incident_document(agreed, 0, models_running=2)
    assert (single["grade"], single["confidence"]) == (60.0, 0.5)
    assert (double["grade"], double["confidence"]) == (70.0, 0.75)
    assert double["models"] == ["deeplog", "loganomaly"]
    assert double["event_count"] == 1 and double["detection_count"] == 2


def test_an_incident_counts_once_in_each_grade_band_it_enters() -> None:
    limits = IncidentLimits(models_running=1)
    first = documents_for({"host-1": [flagged(0, 0)]}, lambda _: None, limits, 0, 100)
    assert (first.opened, dict(first.entered_bands)) == (1, {"medium": 1})  # grade 60
    # Seven more events of the same incident: corroboration raises it to 75, the high band.
    seven = {"host-1": [flagged(MINUTE * i, i) for i in range(1, 8)]}
    more = documents_for(seven, lambda _: first.still_open["host-1"], limits, 0, 100)
    assert (more.extended, dict(more.entered_bands)) == (1, {"high": 1})
    assert more.incidents[0][1]["grade"] == 75.0
    # One more, still high: extended, but no band entered again.
    ninth = {"host-1": [flagged(9 * MINUTE, 9)]}
    again = documents_for(ninth, lambda _: more.still_open["host-1"], limits, 0, 100)
    assert (again.extended, dict(again.entered_bands)) == (1, {})


def test_grade_bands_start_at_the_threshold_and_above() -> None:
    assert [grade_band(g) for g in (0.0, 49.9, 50.0, 74.9, 75.0, 89.9, 90.0, 100.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]


def test_an_incident_formed_again_after_late_documents_replaces_its_stored_revision() -> None:
    """A re-read that withdraws one member forms the incident again with fewer members; its
    revision continues from the stored one, so the store (which keeps the higher revision)
    takes the new document, and it is not counted or alerted on as a new incident."""
    five = [flagged(1_000 * i, i) for i in range(5)]
    stored = incident_document(
        advance_incidents("host-1", five, None, IncidentLimits(), 0).changed[0], 0, 1
    )
    assert stored["revision"] == 5
    again = documents_for(
        {"host-1": [five[0], five[1], five[3]]},  # u00002 and u00004 no longer flagged
        lambda _: None,
        IncidentLimits(),
        9,
        100,
        revisions={stored["incident_id"]: stored["revision"]},
    )
    ((incident_id_again, document),) = again.incidents
    assert incident_id_again == stored["incident_id"]
    assert (document["revision"], document["event_count"]) == (8, 3)
    assert (again.opened, again.extended, dict(again.entered_bands)) == (0, 1, {})
    # Carried in the host's state, later members keep counting from there.
    later = documents_for(
        {"host-1": [flagged(9_000, 9)]},
        lambda _: again.still_open["host-1"],
        IncidentLimits(),
        9,
        100,
    )
    assert later.incidents[0][1]["revision"] == 9
