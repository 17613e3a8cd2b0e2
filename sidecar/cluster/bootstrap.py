"""Index templates and indices the sidecar owns, installed from the JSON in mappings/."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError

__all__ = ["MAPPINGS_DIR", "load_template", "install_templates"]

# The repository's mappings/ by default; an image or a wheel install points elsewhere.
MAPPINGS_DIR = Path(
    os.environ.get("SIDECAR_MAPPINGS_DIR") or Path(__file__).resolve().parents[2] / "mappings"
)


def load_template(name: str, index: str, mappings_dir: Path = MAPPINGS_DIR) -> dict:
    raw = orjson.loads((mappings_dir / f"{name}.template.json").read_bytes())
    template = copy.deepcopy(raw)
    template.pop("_comment", None)
    template["index_patterns"] = [index]
    return template


def install_templates(
    client: OpenSearch,
    anomaly_index: str,
    state_index: str,
    dead_letter_index: str | None = None,
    model_index: str | None = None,
    incident_index: str | None = None,
    notify_index: str | None = None,
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
    for name, index in owned:
        template = load_template(name, index)
        client.indices.put_index_template(name=f"{index}-template", body=template)
        try:
            client.indices.create(index=index)
        except RequestError as exc:
            if "resource_already_exists_exception" not in str(exc.error):
                raise
            client.indices.put_mapping(index=index, body=template["template"]["mappings"])
