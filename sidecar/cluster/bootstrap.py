"""Index templates and indices the sidecar owns, installed from the JSON in mappings/.

Anomaly, incident and dead-letter indices are partitions (sidecar/cluster/partitions.py): their
templates match `<base>-*`, and the cluster creates each partition on its first write."""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError

from sidecar.cluster.partitions import Partitioning

__all__ = ["MAPPINGS_DIR", "load_template", "install_templates"]

# The repository's mappings/ by default; an image or a wheel install points elsewhere.
MAPPINGS_DIR = Path(
    os.environ.get("SIDECAR_MAPPINGS_DIR") or Path(__file__).resolve().parents[2] / "mappings"
)


_PARTITIONED = ("anomalies", "incidents", "dead-letters")


def load_template(
    name: str, index: str, mappings_dir: Path = MAPPINGS_DIR, patterns: list[str] | None = None
) -> dict:
    raw = orjson.loads((mappings_dir / f"{name}.template.json").read_bytes())
    template = copy.deepcopy(raw)
    template.pop("_comment", None)
    template["index_patterns"] = patterns or [index]
    return template


def lifecycle_settings(policy: str | None) -> dict[str, object]:
    """Template settings that hand partitions to an ILM policy (None: no policy). ILM ages a
    partition by the date in its name, so a late first write does not restart its clock."""
    if policy is None:
        return {}
    return {"index.lifecycle.name": policy, "index.lifecycle.parse_origination_date": True}


def install_templates(
    client: OpenSearch,
    anomaly_index: str,
    state_index: str,
    dead_letter_index: str | None = None,
    model_index: str | None = None,
    incident_index: str | None = None,
    notify_index: str | None = None,
    partitioning: Partitioning | None = None,
    ilm_policy: str | None = None,
) -> None:
    """Idempotent: templates are overwritten with the current version, indices created once,
    and fields a newer version added are put into the mapping of indices that already exist
    (the mappings are strict, so a new field would otherwise be refused)."""
    owned = [("anomalies", anomaly_index), ("state", state_index)]
    if dead_letter_index is not None:
        owned.append(("dead-letters", dead_letter_index))
    if model_index is not None:
        owned.append(("models", model_index))
    if incident_index is not None:
        owned.append(("incidents", incident_index))
    if notify_index is not None:
        owned.append(("notifications", notify_index))
    partitioning = partitioning or Partitioning()
    for name, index in owned:
        if name in _PARTITIONED and partitioning.interval != "none":
            _install_partitioned(client, name, index, ilm_policy)
            continue
        template = load_template(name, index)
        client.indices.put_index_template(name=f"{index}-template", body=template)
        try:
            client.indices.create(index=index)
        except RequestError as exc:
            if "resource_already_exists_exception" not in str(exc.error):
                raise
            client.indices.put_mapping(index=index, body=template["template"]["mappings"])


def _install_partitioned(client: OpenSearch, name: str, base: str, ilm_policy: str | None) -> None:
    """The template of `base`'s partitions; partitions that exist (and an unpartitioned `base`
    an earlier version left) get the fields this version added."""
    template = load_template(name, base, patterns=[f"{base}-*"])
    template["template"]["settings"].update(lifecycle_settings(ilm_policy))
    client.indices.put_index_template(name=f"{base}-template", body=template)
    with contextlib.suppress(NotFoundError):  # nothing to update yet
        client.indices.put_mapping(
            index=f"{base},{base}-*",
            body=template["template"]["mappings"],
            params={"allow_no_indices": "true", "ignore_unavailable": "true"},
        )
