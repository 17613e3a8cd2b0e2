"""Raw documents -> LogEvent. Tolerant of real clusters: wrong types are repaired where the
meaning is clear, and everything else is rejected with a counted reason, never silently."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sidecar.settings import FieldNames
from sidecar.types import InputStats, LogEvent

__all__ = ["parse_timestamp_ms", "parse_event", "MAX_MESSAGE_CHARS", "MAX_KEY_PART_CHARS"]

# A message is only used for an excerpt and (later) a template; bounding it bounds memory when
# a cluster holds multi-megabyte messages.
MAX_MESSAGE_CHARS = 8_192
MAX_KEY_PART_CHARS = 128


def parse_timestamp_ms(value: object) -> int | None:
    """Epoch milliseconds from an epoch-ms string or number, or an ISO-8601 date string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value else None  # NaN check
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    return None


def _key_part(value: object, name: str, stats: InputStats, sample: object) -> str:
    if value is None:
        stats.repair(f"missing_{name}", sample)
        return ""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool | int | float):
        text = str(value)
    else:
        stats.repair(f"{name}_not_scalar", sample)
        text = str(value)
    if len(text) > MAX_KEY_PART_CHARS:
        stats.repair(f"{name}_too_long", sample)
        text = text[:MAX_KEY_PART_CHARS]
    return text


def _message(value: object, stats: InputStats, sample: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        stats.repair("message_not_string", sample)
        value = str(value)
    if len(value) > MAX_MESSAGE_CHARS:
        stats.repair("message_truncated", sample)
        value = value[:MAX_MESSAGE_CHARS]
    return value


def parse_event(
    source: Mapping[str, object],
    fields: FieldNames,
    stats: InputStats,
    *,
    index: str | None = None,
    timestamp: object = None,
    host: str | None = None,
) -> LogEvent | None:
    """Build a LogEvent from a document's _source.

    `timestamp` and `host` override the _source values when the caller already has them in a
    canonical form (the cluster's sort value, the host the query was filtered on).
    """
    sample = {k: source.get(k) for k in (fields.host, fields.timestamp, fields.log_uuid)}
    raw_ts = timestamp if timestamp is not None else source.get(fields.timestamp)
    ts = parse_timestamp_ms(raw_ts)
    if ts is None:
        stats.reject("bad_timestamp" if raw_ts is not None else "missing_timestamp", sample)
        return None
    uuid = source.get(fields.log_uuid)
    if isinstance(uuid, int) and not isinstance(uuid, bool):
        uuid = str(uuid)
    if not isinstance(uuid, str) or not uuid:
        stats.reject("missing_log_uuid", sample)
        return None
    if host is None:
        raw_host = source.get(fields.host)
        if not isinstance(raw_host, str | int) or isinstance(raw_host, bool) or raw_host == "":
            stats.reject("missing_host", sample)
            return None
        host = str(raw_host)
    return LogEvent(
        host=host,
        timestamp_ms=ts,
        log_uuid=uuid,
        event_id=_key_part(source.get(fields.event_id), "event_id", stats, sample),
        severity=_key_part(source.get(fields.severity), "severity", stats, sample),
        message=_message(source.get(fields.message), stats, sample),
        index=index,
    )
