"""Dashboards / Kibana saved objects: they only use fields the anomaly mapping has, they hang
together, and the import request is what each product's API expects."""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sidecar.cli import main as cli_main
from sidecar.cluster.bootstrap import load_template
from sidecar.dashboards import ndjson, referenced_fields, saved_objects
from tests.helpers import mapped_fields

PRODUCTS = ["opensearch-dashboards", "kibana"]


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_field_the_objects_use_is_in_the_anomaly_mapping(product: str) -> None:
    mapping = load_template("anomalies", "log-anomalies")["template"]["mappings"]["properties"]
    used = referenced_fields(saved_objects("log-anomalies", "logs-*", product))
    assert used, "objects reference no fields"
    assert used <= mapped_fields(mapping), used - mapped_fields(mapping)


@pytest.mark.parametrize("product", PRODUCTS)
def test_objects_reference_each_other_consistently_and_ids_are_stable(product: str) -> None:
    objects = saved_objects("log-anomalies", "logs-*", product)
    ids = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, ref
    (dashboard,) = [o for o in objects if o["type"] == "dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}
    assert len(panels) == 5
    kinds = {o["type"] for o in objects}
    assert kinds == {"index-pattern", "visualization", "search", "dashboard"}
    assert [o["id"] for o in objects] == [
        o["id"] for o in saved_objects("log-anomalies", "x", product)
    ]
    pattern = next(o for o in objects if o["type"] == "index-pattern")
    link = json.loads(pattern["attributes"]["fieldFormatMap"])["log_uuid"]["params"]["urlTemplate"]
    assert "log_uuid" in link and "{{value}}" in link


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
    assert printed == ndjson(saved_objects("log-anomalies", "logs-*", "kibana"))
