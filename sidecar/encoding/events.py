"""Raw documents -> LogEvent. Tolerant of real clusters: wrong types are repaired where the
meaning is clear, and everything else is rejected with a counted reason, never silently."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sidecar.types import InputStats, LogEvent

__all__ = [
    "FieldNames",
    "parse_timestamp",
    "parse_timestamp_ms",
    "parse_event",
    "canonical_host",
    "clean_text",
    "MAX_MESSAGE_CHARS",
    "MAX_KEY_PART_CHARS",
    "MAX_LOG_UUID_CHARS",
]

@dataclass(frozen=True, slots=True)
class FieldNames:
    """Names of the source document fields (the seed's shape by default)."""

    host: str = "HOSTNAME"
    timestamp: str = "_zl_timestamp"
    event_id: str = "EVENTID"
    severity: str = "SEVERITY"
    log_uuid: str = "log_uuid"
    message: str = "MESSAGE"

    def source_fields(self) -> list[str]:
        return [
            self.host,
            self.timestamp,
            self.event_id,
            self.severity,
            self.log_uuid,
            self.message,
        ]


# A message is only used for an excerpt and (later) a template; bounding it bounds memory when
# a cluster holds multi-megabyte messages.
MAX_MESSAGE_CHARS = 8_192
MAX_KEY_PART_CHARS = 128


# Epoch values in this range are seconds, not milliseconds: as milliseconds they would fall in
# the first weeks of 1970 and as seconds they span 2001 to 5138.
_SECONDS_RANGE = (1_000_000_000, 100_000_000_000)
# Control characters (tab, newline and carriage return kept) and lone UTF-16 surrogates, which
# a cluster stores as given but no UTF-8 encoder (nor Dashboards) can carry.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_LOG_UUID_CHARS = 512


def parse_timestamp(value: object) -> tuple[int | None, str | None]:
    """(epoch milliseconds, the repair made or None) from an epoch-ms or epoch-s string or
    number, or an ISO-8601 date string; (None, None) when no instant can be read."""
    if isinstance(value, bool):
        return None, None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value:  # NaN
            return None, None
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None, None
        if text.lstrip("-").isdigit():
            number = int(text)
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None, None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000), None
    if number is None:
        return None, None
    if _SECONDS_RANGE[0] <= abs(number) < _SECONDS_RANGE[1]:
        return number * 1000, "timestamp_epoch_seconds"
    return number, None


def parse_timestamp_ms(value: object) -> int | None:
    """Epoch milliseconds from an epoch-ms (or epoch-s) string or number, or an ISO-8601 date."""
    return parse_timestamp(value)[0]


def canonical_host(raw: str, case_sensitive: bool) -> str:
    # DNS and NetBIOS names ignore case; Windows logs one machine as GOKUL-L3C and gokul-l3c.
    return raw if case_sensitive else raw.lower()


def clean_text(text: str) -> str | None:
    """`text` with control characters and lone surrogates replaced by U+FFFD, or None when it
    had none (the common case costs one regex scan)."""
    if _UNSAFE_CHARS.search(text) is None:
        return None
    return _UNSAFE_CHARS.sub("\ufffd", text)


def _short(value: object) -> object:
    # Samples go to the log: a 10 KB id or a 1 MB message must not come with them.
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + f"...({len(value)} chars)"
    return value


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
    cleaned = clean_text(text)
    if cleaned is not None:
        stats.repair(f"{name}_invalid_characters", sample)
        text = cleaned
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
    cleaned = clean_text(value)
    if cleaned is not None:
        stats.repair("message_invalid_characters", sample)
        value = cleaned
    return value


def _log_uuid(
    value: object,
    stats: InputStats,
    sample: Callable[[], dict[str, object]],
    index: str | None,
    doc_id: str | None,
) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        if doc_id is None:
            stats.reject("missing_log_uuid", sample)
            return None
        # The document's own address is unique and stable, so the anomaly id stays
        # deterministic and an analyst can still open the raw event.
        stats.repair("missing_log_uuid", sample)
        return f"{index}/{doc_id}"
    if len(value) > MAX_LOG_UUID_CHARS or clean_text(value) is not None:
        stats.repair("log_uuid_unusable", lambda: {**sample(), "log_uuid": value[:64] + "..."})
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"sha256:{digest}"
    return value


def parse_event(
    source: Mapping[str, object],
    fields: FieldNames,
    stats: InputStats,
    *,
    index: str | None = None,
    timestamp: object = None,
    host: str | None = None,
    doc_id: str | None = None,
    case_sensitive_hosts: bool = True,
    event_id_optional: bool = False,
) -> LogEvent | None:
    """Build a LogEvent from a document's _source.

    `timestamp` and `host` override the _source values when the caller already has them in a
    canonical form (the cluster's sort value, the host the query was filtered on).
    With `event_id_optional` (template mining on) a missing EVENTID is not counted here: the
    event is keyed from its MESSAGE later, and counted there when it has none.
    """

    def sample() -> dict[str, object]:
        keys = (fields.host, fields.timestamp, fields.log_uuid)
        shown: dict[str, object] = {k: _short(source.get(k)) for k in keys}
        if doc_id is not None:
            shown["_id"] = f"{index}/{doc_id}"
        return shown

    source_ts = source.get(fields.timestamp)
    if isinstance(source_ts, list):
        # Multi-valued: the cluster sorts by the earliest, and so does the sidecar.
        stats.repair("timestamp_array", sample)
        if timestamp is None:
            instants = [t for t in map(parse_timestamp_ms, source_ts) if t is not None]
            source_ts = min(instants) if instants else None
    raw_ts = timestamp if timestamp is not None else source_ts
    ts, repair = parse_timestamp(raw_ts)
    if ts is None:
        stats.reject("bad_timestamp" if raw_ts is not None else "missing_timestamp", sample)
        return None
    if repair is not None:
        stats.repair(repair, sample)
    uuid = _log_uuid(source.get(fields.log_uuid), stats, sample, index, doc_id)
    if uuid is None:
        return None
    if host is None:
        raw_host = source.get(fields.host)
        if not isinstance(raw_host, str | int) or isinstance(raw_host, bool) or raw_host == "":
            stats.reject("missing_host", sample)
            return None
        host = canonical_host(str(raw_host), case_sensitive_hosts)
    raw_event_id = source.get(fields.event_id)
    if event_id_optional and raw_event_id is None:
        event_id = ""
    else:
        event_id = _key_part(raw_event_id, "event_id", stats, sample)
    return LogEvent(
        host=host,
        timestamp_ms=ts,
        log_uuid=uuid,
        event_id=event_id,
        severity=_key_part(source.get(fields.severity), "severity", stats, sample),
        message=_message(source.get(fields.message), stats, sample),
        index=index,
    )
