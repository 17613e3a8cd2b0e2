"""Anomaly documents: everything an analyst needs, and nothing the strict mapping rejects."""

from __future__ import annotations

from sidecar.annotate import anomaly_document, anomaly_id
from sidecar.cluster.bootstrap import load_template
from sidecar.types import Detection, ExpectedKey, LogEvent, TemplateMatch
from tests.helpers import mapped_fields


def detection(message: str | None = "An account failed to log on.") -> Detection:
    window = tuple(LogEvent("h1", 1_000 + i, f"w{i}", "4624", "success") for i in range(3))
    return Detection(
        model="deeplog",
        model_version="20261122T000000Z-abcdef12",
        event=LogEvent("h1", 2_000, "uuid-1", "4625", "failure", message, "logs-a"),
        window=window,
        padded=7,
        reason="not_in_top_g",
        score=0.99,
        observed_key="4625/failure",
        observed_rank=12,
        observed_probability=0.01,
        expected=(ExpectedKey("4634/success", "4634", "success", 0.9),),
        window_size=10,
        top_g=9,
        approximation=TemplateMatch(
            "An account failed to log on as <*>", 3, "4625/failure", "An account failed <*>", 0.93
        ),
    )


def _paths(doc: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _paths(value, path + ".")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                out |= _paths(item, path + ".")
        else:
            out.add(path)
    return out


def test_every_document_field_is_in_the_strict_mapping() -> None:
    mapping = load_template("anomalies", "log-anomalies")["template"]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert _paths(anomaly_document(detection(), 3_000)) == mapped_fields(mapping["properties"])


def test_the_document_carries_event_model_reason_expectation_and_window() -> None:
    doc = anomaly_document(detection(), 3_000)
    assert doc["host"] == "h1" and doc["log_uuid"] == "uuid-1"
    assert doc["@timestamp"] == 2_000 and doc["detected_at"] == 3_000
    assert doc["event"] == {
        "id": "4625",
        "severity": "failure",
        "key": "4625/failure",
        "message": "An account failed to log on.",
        "index": "logs-a",
    }
    assert doc["model"]["name"] == "deeplog" and doc["model"]["version"].endswith("abcdef12")
    assert doc["observed"] == {"key": "4625/failure", "rank": 12, "probability": 0.01}
    assert doc["expected"][0]["key"] == "4634/success"
    assert doc["window"]["log_uuids"] == ["w0", "w1", "w2"]
    assert doc["window"]["padded"] == 7 and doc["window"]["start"] == 1_000


def test_long_messages_become_excerpts() -> None:
    doc = anomaly_document(detection("x" * 5_000), 3_000, message_excerpt_chars=100)
    assert len(doc["event"]["message"]) == 100


def test_ids_are_deterministic_per_model_and_event() -> None:
    assert anomaly_id("deeplog", "uuid-1") == anomaly_id("deeplog", "uuid-1")
    assert anomaly_id("deeplog", "uuid-1") != anomaly_id("loganomaly", "uuid-1")
    assert anomaly_id("deeplog", "uuid-1") != anomaly_id("deeplog", "uuid-2")
    assert len(anomaly_id("deeplog", "u" * 10_000).encode()) < 512


def test_an_approximated_key_names_the_matched_template_and_similarity() -> None:
    doc = anomaly_document(detection(), 3_000)
    assert doc["template"] == {
        "text": "An account failed to log on as <*>",
        "matched": True,
        "closest_key": "4625/failure",
        "closest_template": "An account failed <*>",
        "similarity": 0.93,
    }
