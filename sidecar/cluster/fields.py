"""Which concrete fields to sort, filter and aggregate on, read from the live mappings.

Real clusters map the seed's fields differently: `_zl_timestamp` as a date, a long, or (with
dynamic mapping of an epoch-ms string) as text with a `.keyword` sub-field. The reader adapts
instead of asking operators to reindex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opensearchpy import OpenSearch

from sidecar.encoding.events import FieldNames
from sidecar.errors import SourceUnavailable

__all__ = ["TimestampKind", "ResolvedFields", "IndexGroup", "Layout", "resolve_layout", "kind_of"]

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


@dataclass(frozen=True, slots=True)
class IndexGroup:
    """Watched indices that map the fields alike, so one search can sort them together.

    `expression` is what the search names: the watched patterns (minus other groups' indices)
    for the largest group, the indices themselves for the others; long lists of daily indices
    would otherwise overflow the request line.
    """

    expression: str
    indices: tuple[str, ...]
    fields: ResolvedFields


@dataclass(frozen=True, slots=True)
class Layout:
    groups: tuple[IndexGroup, ...]
    # (index, why it cannot be read): counted and logged each cycle, never fatal.
    skipped: tuple[tuple[str, str], ...] = ()


def _resolve_index(
    index: str, types: dict[str, dict[str, str]], names: FieldNames
) -> ResolvedFields | None:
    """The fields of one index; None while it maps none of them yet (no documents)."""
    one = {
        path: ({index: by_index[index]} if index in by_index else {})
        for path, by_index in types.items()
    }
    host = _pick(names.host, one, "grouping by host")
    timestamp = _pick(names.timestamp, one, "sorting by time")
    log_uuid = _pick(names.log_uuid, one, "sorting by log_uuid")
    if host is None and timestamp is None:
        return None
    if host is None or timestamp is None:
        missing = names.host if host is None else names.timestamp
        raise SourceUnavailable(f"field {missing!r} is not mapped")
    ts_kind = kind_of(timestamp[1])
    if ts_kind is None:
        raise SourceUnavailable(
            f"field {names.timestamp!r} is mapped as {timestamp[1]!r}; expected date, a number "
            f"or an epoch-ms string (keyword)"
        )
    if kind_of(host[1]) != "keyword":
        raise SourceUnavailable(f"field {names.host!r} is mapped as {host[1]!r}; expected keyword")
    if log_uuid is not None and kind_of(log_uuid[1]) != "keyword":
        raise SourceUnavailable(
            f"field {names.log_uuid!r} is mapped as {log_uuid[1]!r}; expected keyword"
        )
    # An index whose documents all lack log_uuid still sorts: missing values sort as "".
    uuid_path = log_uuid[0] if log_uuid is not None else names.log_uuid
    return ResolvedFields(
        host=host[0], timestamp=timestamp[0], timestamp_kind=ts_kind, log_uuid=uuid_path
    )


def resolve_layout(client: OpenSearch, patterns: list[str], names: FieldNames) -> Layout:
    """Group the watched indices by how they map the fields (usually one group).

    Real clusters drift: a template change gives tomorrow's daily index a date where today's has
    a keyword. Each group is read with its own sort and the reader merges them by time.
    """
    wanted = [names.host, names.timestamp, names.log_uuid]
    paths = wanted + [f"{n}.keyword" for n in wanted]
    response = client.indices.get_field_mapping(
        index=",".join(patterns),
        fields=",".join(paths),
        params={"ignore_unavailable": "true", "allow_no_indices": "true"},
    )
    types = _types_by_field(response, paths)
    by_fields: dict[ResolvedFields, list[str]] = {}
    skipped: list[tuple[str, str]] = []
    for index in sorted(response):
        try:
            fields = _resolve_index(index, types, names)
        except SourceUnavailable as exc:
            skipped.append((index, str(exc)))
            continue
        if fields is not None:
            by_fields.setdefault(fields, []).append(index)
    ranked = sorted(by_fields.items(), key=lambda item: (-len(item[1]), item[1][0]))
    groups: list[IndexGroup] = []
    for rank, (fields, indices) in enumerate(ranked):
        if rank == 0:
            others = [i for _, group in ranked[1:] for i in group] + [i for i, _ in skipped]
            expression = ",".join([*patterns, *(f"-{i}" for i in others)])
        else:
            expression = ",".join(indices)
        groups.append(IndexGroup(expression, tuple(indices), fields))
    return Layout(tuple(groups), tuple(skipped))
