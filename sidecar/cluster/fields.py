"""Which concrete fields to sort, filter and aggregate on, read from the live mappings.

Real clusters map the seed's fields differently: `_zl_timestamp` as a date, a long, or (with
dynamic mapping of an epoch-ms string) as text with a `.keyword` sub-field. The reader adapts
instead of asking operators to reindex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opensearchpy import OpenSearch

from sidecar.errors import SourceUnavailable
from sidecar.settings import FieldNames

__all__ = ["TimestampKind", "ResolvedFields", "resolve_fields", "kind_of"]

TimestampKind = Literal["date", "date_nanos", "numeric", "keyword"]

_NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long"}
_KEYWORD = {"keyword", "constant_keyword", "wildcard"}


@dataclass(frozen=True, slots=True)
class ResolvedFields:
    host: str
    timestamp: str
    timestamp_kind: TimestampKind
    log_uuid: str


def kind_of(mapping_type: str) -> TimestampKind | None:
    if mapping_type == "date":
        return "date"
    if mapping_type == "date_nanos":
        return "date_nanos"
    if mapping_type in _NUMERIC:
        return "numeric"
    if mapping_type in _KEYWORD:
        return "keyword"
    return None


def _types_by_field(response: dict, names: list[str]) -> dict[str, dict[str, str]]:
    """{field path: {index: mapping type}} from a get_field_mapping response."""
    found: dict[str, dict[str, str]] = {name: {} for name in names}
    for index, body in response.items():
        for path, entry in (body.get("mappings") or {}).items():
            if path not in found:
                continue
            leaf = path.rsplit(".", 1)[-1]
            mapping = (entry.get("mapping") or {}).get(leaf) or {}
            found[path][index] = str(mapping.get("type", "object"))
    return found


def _pick(name: str, types: dict[str, dict[str, str]], purpose: str) -> tuple[str, str] | None:
    """The field path to use for `name` and its mapping type, or None if nothing maps it yet."""
    direct = types.get(name, {})
    keyword_sub = types.get(f"{name}.keyword", {})
    if not direct:
        return None
    direct_types = set(direct.values())
    if len(direct_types) > 1:
        raise SourceUnavailable(
            f"field {name!r} has conflicting types across watched indices "
            f"({', '.join(f'{i}: {t}' for i, t in sorted(direct.items()))}); "
            f"{purpose} needs one type"
        )
    (mapping_type,) = direct_types
    if mapping_type == "text":
        if set(keyword_sub.values()) == {"keyword"} and set(keyword_sub) == set(direct):
            return f"{name}.keyword", "keyword"
        raise SourceUnavailable(
            f"field {name!r} is mapped as text without a keyword sub-field; {purpose} needs a "
            f"keyword, numeric or date field"
        )
    return name, mapping_type


def resolve_fields(
    client: OpenSearch, patterns: list[str], names: FieldNames
) -> ResolvedFields | None:
    """None when no watched index maps the fields yet (nothing to read)."""
    wanted = [names.host, names.timestamp, names.log_uuid]
    paths = wanted + [f"{n}.keyword" for n in wanted]
    response = client.indices.get_field_mapping(
        index=",".join(patterns),
        fields=",".join(paths),
        params={"ignore_unavailable": "true", "allow_no_indices": "true"},
    )
    types = _types_by_field(response, paths)
    host = _pick(names.host, types, "grouping by host")
    timestamp = _pick(names.timestamp, types, "sorting by time")
    log_uuid = _pick(names.log_uuid, types, "sorting by log_uuid")
    if host is None or timestamp is None or log_uuid is None:
        return None
    ts_kind = kind_of(timestamp[1])
    if ts_kind is None:
        raise SourceUnavailable(
            f"field {names.timestamp!r} is mapped as {timestamp[1]!r}; expected date, a number "
            f"or an epoch-ms string (keyword)"
        )
    for (_path, mapping_type), label in ((host, names.host), (log_uuid, names.log_uuid)):
        if kind_of(mapping_type) != "keyword":
            raise SourceUnavailable(
                f"field {label!r} is mapped as {mapping_type!r}; expected keyword"
            )
    return ResolvedFields(
        host=host[0], timestamp=timestamp[0], timestamp_kind=ts_kind, log_uuid=log_uuid[0]
    )
