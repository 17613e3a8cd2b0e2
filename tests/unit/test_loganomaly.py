"""LogAnomaly: template semantics, template approximation for unseen EVENTIDs, and the
quantitative view that catches bursts of familiar events."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devtools.demo.generator import documents_with_incidents, fleet
from sidecar.encoding.semantics import fit_semantic_space, mask_message, template_words
from sidecar.encoding.vocabulary import UNKNOWN
from sidecar.models.artifacts import ModelArtifact, load_artifact
from sidecar.models.nextkey.build import build_detector, template_matcher
from sidecar.models.nextkey.core import count_bursts
from sidecar.models.nextkey.detector import REASON_COUNT, REASON_UNSEEN_KEY
from sidecar.models.nextkey.loganomaly import count_limits
from sidecar.types import HostSequence, LogEvent
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, flagged_in_one_pass, to_events


def test_variable_parts_are_masked() -> None:
    masked = mask_message(
        "Failed logon for alice from 10.1.2.3:445 handle 0x1f3a pid 4242 file C:\\Data\\x.txt "
        "id 1b4e28ba-2fa1-11d2-883f-0016d3cca427 block blk_-1608999687919862906"
    )
    for variable in ("10.1.2.3", "0x1f3a", "4242", "C:\\Data", "1b4e28ba", "blk_"):
        assert variable not in masked
    assert masked.startswith("Failed logon for alice from <*>")


def test_template_words_split_camel_case_and_drop_masks() -> None:
    assert template_words("PacketResponder <*> for block <*> terminating") == [
        "packet",
        "responder",
        "for",
        "block",
        "terminating",
    ]


def test_templates_sharing_words_are_closer_than_unrelated_ones() -> None:
    templates = [
        "An account failed to log on failure",
        "An account was successfully logged on success",
        "A new process has been created success",
        "The audit log was cleared success",
    ]
    space = fit_semantic_space(templates, dim=8)
    a, b, c = space.vectors(
        [
            "An account failed to log on failure",
            "An account failed to logon failure",
            "A new process has been created success",
        ]
    )
    assert float(a @ b) > float(a @ c)
    assert np.isclose(np.linalg.norm(a), 1.0)


def event(event_id: str, message: str, severity: str = "failure") -> LogEvent:
    return LogEvent("h", T0, f"u-{event_id}", event_id, severity, message)


def test_an_unseen_event_id_with_a_known_template_is_matched_to_it(
    trained_loganomaly: ModelArtifact,
) -> None:
    matcher = template_matcher(trained_loganomaly)
    known = trained_loganomaly.vocabulary.id_of("4625", "failure")
    renamed = event(
        "94625",
        "An account failed to log on. Account Name: zed Failure Reason: "
        "Unknown user name or bad password. Source Network Address: 10.0.0.9",
    )
    ids, matches = matcher.encode([renamed])
    assert ids.tolist() == [known]
    assert matches[0].closest_key == "4625/failure" and matches[0].similarity >= 0.9


def test_a_truly_new_template_is_still_unknown(trained_loganomaly: ModelArtifact) -> None:
    matcher = template_matcher(trained_loganomaly)
    ids, matches = matcher.encode([event("1102", "The audit log was cleared.", "success")])
    assert ids.tolist() == [UNKNOWN]
    assert matches[0].similarity < 0.9 and matches[0].key_id == UNKNOWN


def test_count_limits_flag_a_key_repeating_more_than_training_ever_showed() -> None:
    windows = np.array([[2, 3, 2], [3, 2, 4]])
    targets = np.array([3, 2])
    limits = count_limits(windows, targets, 5)
    assert limits.tolist() == [0, 0, 2, 2, 0]  # each key seen at most twice in window + next
    assert count_bursts(np.array([[2, 3, 2]]), np.array([3]), limits).tolist() == [False]
    assert count_bursts(np.array([[3, 3, 2]]), np.array([3]), limits).tolist() == [True]


def test_a_burst_of_familiar_failed_logons_is_caught_by_the_count_view(
    trained_loganomaly: ModelArtifact,
) -> None:
    docs, incidents = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 200, seed=11, incidents={"host-003": "brute_force"}
    )
    detector = build_detector(trained_loganomaly)
    stream = [e for e in to_events(docs) if e.host == "host-003"]
    stream.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))
    batch = detector.detect([HostSequence("host-003", (), stream)])
    burst = set(incidents[0].log_uuids[:30])  # the 30 failed logons
    caught = [d for d in batch.detections if d.event.log_uuid in burst]
    # Failed logons are familiar (a mistyped password, then a logon); thirty in a row are not.
    assert len(caught) >= 20
    assert any(d.reason == REASON_COUNT for d in caught)
    assert all(d.event.event_id == "4625" for d in caught)


def test_loganomaly_finds_every_injected_incident(trained_loganomaly: ModelArtifact) -> None:
    docs, incidents = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 400, seed=2, incidents=INCIDENTS
    )
    flagged = flagged_in_one_pass(trained_loganomaly, docs)
    for incident in incidents:
        assert flagged & set(incident.log_uuids), incident.kind


def test_unseen_keys_carry_their_template_and_closest_match(
    trained_loganomaly: ModelArtifact,
) -> None:
    detector = build_detector(trained_loganomaly)
    batch = detector.detect([HostSequence("h", (), [event("1102", "The audit log was cleared.")])])
    (d,) = batch.detections
    assert d.reason == REASON_UNSEEN_KEY and d.model == "loganomaly"
    assert d.approximation is not None and d.approximation.template == "The audit log was cleared."
    assert d.approximation.closest_key is not None


def test_the_artifact_reloads_with_its_semantics(
    trained_loganomaly: ModelArtifact, model_dir: Path
) -> None:
    reloaded = load_artifact(model_dir, "loganomaly")
    assert reloaded.vocabulary == trained_loganomaly.vocabulary
    assert reloaded.manifest["semantics"]["key_templates"][2:] != [""] * reloaded.vocabulary.known
    a = build_detector(trained_loganomaly).detect([HostSequence("h", (), [event("x", "y")])])
    b = build_detector(reloaded).detect([HostSequence("h", (), [event("x", "y")])])
    assert [d.score for d in a.detections] == [d.score for d in b.detections]
