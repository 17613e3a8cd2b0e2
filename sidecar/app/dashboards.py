"""Saved objects for OpenSearch Dashboards and Kibana, and their import.

One definition serves both products (both read legacy `visualization`, `search`,
`index-pattern` and `dashboard` objects); `import_saved_objects` posts them as NDJSON to the
product's saved-objects import API.

The dashboard leads with incidents (the incident index, one document per group of anomalies
of one host close in time), ranked by grade; an incident's id links to its per-event anomaly
documents in Discover, and their log_uuids (and the incident's own) link to the raw events.
"""

from __future__ import annotations

import json
import uuid

from sidecar.app.dashboards_import import Product, import_saved_objects, ndjson
from sidecar.app.settings import Settings

__all__ = [
    "Product",
    "saved_objects",
    "ndjson",
    "import_saved_objects",
    "referenced_fields",
    "fields_by_index",
]

_NAMESPACE = uuid.UUID("6f0c7a55-5b1e-4b8e-9d0e-2f7c1a7e0b11")
DEFAULT_INCIDENT_INDEX: str = Settings.model_fields["incident_index"].default


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
    "incident_id",
    "model.name",
    "reason",
    "grade",
    "score",
    "event.key",
    "observed.rank",
    "expected.key",
    "event.message",
    "log_uuid",
    "window.log_uuids",
]
INCIDENT_COLUMNS = [
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
# Incident grade bands (0-100; a single event at the flagging threshold grades 50).
GRADE_BANDS = [
    {"from": 0, "to": 70, "label": "low (<70)"},
    {"from": 70, "to": 90, "label": "medium (70-90)"},
    {"from": 90, "label": "high (>=90)"},
]
# Fields of the incident index that hold raw-event log_uuids.
INCIDENT_LOG_FIELDS = [
    "log_uuids",
    "first_event.log_uuid",
    "last_event.log_uuid",
    "top_events.log_uuid",
]


def _discover_link(product: Product, query: str, index_id: str | None = None) -> str:
    """A Discover URL running a KQL query (on an index pattern, else the default one) over the
    last 30 days; `{{value}}` in the query is the clicked value (URL-encoded by the format)."""
    time = "time:(from:now-30d,to:now)"
    q = f"query:(language:kuery,query:'{query}')"
    if product == "kibana":
        index = f"index:'{index_id}'," if index_id else ""
        return f"/app/discover#/?_a=({index}{q})&_g=({time})"
    # OpenSearch Dashboards' Discover (2.10+) keeps the index pattern in _a.metadata and the
    # query in _q; the legacy _a.query is kept for versions before the data explorer.
    metadata = f"metadata:(indexPattern:'{index_id}',view:discover)," if index_id else ""
    return (
        f"/app/data-explorer/discover#/?_a=({metadata}{q})"
        f"&_q=(filters:!(),{q})&_g=(filters:!(),{time})"
    )


def _url_format(link: str) -> dict:
    return {"id": "url", "params": {"urlTemplate": link, "labelTemplate": "{{value}}"}}


def saved_objects(
    anomaly_index: str,
    raw_logs_pattern: str,
    product: Product,
    incident_index: str = DEFAULT_INCIDENT_INDEX,
    titles: tuple[str, str] | None = None,
) -> list[dict]:
    """Index patterns on `titles` (anomalies, incidents), visualizations, the two tables and a
    dashboard that leads with incidents; ids stable per anomaly index (re-imports overwrite)."""
    anomaly_title, incident_title = titles or (anomaly_index, incident_index)
    index_id = _id("index-pattern", anomaly_index)
    incidents_id = _id("incident-index-pattern", anomaly_index)
    # A click on a log_uuid opens the raw event in Discover on the watched indices; one on an
    # incident_id its per-event anomaly documents, and back.
    raw_link = _discover_link(product, 'log_uuid:"{{value}}"')
    events_link = _discover_link(product, 'incident_id:"{{value}}"', index_id)
    incident_link = _discover_link(product, 'incident_id:"{{value}}"', incidents_id)
    objects: list[dict] = [
        {
            "type": "index-pattern",
            "id": incidents_id,
            "attributes": {
                "title": incident_title,
                "timeFieldName": "@timestamp",
                "fieldFormatMap": json.dumps(
                    {
                        "incident_id": _url_format(events_link),
                        **{field: _url_format(raw_link) for field in INCIDENT_LOG_FIELDS},
                    }
                ),
            },
            "references": [],
        },
        {
            "type": "index-pattern",
            "id": index_id,
            "attributes": {
                "title": anomaly_title,
                "timeFieldName": "@timestamp",
                "fieldFormatMap": json.dumps(
                    {
                        "log_uuid": _url_format(raw_link),
                        "window.log_uuids": _url_format(raw_link),
                        "incident_id": _url_format(incident_link),
                    }
                ),
            },
            "references": [],
        },
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
    grade_bands = {
        "id": "3",
        "enabled": True,
        "type": "range",
        "schema": "group",
        "params": {"field": "grade", "ranges": GRADE_BANDS},
    }
    incident_visualizations = [
        (
            "incidents-over-time",
            _vis(
                "Incidents over time by grade band",
                "histogram",
                [COUNT, date_histogram, grade_bands],
                {"addLegend": True, "legendPosition": "right"},
                incidents_id,
            ),
        ),
        (
            "incidents-by-host",
            _vis(
                "Incidents by host and grade band",
                "horizontal_bar",
                [COUNT, _terms("2", "host", 20, "segment"), grade_bands],
                {"addLegend": True, "legendPosition": "right"},
                incidents_id,
            ),
        ),
    ]
    for name, vis in incident_visualizations + visualizations:
        objects.append({"type": "visualization", "id": _id(name, anomaly_index), **vis})
    incident_search_id = _id("incident-table", anomaly_index)
    objects.append(
        {
            "type": "search",
            "id": incident_search_id,
            "attributes": {
                "title": "Incidents by grade (incident_id opens its events)",
                "columns": INCIDENT_COLUMNS,
                "sort": [["grade", "desc"], ["@timestamp", "desc"]],
                "description": f"Events: {anomaly_title}; raw logs: {raw_logs_pattern}",
                "kibanaSavedObjectMeta": _search_source(),
            },
            "references": _index_reference(incidents_id),
        }
    )
    search_id = _id("anomaly-table", anomaly_index)
    objects.append(
        {
            "type": "search",
            "id": search_id,
            "attributes": {
                "title": "Anomaly events (incident, reason, expected events, raw log links)",
                "columns": TABLE_COLUMNS,
                "sort": [["@timestamp", "desc"]],
                "description": f"Raw logs: {raw_logs_pattern}",
                "kibanaSavedObjectMeta": _search_source(),
            },
            "references": _index_reference(index_id),
        }
    )
    panels, references = [], []
    # Incidents first (the table, then their distribution), the per-event drill-down below.
    layout = [
        (("search", incident_search_id), (0, 0, 48, 15)),
        (("visualization", _id("incidents-over-time", anomaly_index)), (0, 15, 24, 12)),
        (("visualization", _id("incidents-by-host", anomaly_index)), (24, 15, 24, 12)),
        (("visualization", _id("anomalies-over-time", anomaly_index)), (0, 27, 48, 12)),
        (("visualization", _id("top-hosts", anomaly_index)), (0, 39, 24, 15)),
        (("visualization", _id("score-distribution", anomaly_index)), (24, 39, 24, 15)),
        (("visualization", _id("expected-events", anomaly_index)), (0, 54, 24, 15)),
        (("search", search_id), (24, 54, 24, 15)),
    ]
    for i, ((kind, ref_id), (x, y, w, h)) in enumerate(layout):
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
                "title": "Log anomaly incidents",
                "description": (
                    "Incidents by grade, then their per-event anomaly documents and raw logs, "
                    "written by log-anomaly-sidecar"
                ),
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


def fields_by_index(objects: list[dict]) -> dict[str, set[str]]:
    """The fields the objects read, by the title of the index pattern they read them from:
    aggregation fields, columns, sorts, time fields and field formats."""
    titles = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    fields: dict[str, set[str]] = {title: set() for title in titles.values()}
    for obj in objects:
        attributes = obj["attributes"]
        if obj["type"] == "index-pattern":
            used = fields[attributes["title"]]
            used.add(attributes["timeFieldName"])
            used.update(json.loads(attributes["fieldFormatMap"]))
            continue
        index_ids = [r["id"] for r in obj["references"] if r["name"] == _INDEX_REF]
        if not index_ids:
            continue
        used = fields[titles[index_ids[0]]]
        if obj["type"] == "visualization":
            for agg in json.loads(attributes["visState"])["aggs"]:
                if "field" in agg["params"]:
                    used.add(agg["params"]["field"])
        elif obj["type"] == "search":
            used.update(attributes["columns"])
            used.update(column for column, _ in attributes["sort"])
    return fields


def referenced_fields(objects: list[dict], index: str | None = None) -> set[str]:
    """Every field the objects read from index pattern `index` (by title), or from any."""
    by_index = fields_by_index(objects)
    if index is not None:
        return by_index[index]
    return set().union(*by_index.values())
