"""The sidecar's own retention (SIDECAR_RETENTION_BY=sidecar): result partitions past
SIDECAR_RETENTION_DAYS are dropped at the first cycle and every hour after, by replica 0, and
the `retention` command shows (or applies) the same decision by hand."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import structlog
from opensearchpy.exceptions import OpenSearchException

from sidecar.app.output import dumps
from sidecar.app.settings import Settings
from sidecar.app.wiring import partitioned_bases

log = structlog.get_logger("sidecar.app.retention")

# Partitions are days or months: an hour late is a negligible share of either.
SWEEP_EVERY_S = 3_600.0
# After a failure, sooner than the next sweep but not every cycle.
RETRY_AFTER_S = 300.0


class RetentionKeeper:
    def __init__(
        self,
        settings: Settings,
        client,
        metrics=None,
        every_s: float = SWEEP_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.every_s = every_s
        self.clock = clock
        self._next_s = 0.0

    @property
    def enabled(self) -> bool:
        s = self.settings
        return s.retention_by == "sidecar" and s.retention_days > 0 and s.shard().index == 0

    def __call__(self) -> list[str]:
        """Drops what is due when a sweep is; after a failure (logged, counted) the sweep is
        tried again in RETRY_AFTER_S: a partition kept a little longer loses nothing."""
        now_s = self.clock()
        if not self.enabled or now_s < self._next_s:
            return []
        from sidecar.cluster.partitions import drop_expired

        dropped: list[str] = []
        try:
            for base in partitioned_bases(self.settings):
                dropped += drop_expired(
                    self.client, base, self.settings.partitioning, int(now_s * 1000)
                )
        except OpenSearchException as exc:
            log.error("retention_failed", error=str(exc)[:300], dropped=dropped)
            if self.metrics is not None:
                self.metrics.retention_failures.inc()
            self._next_s = now_s + min(self.every_s, RETRY_AFTER_S)
            return dropped
        finally:
            if self.metrics is not None:
                self.metrics.partitions_dropped.inc(len(dropped))
        self._next_s = now_s + self.every_s
        return dropped


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    """Each result partition with its last day and whether the retention has passed it;
    `--drop` drops those it has (what the running sidecar does every hour)."""
    from sidecar.cluster.client import make_client
    from sidecar.cluster.partitions import drop_expired, partition_end_ms, partitions_of

    client = make_client(settings)
    now_ms = int(time.time() * 1000)
    cutoff = settings.partitioning.cutoff_ms(now_ms)
    rows = []
    for base in partitioned_bases(settings):
        for name in partitions_of(client, base):
            end = partition_end_ms(base, name)
            past = cutoff is not None and end is not None and end <= cutoff
            rows.append({"index": name, "ends_at_ms": end, "past_retention": past})
    dropped = []
    if args.drop:
        for base in partitioned_bases(settings):
            dropped += drop_expired(client, base, settings.partitioning, now_ms)
    print(
        dumps(
            {
                "partition": settings.result_partition,
                "retention_days": settings.retention_days,
                "retention_by": settings.retention_by,
                "partitions": rows,
                "dropped": dropped,
            }
        )
    )
    return 0
