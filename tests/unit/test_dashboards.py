"""Dashboards / Kibana saved objects: they only use fields the mapping of the index they read
has (incidents, anomalies), they hang together, the dashboard leads with the incidents and
drills down to their events and raw logs, and the import request is what each product's API
expects."""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sidecar.app.dashboards import (
    DEFAULT_INCIDENT_INDEX,
    fields_by_index,
    ndjson,
    referenced_fields,
    saved_objects,
)
from sidecar.app.main import main as cli_main
from sidecar.cluster.bootstrap import load_template
from tests.helpers import mapped_fields

PRODUCTS = ["opensearch-dashboards", "kibana"]


MAPPINGS = {"log-anomalies": "anomalies", "log-anomaly-incidents": "incidents"}
# Field types a terms / range / histogram aggregation or a sort can use.
AGGREGATABLE = {"keyword", "long", "integer", "float", "double", "date", "boolean"}


def _properties(index: str) -> dict:
    return load_template(MAPPINGS[index], index)["template"]["mappings"]["properties"]


def _types(properties: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for name, spec in properties.items():
        if "properties" in spec:
            out |= _types(spec["properties"], f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = spec["type"]
    return out


def _by_title(objects: list[dict], kind: str, title: str) -> dict:
    (obj,) = [o for o in objects if o["type"] == kind and o["attributes"]["title"] == title]
    return obj


def _formats(pattern: dict) -> dict[str, str]:
    """field -> URL template of the index pattern's link formats."""
    formats = json.loads(pattern["attributes"]["fieldFormatMap"])
    assert {f["id"] for f in formats.values()} == {"url"}
    return {field: f["params"]["urlTemplate"] for field, f in formats.items()}


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_field_the_objects_use_is_in_the_mapping_of_the_index_they_read(
    product: str,
) -> None:
    by_index = fields_by_index(saved_objects("log-anomalies", "logs-*", product))
    assert set(by_index) == {"log-anomalies", "log-anomaly-incidents"}
    for index, used in by_index.items():
        mapped = mapped_fields(_properties(index))
        assert used, f"objects reference no fields of {index}"
        assert used <= mapped, (index, used - mapped)
    # The incident objects read the incident index, not the anomaly index (and back): the
    # fields only one of them has pin which pattern each object is attached to.
    assert {"confidence", "event_count", "first_event_at", "models", "keys"} <= by_index[
        "log-anomaly-incidents"
    ]
    assert {"model.name", "event.key", "score", "window.log_uuids"} <= by_index["log-anomalies"]
    assert referenced_fields(saved_objects("log-anomalies", "logs-*", product)) == set().union(
        *by_index.values()
    )


@pytest.mark.parametrize("product", PRODUCTS)
def test_aggregated_and_sorted_fields_are_aggregatable(product: str) -> None:
    """A terms, range or histogram aggregation or a sort on a text field fails at query
    time in both products; the strict mappings say which fields can take one."""
    objects = saved_objects("log-anomalies", "logs-*", product)
    titles = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    checked = 0
    for obj in objects:
        if obj["type"] not in ("visualization", "search"):
            continue
        (ref,) = obj["references"]
        types = _types(_properties(titles[ref["id"]]))
        if obj["type"] == "visualization":
            fields = [
                a["params"]["field"]
                for a in json.loads(obj["attributes"]["visState"])["aggs"]
                if "field" in a["params"]
            ]
        else:
            fields = [column for column, _ in obj["attributes"]["sort"]]
        for field in fields:
            assert types[field] in AGGREGATABLE, (obj["attributes"]["title"], field)
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize("product", PRODUCTS)
def test_objects_reference_each_other_consistently_and_ids_are_stable(product: str) -> None:
    objects = saved_objects("log-anomalies", "logs-*", product)
    ids = [(o["type"], o["id"]) for o in objects]
    assert len(set(ids)) == len(ids) == 11
    assert len({o["id"] for o in objects}) == 11
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, ref
    (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
    assert dashboard["attributes"]["title"] == "Log anomaly incidents"
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}
    assert len(panels) == 8
    assert len({p["panelIndex"] for p in panels}) == 8
    # Every visualization and search is on the dashboard.
    assert {r["id"] for r in dashboard["references"]} == {
        o["id"] for o in objects if o["type"] in ("visualization", "search")
    }
    kinds = {o["type"] for o in objects}
    assert kinds == {"index-pattern", "visualization", "search", "dashboard"}
    assert [o["id"] for o in objects] == [
        o["id"] for o in saved_objects("log-anomalies", "x", product)
    ]
    # Another anomaly index (another deployment) gets its own objects: no id is shared.
    other = {o["id"] for o in saved_objects("other-anomalies", "logs-*", product)}
    assert not other & {o["id"] for o in objects}
    pattern = _by_title(objects, "index-pattern", "log-anomalies")
    link = _formats(pattern)["log_uuid"]
    assert "log_uuid" in link and "{{value}}" in link


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_dashboard_leads_with_the_incident_table_ranked_by_grade(product: str) -> None:
    objects = saved_objects("log-anomalies", "logs-*", product)
    incidents = _by_title(objects, "index-pattern", "log-anomaly-incidents")
    assert incidents["attributes"]["timeFieldName"] == "@timestamp"
    table = _by_title(objects, "search", "Incidents by grade (incident_id opens its events)")
    assert table["references"] == [
        {
            "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            "type": "index-pattern",
            "id": incidents["id"],
        }
    ]
    assert table["attributes"]["columns"] == [
        "host",
        "grade",
        "confidence",
        "first_event_at",
        "last_event_at",
        "event_count",
        "models",
        "reasons",
        "keys",
        "incident_id",
    ]
    assert table["attributes"]["sort"][0] == ["grade", "desc"]
    (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    top = min(panels, key=lambda p: (p["gridData"]["y"], p["gridData"]["x"]))
    assert refs[top["panelRefName"]] == {
        "name": top["panelRefName"],
        "type": "search",
        "id": table["id"],
    }
    assert top["gridData"] == {"x": 0, "y": 0, "w": 48, "h": 15, "i": top["panelIndex"]}
    # The incident panels come before every panel on the anomaly (per-event) index.
    anomaly_pattern = _by_title(objects, "index-pattern", "log-anomalies")["id"]
    on_anomalies = {
        o["id"] for o in objects if o["references"] and o["references"][0]["id"] == anomaly_pattern
    }
    on_incidents = {
        o["id"] for o in objects if o["references"] and o["references"][0]["id"] == incidents["id"]
    }
    assert len(on_incidents) == 3 and len(on_anomalies) == 5
    rows = {refs[p["panelRefName"]]["id"]: p["gridData"]["y"] for p in panels}
    assert max(rows[i] for i in on_incidents) < min(rows[i] for i in on_anomalies)
    # No two panels overlap on the 48-column grid.
    cells = [
        (x, y)
        for p in panels
        for x in range(p["gridData"]["x"], p["gridData"]["x"] + p["gridData"]["w"])
        for y in range(p["gridData"]["y"], p["gridData"]["y"] + p["gridData"]["h"])
    ]
    assert len(cells) == len(set(cells)) and max(x for x, _ in cells) == 47


@pytest.mark.parametrize("product", PRODUCTS)
def test_incidents_are_counted_by_grade_band(product: str) -> None:
    objects = saved_objects("log-anomalies", "logs-*", product)
    for title in ("Incidents over time by grade band", "Incidents by host and grade band"):
        state = json.loads(_by_title(objects, "visualization", title)["attributes"]["visState"])
        (band,) = [a for a in state["aggs"] if a["type"] == "range"]
        assert band["params"]["field"] == "grade"
        assert [(r["from"], r.get("to")) for r in band["params"]["ranges"]] == [
            (0, 70),
            (70, 90),
            (90, None),
        ]
    by_host = json.loads(
        _by_title(objects, "visualization", "Incidents by host and grade band")["attributes"][
            "visState"
        ]
    )
    assert [(a["type"], a["params"].get("field")) for a in by_host["aggs"]] == [
        ("count", None),
        ("terms", "host"),
        ("range", "grade"),
    ]


@pytest.mark.parametrize("product", PRODUCTS)
def test_an_incident_drills_down_to_its_events_and_raw_logs(product: str) -> None:
    objects = saved_objects("log-anomalies", "logs-*", product)
    incidents = _by_title(objects, "index-pattern", "log-anomaly-incidents")
    anomalies = _by_title(objects, "index-pattern", "log-anomalies")
    discover = "/app/discover#/" if product == "kibana" else "/app/data-explorer/discover#/"
    links = _formats(incidents)
    assert set(links) == {
        "incident_id",
        "log_uuids",
        "first_event.log_uuid",
        "last_event.log_uuid",
        "top_events.log_uuid",
    }
    # incident_id -> the incident's per-event documents on the anomaly index pattern.
    events = links["incident_id"]
    assert events.startswith(discover)
    assert f"'{anomalies['id']}'" in events
    assert "query:'incident_id:\"{{value}}\"'" in events
    # Its member events -> the raw logs (no index pattern: the watched indices' default).
    for field in ("log_uuids", "first_event.log_uuid", "top_events.log_uuid"):
        assert links[field].startswith(discover)
        assert "query:'log_uuid:\"{{value}}\"'" in links[field]
        assert anomalies["id"] not in links[field]
    # And back: an anomaly document's incident_id opens its incident.
    back = _formats(anomalies)
    assert f"'{incidents['id']}'" in back["incident_id"]
    assert "query:'incident_id:\"{{value}}\"'" in back["incident_id"]
    assert back["log_uuid"] == back["window.log_uuids"] == links["log_uuids"]
    if product == "opensearch-dashboards":
        # The data explorer reads the query from _q and the index pattern from _a.metadata.
        assert "&_q=(filters:!(),query:(language:kuery,query:'incident_id:" in events
        assert f"metadata:(indexPattern:'{anomalies['id']}',view:discover)" in events
    else:
        assert f"_a=(index:'{anomalies['id']}',query:(language:kuery," in events
    # The per-event table shows which incident an event belongs to, and its grade.
    table = _by_title(
        objects, "search", "Anomaly events (incident, reason, expected events, raw log links)"
    )
    assert {"incident_id", "grade", "log_uuid"} <= set(table["attributes"]["columns"])


def test_the_incident_index_is_the_one_configured() -> None:
    default = saved_objects("log-anomalies", "logs-*", "kibana")
    custom = saved_objects("log-anomalies", "logs-*", "kibana", incident_index="soc-incidents")
    assert _by_title(default, "index-pattern", "log-anomaly-incidents")
    pattern = _by_title(custom, "index-pattern", "soc-incidents")
    # Ids stay those of the anomaly index: a re-import with another incident index
    # overwrites the same objects instead of leaving a second set behind.
    assert [o["id"] for o in custom] == [o["id"] for o in default]
    assert pattern["id"] == _by_title(default, "index-pattern", "log-anomaly-incidents")["id"]
    assert DEFAULT_INCIDENT_INDEX == "log-anomaly-incidents"


class Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []
    answer: dict = {"success": True, "successCount": 7}

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        payload = json.dumps(Recorder.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dashboards_server(monkeypatch: pytest.MonkeyPatch):
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)
    Recorder.requests = []
    Recorder.answer = {"success": True, "successCount": 7}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_kibana_import_is_a_well_formed_multipart_ndjson_post(
    dashboards_server: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("SIDECAR_USERNAME", "importer")
    monkeypatch.setenv("SIDECAR_PASSWORD", "s3cret")
    code = cli_main(
        ["dashboards", "--product", "kibana", "--url", dashboards_server, "--space", "security"]
    )
    assert code == 0
    (request,) = Recorder.requests
    assert request["path"] == "/s/security/api/saved_objects/_import?overwrite=true"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["kbn-xsrf"] == "true"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"importer:s3cret").decode()
    boundary = headers["content-type"].split("boundary=")[1]
    body = request["body"]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(
        f"--{boundary}--\r\n".encode()
    )
    assert b'name="file"; filename="log-anomalies.ndjson"' in body
    lines = body.split(b"\r\n\r\n", 1)[1].rsplit(f"\r\n--{boundary}--".encode(), 1)[0].splitlines()
    objects = [json.loads(line) for line in lines]
    assert {o["type"] for o in objects} == {"index-pattern", "visualization", "search", "dashboard"}
    assert "imported 7 saved objects" in capsys.readouterr().out


def test_the_opensearch_dashboards_import_uses_its_own_header_and_path(
    dashboards_server: str,
) -> None:
    assert cli_main(["dashboards", "--url", dashboards_server]) == 0
    (request,) = Recorder.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    assert headers["osd-xsrf"] == "true" and "authorization" not in headers


def test_a_rejected_import_exits_non_zero_with_the_errors(dashboards_server: str, capsys) -> None:
    Recorder.answer = {
        "success": False,
        "successCount": 0,
        "errors": [{"id": "x", "error": {"type": "conflict"}}],
    }
    assert cli_main(["dashboards", "--url", dashboards_server]) == 1
    assert "conflict" in capsys.readouterr().err


def test_without_a_url_the_objects_are_printed_as_ndjson(capsysbinary) -> None:
    assert cli_main(["dashboards", "--product", "kibana"]) == 0
    printed = capsysbinary.readouterr().out
    # The index patterns match every partition of the results.
    titles = ("log-anomalies*", "log-anomaly-incidents*")
    assert printed == ndjson(saved_objects("log-anomalies", "logs-*", "kibana", titles=titles))


def test_the_cli_uses_the_configured_incident_index(
    monkeypatch: pytest.MonkeyPatch, capsysbinary
) -> None:
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SIDECAR_INCIDENT_INDEX", "soc-incidents")
    assert cli_main(["dashboards", "--product", "kibana"]) == 0
    printed = capsysbinary.readouterr().out
    assert printed == ndjson(
        saved_objects(
            "log-anomalies",
            "logs-*",
            "kibana",
            incident_index="soc-incidents",
            titles=("log-anomalies*", "soc-incidents*"),
        )
    )
