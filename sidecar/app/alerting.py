"""Alert definitions on the incident index for the alerting people already run beside their
cluster: an OpenSearch Alerting monitor and a Kibana rule (pure: settings in, JSON out).

Both alert on incidents, not on anomaly documents, so one brute force is one alert: each run
counts the incidents first detected in its period whose grade reaches the band asked for
(`detected_at` is when the sidecar first wrote the incident; later revisions keep it). An
incident raised into the band after its first period is not alerted again here; the chart's
PrometheusRule counts band entries too (sidecar_incident_grades_total{band}).
"""

from __future__ import annotations

import json

from sidecar.pipeline.incidents import GRADE_BANDS

__all__ = ["PRODUCTS", "alert_definition", "band_start", "message_template"]

PRODUCTS = ("opensearch", "kibana")
# The incident fields an alert reads; each exists in mappings/incidents.template.json.
FIELDS = ("detected_at", "grade", "host", "incident_id", "first_event_at", "event_count")


def band_start(band: str) -> float:
    for name, start in GRADE_BANDS:
        if name == band:
            return start
    raise ValueError(f"unknown grade band {band!r}; choose from {[n for n, _ in GRADE_BANDS]}")


def _title(band: str) -> str:
    return f"Log anomaly incidents, grade {band} and above"


def message_template(band: str) -> str:
    """A mustache message for an OpenSearch Alerting action on the monitor."""
    return (
        f"New log anomaly incidents of grade {band} or above: "
        "{{ctx.results.0.hits.total.value}}.\n"
        "{{#ctx.results.0.hits.hits}}- {{_source.host}}: grade {{_source.grade}}, "
        "{{_source.event_count}} events from {{_source.first_event_at}} "
        "(incident {{_source.incident_id}})\n{{/ctx.results.0.hits.hits}}"
    )


def opensearch_monitor(incident_index: str, band: str, period_minutes: int) -> dict[str, object]:
    """A query-level monitor for the OpenSearch Alerting plugin (POST
    _plugins/_alerting/monitors). Its action's destination is the operator's to add."""
    return {
        "type": "monitor",
        "monitor_type": "query_level_monitor",
        "name": _title(band),
        "enabled": True,
        "schedule": {"period": {"interval": period_minutes, "unit": "MINUTES"}},
        "inputs": [
            {
                "search": {
                    "indices": [incident_index],
                    "query": {
                        "size": 20,
                        "_source": list(FIELDS),
                        "sort": [{"grade": {"order": "desc"}}],
                        "query": {
                            "bool": {
                                "filter": [
                                    {"range": {"grade": {"gte": band_start(band)}}},
                                    {
                                        "range": {
                                            "detected_at": {
                                                "gt": f"{{{{period_end}}}}||-{period_minutes}m",
                                                "lte": "{{period_end}}",
                                                "format": "epoch_millis",
                                            }
                                        }
                                    },
                                ]
                            }
                        },
                    },
                }
            }
        ],
        "triggers": [
            {
                "query_level_trigger": {
                    "name": f"new incidents of grade {band} or above",
                    "severity": "1" if band == "critical" else "2",
                    "condition": {
                        "script": {
                            "source": "ctx.results[0].hits.total.value > 0",
                            "lang": "painless",
                        }
                    },
                    # Alerts show in the Alerting UI; a notification channel is the operator's
                    # to add (README gives a message template).
                    "actions": [],
                }
            }
        ],
    }


def kibana_rule(incident_index: str, band: str, period_minutes: int) -> dict[str, object]:
    """An Elasticsearch query rule for Kibana (POST api/alerting/rule); hits of the previous
    run are left out, so an incident alerts once."""
    return {
        "name": _title(band),
        "rule_type_id": ".es-query",
        "consumer": "alerts",
        "schedule": {"interval": f"{period_minutes}m"},
        "tags": ["log-anomaly-sidecar"],
        "params": {
            "searchType": "esQuery",
            "index": [incident_index],
            "timeField": "detected_at",
            "esQuery": json.dumps({"query": {"range": {"grade": {"gte": band_start(band)}}}}),
            "size": 20,
            "thresholdComparator": ">",
            "threshold": [0],
            "timeWindowSize": period_minutes,
            "timeWindowUnit": "m",
            "excludeHitsFromPreviousRun": True,
        },
        "actions": [],
    }


def alert_definition(
    product: str, incident_index: str, band: str = "high", period_minutes: int = 5
) -> dict[str, object]:
    if product == "opensearch":
        return opensearch_monitor(incident_index, band, period_minutes)
    if product == "kibana":
        return kibana_rule(incident_index, band, period_minutes)
    raise ValueError(f"unknown product {product!r}; choose from {list(PRODUCTS)}")
