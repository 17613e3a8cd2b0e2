"""Alert definitions on the incident index (sidecar/app/alerting.py): what they ask the
cluster, and that it is asked of fields the incident mapping has."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from sidecar.app.alerting import FIELDS, alert_definition, band_start, message_template
from sidecar.app.main import main

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "incidents.template.json"


def mapped_fields() -> dict[str, dict]:
    return json.loads(MAPPING.read_text())["template"]["mappings"]["properties"]


def test_every_field_an_alert_reads_is_mapped_with_a_type_it_can_filter_on() -> None:
    mapped = mapped_fields()
    assert {f: mapped[f]["type"] for f in FIELDS} == {
        "detected_at": "date",
        "grade": "float",
        "host": "keyword",
        "incident_id": "keyword",
        "first_event_at": "date",
        "event_count": "long",
    }


def test_the_monitor_counts_incidents_first_detected_in_its_period_at_the_band() -> None:
    monitor = alert_definition("opensearch", "my-incidents", "critical", period_minutes=10)
    search = monitor["inputs"][0]["search"]
    assert search["indices"] == ["my-incidents"]
    grade, detected = search["query"]["query"]["bool"]["filter"]
    assert grade == {"range": {"grade": {"gte": 90.0}}}
    assert detected["range"]["detected_at"] == {
        "gt": "{{period_end}}||-10m",
        "lte": "{{period_end}}",
        "format": "epoch_millis",
    }
    assert monitor["schedule"] == {"period": {"interval": 10, "unit": "MINUTES"}}
    trigger = monitor["triggers"][0]["query_level_trigger"]
    assert trigger["severity"] == "1"
    assert trigger["condition"]["script"]["source"] == "ctx.results[0].hits.total.value > 0"


def test_the_kibana_rule_leaves_out_what_its_previous_run_saw() -> None:
    rule = alert_definition("kibana", "my-incidents", "high", period_minutes=5)
    params = rule["params"]
    assert rule["rule_type_id"] == ".es-query"
    assert params["index"] == ["my-incidents"] and params["timeField"] == "detected_at"
    assert json.loads(params["esQuery"]) == {"query": {"range": {"grade": {"gte": 75.0}}}}
    assert (params["timeWindowSize"], params["timeWindowUnit"]) == (5, "m")
    assert params["excludeHitsFromPreviousRun"] is True


def test_bands_and_products_are_checked() -> None:
    assert [band_start(b) for b in ("low", "medium", "high", "critical")] == [0, 50, 75, 90]
    with pytest.raises(ValueError, match="unknown grade band 'severe'"):
        band_start("severe")
    with pytest.raises(ValueError, match="unknown product 'splunk'"):
        alert_definition("splunk", "i")
    assert "{{_source.host}}: grade {{_source.grade}}" in message_template("high")


def test_the_command_prints_the_definition_for_the_configured_incident_index(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIDECAR_INCIDENT_INDEX", "prod-incidents")
    assert main(["alerting", "--product", "kibana", "--band", "critical", "--every", "15"]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed["params"]["index"] == ["prod-incidents*"]  # every partition
    assert printed["schedule"] == {"interval": "15m"}
    assert json.loads(printed["params"]["esQuery"])["query"]["range"]["grade"]["gte"] == 90.0
