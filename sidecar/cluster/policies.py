"""Retention by the cluster's own lifecycle plugin, for clusters that prefer it to the sidecar's:
an ISM policy (OpenSearch) or an ILM policy (Elasticsearch) that deletes old partitions.

Neither plugin is in the test nodes (their distributions are not on Maven Central), so the
bodies follow the published APIs (OpenSearch "Index State Management" policies, Elasticsearch
"Create or update lifecycle policy") and are checked against that shape only. Installing on a
cluster without the plugin fails with a message that says so.
"""

from __future__ import annotations

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from sidecar.errors import ConfigError

__all__ = ["ilm_policy", "ism_policy", "install_policy", "policy_name"]

_ISM = "/_plugins/_ism/policies/"
_ILM = "/_ilm/policy/"


def policy_name(anomaly_index: str) -> str:
    return f"{anomaly_index}-retention"


def delete_after_days(retention_days: int) -> int:
    # A partition is named by its first day; its last event may be a day younger. Matches the
    # sidecar's own rule (a daily partition goes once its whole day is past the retention).
    return retention_days + 1


def ism_policy(patterns: list[str], retention_days: int) -> dict[str, object]:
    """ISM ages an index from its creation, not its name: a partition a late event creates is
    kept up to RETENTION_DAYS longer than one created on its own day."""
    return {
        "policy": {
            "description": "log-anomaly-sidecar: delete result partitions past the retention",
            "default_state": "keep",
            "states": [
                {
                    "name": "keep",
                    "actions": [],
                    "transitions": [
                        {
                            "state_name": "delete",
                            "conditions": {
                                "min_index_age": f"{delete_after_days(retention_days)}d"
                            },
                        }
                    ],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": patterns, "priority": 100}],
        }
    }


def ilm_policy(retention_days: int) -> dict[str, object]:
    """With `index.lifecycle.parse_origination_date` on the partitions (bootstrap.py), ILM's
    min_age counts from the date in the partition's name."""
    return {
        "policy": {
            "_meta": {"owner": "log-anomaly-sidecar"},
            "phases": {
                "hot": {"min_age": "0ms", "actions": {}},
                "delete": {
                    "min_age": f"{delete_after_days(retention_days)}d",
                    "actions": {"delete": {}},
                },
            },
        }
    }


def install_policy(
    client: OpenSearch, by: str, name: str, patterns: list[str], retention_days: int
) -> None:
    """Creates or replaces the policy; ConfigError when the cluster lacks the plugin."""
    transport = client.transport
    try:
        if by == "ilm":
            transport.perform_request("PUT", _ILM + name, body=ilm_policy(retention_days))
            return
        params = {}
        try:
            found = transport.perform_request("GET", _ISM + name)
            # ISM refuses to overwrite a policy without the version it replaces.
            params = {"if_seq_no": found["_seq_no"], "if_primary_term": found["_primary_term"]}
        except NotFoundError as exc:
            if "policy" not in str(exc.info).lower():
                raise
        body = ism_policy(patterns, retention_days)
        transport.perform_request("PUT", _ISM + name, body=body, params=params)
    except (NotFoundError, RequestError) as exc:
        plugin = "ILM" if by == "ilm" else "ISM (the Index State Management plugin)"
        raise ConfigError(
            f"SIDECAR_RETENTION_BY={by}: the cluster refused the {plugin} policy "
            f"({exc.status_code}: {str(exc.error)[:200]}); install the plugin or set "
            "SIDECAR_RETENTION_BY=sidecar"
        ) from None
    except TransportError as exc:
        raise ConfigError(
            f"SIDECAR_RETENTION_BY={by}: installing the retention policy failed "
            f"({exc.status_code}: {str(exc.error)[:200]})"
        ) from None
