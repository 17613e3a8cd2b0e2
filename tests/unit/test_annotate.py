"""Anomaly documents: everything an analyst needs, and nothing the strict mapping rejects."""

from __future__ import annotations

from dataclasses import replace

from sidecar.cluster.bootstrap import load_template
from sidecar.pipeline.annotate import anomaly_document, anomaly_id
from sidecar.types import (
    ContentDeviation,
    Detection,
    ExpectedKey,
    LogEvent,
    NextStep,
    ParameterDeviation,
    ParameterValue,
    TemplateMatch,
    UnusualToken,
    WorkflowSummary,
)
from tests.helpers import mapped_fields, printed_by_fresh_interpreter

# A parameter-model verdict: its fields ride on the same test detection so that the mapping
# check covers them (a real detection has either this or a next-key expectation).
PARAMETERS = ParameterDeviation(
    values=(
        ParameterValue(
            "seconds_since_previous", "time since the host's previous event", None, 2.0, None
        ),
        ParameterValue("value_1", "number after 'took'", 5000.0, 120.5, 38.2),
    ),
    error=729.6,
    threshold=2.7,
    deviating="value_1",
)

# A content verdict, on the same test detection for the same reason.
CONTENT = ContentDeviation(
    surprise=9.1,
    threshold=5.3,
    forest_score=0.52,
    template_messages=3010,
    unseen=1,
    tokens=(UnusualToken("FAILED", "word", 4, 0, (("SUCCEEDED", 0.97), ("RUNNING", 0.03))),),
)


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
        workflow=WorkflowSummary(
            group="h",
            from_key="4624/success",
            path_before=("4624/success",) * 3,
            expected_next=(NextStep("4672/success", 0.8), NextStep("4634/success", 0.2)),
            expected_path=("4672/success", "4688/success"),
            observed_transition_seen=False,
        ),
        parameters=PARAMETERS,
        content=CONTENT,
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
    # `feedback` is the analysts' part of the document: set from Dashboards, never by a cycle.
    written_by_sidecar = {
        f for f in mapped_fields(mapping["properties"]) if not f.startswith("feedback.")
    }
    assert _paths(anomaly_document(detection(), 3_000)) == written_by_sidecar


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


# Ids every process must agree on: a cycle redone by a restarted or another replica overwrites
# the documents it wrote before instead of duplicating them.
PINNED_IDS = {
    ("deeplog", "uuid-1"): "deeplog-1b95bc50c157d62c759f67e139e85c4484fd00ea",
    ("loganomaly", "uuid-1"): "loganomaly-1b95bc50c157d62c759f67e139e85c4484fd00ea",
    ("deeplog", "uuid-2"): "deeplog-64997a1c0d804413196a4fa5c704476c76692c33",
}


def test_ids_are_the_same_in_every_process() -> None:
    assert {key: anomaly_id(*key) for key in PINNED_IDS} == PINNED_IDS
    code = (
        "import json; from sidecar.pipeline.annotate import anomaly_id; "
        f"print(json.dumps([anomaly_id(m, u) for m, u in {list(PINNED_IDS)!r}]))"
    )
    for seed in (1, 2):
        assert printed_by_fresh_interpreter(code, seed) == list(PINNED_IDS.values()), seed


def test_ids_are_deterministic_per_model_and_event() -> None:
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


def test_the_workflow_summary_names_the_group_the_expected_path_and_the_broken_transition() -> None:
    doc = anomaly_document(detection(), 3_000)
    assert doc["workflow"] == {
        "group": "h",
        "from_key": "4624/success",
        "path_before": ["4624/success"] * 3,
        "expected_next": [
            {"key": "4672/success", "probability": 0.8},
            {"key": "4634/success", "probability": 0.2},
        ],
        "expected_path": ["4672/success", "4688/success"],
        "observed_transition_seen": False,
    }


def test_a_detection_without_a_workflow_summary_has_no_workflow_field() -> None:
    bare = replace(detection(), workflow=None)
    assert "workflow" not in anomaly_document(bare, 3_000)


def test_a_parameter_verdict_shows_each_value_observed_and_expected_with_the_threshold() -> None:
    doc = anomaly_document(detection(), 3_000)
    assert doc["parameters"] == {
        "error": 729.6,
        "threshold": 2.7,
        "deviating": "value_1",
        "values": [
            {
                "name": "seconds_since_previous",
                "source": "time since the host's previous event",
                "observed": None,
                "expected": 2.0,
                "deviation": None,
            },
            {
                "name": "value_1",
                "source": "number after 'took'",
                "observed": 5000.0,
                "expected": 120.5,
                "deviation": 38.2,
            },
        ],
    }
    assert "parameters" not in anomaly_document(replace(detection(), parameters=None), 3_000)
