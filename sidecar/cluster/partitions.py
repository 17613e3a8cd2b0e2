"""Result indices partitioned by the event time of what they hold, and their retention.

A document's index is a pure function of its own `@timestamp` (`log-anomalies-2026.12` for a
month, `log-anomalies-2026.12.01` for a day), never of the wall clock: a redo of any range
writes to the index the first pass wrote to, and the deterministic `_id` keeps it a no-op there.
Readers search `<base>*`, which also covers an unpartitioned `<base>` index left by an earlier
version. Retention drops whole partitions whose newest possible event is older than the
retention; a result older than the retention is counted and never written, so a late event
cannot recreate a dropped partition.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

__all__ = ["Partitioning", "UNPARTITIONED", "drop_expired", "partitions_of"]

log = structlog.get_logger("sidecar.cluster.partitions")

Interval = Literal["none", "day", "month"]
_DAY_MS = 86_400_000
_SUFFIX = re.compile(r"^(\d{4})\.(\d{2})(?:\.(\d{2}))?$")


@dataclass(frozen=True, slots=True)
class Partitioning:
    """How result indices are cut (`interval`) and how long they are kept (0 days: forever)."""

    interval: Interval = "month"
    retention_days: int = 0

    def index_for(self, base: str, event_ms: int) -> str:
        if self.interval == "none":
            return base
        at = datetime.fromtimestamp(event_ms / 1000, tz=UTC)
        suffix = at.strftime("%Y.%m.%d" if self.interval == "day" else "%Y.%m")
        return f"{base}-{suffix}"

    def search_name(self, base: str) -> str:
        """What readers search: every partition, and an unpartitioned index of the same name."""
        return base if self.interval == "none" else f"{base}*"

    def template_patterns(self, base: str) -> list[str]:
        return [base] if self.interval == "none" else [base, f"{base}-*"]

    def cutoff_ms(self, now_ms: int) -> int | None:
        """Results with an event time before this are past the retention (None: kept forever)."""
        return now_ms - self.retention_days * _DAY_MS if self.retention_days else None

    def expired(self, event_ms: int, now_ms: int) -> bool:
        cutoff = self.cutoff_ms(now_ms)
        return cutoff is not None and event_ms < cutoff


UNPARTITIONED = Partitioning("none", 0)


def partition_end_ms(base: str, index: str) -> int | None:
    """The first millisecond after what partition `index` of `base` can hold; None when the name
    is not one of `base`'s partitions (so nothing else is ever dropped). Both cuts are read, so
    partitions survive a change of interval."""
    if not index.startswith(f"{base}-"):
        return None
    match = _SUFFIX.match(index[len(base) + 1 :])
    if match is None:
        return None
    year, month, day = int(match[1]), int(match[2]), match[3]
    if not 1 <= month <= 12:
        return None
    if day is None:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    if not 1 <= int(day) <= calendar.monthrange(year, month)[1]:
        return None
    return calendar.timegm((year, month, int(day), 0, 0, 0)) * 1000 + _DAY_MS


def partitions_of(client: OpenSearch, base: str) -> list[str]:
    """The partitions of `base` in the cluster, oldest first."""
    try:
        found = client.indices.get_alias(index=f"{base}-*", params={"allow_no_indices": "true"})
    except NotFoundError:
        return []
    named = [(partition_end_ms(base, name), name) for name in found]
    return [name for end, name in sorted((e, n) for e, n in named if e is not None)]


def drop_expired(
    client: OpenSearch, base: str, partitioning: Partitioning, now_ms: int
) -> list[str]:
    """Deletes `base`'s partitions whose every event is older than the retention, by name
    (never a wildcard, which clusters refuse by default). Returns the names dropped."""
    cutoff = partitioning.cutoff_ms(now_ms)
    if cutoff is None:
        return []
    dropped = []
    for name in partitions_of(client, base):
        end = partition_end_ms(base, name)
        if end is None or end > cutoff:
            continue
        try:
            client.indices.delete(index=name)
        except NotFoundError:  # another replica dropped it first
            continue
        log.info("partition_dropped", index=name, retention_days=partitioning.retention_days)
        dropped.append(name)
    return dropped
