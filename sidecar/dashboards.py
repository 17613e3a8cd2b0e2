"""Saved objects for OpenSearch Dashboards and Kibana, and their import.

One definition serves both products (both read legacy `visualization`, `search`,
`index-pattern` and `dashboard` objects); `import_saved_objects` posts them as NDJSON to the
product's saved-objects import API.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Literal

__all__ = ["Product", "saved_objects", "ndjson", "import_saved_objects", "referenced_fields"]

Product = Literal["opensearch-dashboards", "kibana"]
XSRF_HEADER = {"opensearch-dashboards": "osd-xsrf", "kibana": "kbn-xsrf"}
_NAMESPACE = uuid.UUID("6f0c7a55-5b1e-4b8e-9d0e-2f7c1a7e0b11")


def _id(name: str, index: str) -> str:
    """Stable ids per anomaly index: re-importing overwrites instead of duplicating."""
    return str(uuid.uuid5(_NAMESPACE, f"{index}/{name}"))


_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _search_source() -> dict[str, str]:
    """An empty query on the object's index pattern (referenced by name, as both products do)."""
    source = {"indexRefName": _INDEX_REF, "query": {"query": "", "language": "kuery"}, "filter": []}
    return {"searchSourceJSON": json.dumps(source)}


def _index_reference(index_id: str) -> list[dict[str, str]]:
    return [{"name": _INDEX_REF, "type": "index-pattern", "id": index_id}]


def _vis(title: str, vis_type: str, aggs: list[dict], params: dict, index_id: str) -> dict:
    state = {"title": title, "type": vis_type, "aggs": aggs, "params": params}
    return {
        "attributes": {
            "title": title,
            "visState": json.dumps(state),
            "uiStateJSON": "{}",
            "description": "",
            "version": 1,
            "kibanaSavedObjectMeta": _search_source(),
        },
        "references": _index_reference(index_id),
    }


def _terms(agg_id: str, field: str, size: int, schema: str) -> dict:
    return {
        "id": agg_id,
        "enabled": True,
        "type": "terms",
        "schema": schema,
        "params": {"field": field, "size": size, "order": "desc", "orderBy": "1"},
    }


COUNT = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}
TABLE_COLUMNS = [
    "host",
    "model.name",
    "reason",
    "score",
    "event.key",
    "observed.rank",
    "expected.key",
    "event.message",
    "log_uuid",
    "window.log_uuids",
]


def saved_objects(anomaly_index: str, raw_logs_pattern: str, product: Product) -> list[dict]:
    """Index pattern, visualizations, the anomaly table and a dashboard combining them."""
    index_id = _id("index-pattern", anomaly_index)
    discover = "app/discover" if product == "kibana" else "app/data-explorer/discover"
    # A click on a log_uuid opens the raw event in Discover on the watched indices.
    raw_link = (
        f"/{discover}#/?_a=(query:(language:kuery,query:'log_uuid:\"{{{{value}}}}\"'))"
        f"&_g=(time:(from:now-30d,to:now))"
    )
    objects: list[dict] = [
        {
            "type": "index-pattern",
            "id": index_id,
            "attributes": {
                "title": anomaly_index,
                "timeFieldName": "@timestamp",
                "fieldFormatMap": json.dumps(
                    {
                        "log_uuid": {
                            "id": "url",
                            "params": {"urlTemplate": raw_link, "labelTemplate": "{{value}}"},
                        },
                        "window.log_uuids": {
                            "id": "url",
                            "params": {"urlTemplate": raw_link, "labelTemplate": "{{value}}"},
                        },
                    }
                ),
            },
            "references": [],
        }
    ]
    date_histogram = {
        "id": "2",
        "enabled": True,
        "type": "date_histogram",
        "schema": "segment",
        "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1},
    }
    visualizations = [
        (
            "anomalies-over-time",
            _vis(
                "Anomalies over time by host and model",
                "histogram",
                [
                    COUNT,
                    date_histogram,
                    _terms("3", "host", 10, "group"),
                    _terms("4", "model.name", 5, "split"),
                ],
                {"addLegend": True, "legendPosition": "right", "row": True},
                index_id,
            ),
        ),
        (
            "top-hosts",
            _vis(
                "Top anomalous hosts",
                "horizontal_bar",
                [COUNT, _terms("2", "host", 20, "segment"), _terms("3", "reason", 5, "group")],
                {"addLegend": True, "legendPosition": "right"},
                index_id,
            ),
        ),
        (
            "score-distribution",
            _vis(
                "Anomaly score distribution",
                "histogram",
                [
                    COUNT,
                    {
                        "id": "2",
                        "enabled": True,
                        "type": "histogram",
                        "schema": "segment",
                        "params": {"field": "score", "interval": 0.05, "min_doc_count": False},
                    },
                    _terms("3", "model.name", 5, "group"),
                ],
                {"addLegend": True, "legendPosition": "right"},
                index_id,
            ),
        ),
        (
            "expected-events",
            _vis(
                "Expected instead of the anomalous event",
                "table",
                [
                    COUNT,
                    _terms("2", "event.key", 20, "bucket"),
                    _terms("3", "expected.key", 5, "bucket"),
                ],
                {"perPage": 20},
                index_id,
            ),
        ),
    ]
    for name, vis in visualizations:
        objects.append({"type": "visualization", "id": _id(name, anomaly_index), **vis})
    search_id = _id("anomaly-table", anomaly_index)
    objects.append(
        {
            "type": "search",
            "id": search_id,
            "attributes": {
                "title": "Anomalies (reason, expected events, raw log links)",
                "columns": TABLE_COLUMNS,
                "sort": [["@timestamp", "desc"]],
                "description": f"Raw logs: {raw_logs_pattern}",
                "kibanaSavedObjectMeta": _search_source(),
            },
            "references": _index_reference(index_id),
        }
    )
    panels, references = [], []
    layout = [(0, 0, 48, 12), (0, 12, 24, 15), (24, 12, 24, 15), (0, 27, 24, 15), (24, 27, 24, 15)]
    members = [("visualization", _id(n, anomaly_index)) for n, _ in visualizations[:1]]
    members += [("visualization", _id(n, anomaly_index)) for n, _ in visualizations[1:3]]
    members += [("visualization", _id(visualizations[3][0], anomaly_index)), ("search", search_id)]
    for i, ((kind, ref_id), (x, y, w, h)) in enumerate(zip(members, layout, strict=True)):
        panel_ref = f"panel_{i}"
        panels.append(
            {
                "panelIndex": str(i + 1),
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
                "embeddableConfig": {},
                "panelRefName": panel_ref,
                "version": "7.10.2",
            }
        )
        references.append({"name": panel_ref, "type": kind, "id": ref_id})
    objects.append(
        {
            "type": "dashboard",
            "id": _id("dashboard", anomaly_index),
            "attributes": {
                "title": "Log anomalies",
                "description": "DeepLog / LogAnomaly annotations written by log-anomaly-sidecar",
                "panelsJSON": json.dumps(panels),
                "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
                "timeRestore": True,
                "timeFrom": "now-24h",
                "timeTo": "now",
                "kibanaSavedObjectMeta": {
                    "searchSourceJSON": json.dumps(
                        {"query": {"query": "", "language": "kuery"}, "filter": []}
                    )
                },
            },
            "references": references,
        }
    )
    return objects


def referenced_fields(objects: list[dict]) -> set[str]:
    """Every anomaly-index field the objects read: aggregation fields, columns, sorts, formats."""
    fields: set[str] = set()
    for obj in objects:
        attributes = obj["attributes"]
        if obj["type"] == "visualization":
            for agg in json.loads(attributes["visState"])["aggs"]:
                if "field" in agg["params"]:
                    fields.add(agg["params"]["field"])
        elif obj["type"] == "search":
            fields.update(attributes["columns"])
            fields.update(column for column, _ in attributes["sort"])
        elif obj["type"] == "index-pattern":
            fields.add(attributes["timeFieldName"])
            fields.update(json.loads(attributes["fieldFormatMap"]))
    return fields


def ndjson(objects: list[dict]) -> bytes:
    return b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objects)


@dataclass(frozen=True, slots=True)
class ImportResult:
    success: bool
    count: int
    errors: list[dict]


def import_saved_objects(
    url: str,
    product: Product,
    objects: list[dict],
    *,
    username: str | None = None,
    password: str | None = None,
    api_key: str | None = None,
    ca_bundle: str | None = None,
    verify: bool = True,
    space: str | None = None,
    timeout_s: float = 60,
) -> ImportResult:
    """POST the objects to `<url>[/s/<space>]/api/saved_objects/_import?overwrite=true`."""
    boundary = f"----sidecar{uuid.uuid4().hex}"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="log-anomalies.ndjson"\r\n'
            "Content-Type: application/ndjson\r\n\r\n"
        ).encode()
        + ndjson(objects)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    prefix = f"/s/{space}" if space and product == "kibana" else ""
    request = urllib.request.Request(
        f"{url.rstrip('/')}{prefix}/api/saved_objects/_import?overwrite=true",
        data=body,
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            XSRF_HEADER[product]: "true",
        },
    )
    if username and password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    elif api_key:
        request.add_header("Authorization", f"ApiKey {api_key}")
    context = (
        ssl.create_default_context(cafile=ca_bundle) if verify else ssl._create_unverified_context()
    )  # noqa: S323
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise RuntimeError(f"{product} refused the import ({exc.code}): {detail}") from None
    return ImportResult(
        bool(answer.get("success")),
        int(answer.get("successCount", 0)),
        list(answer.get("errors", [])),
    )
