"""When the running sidecar sweeps old partitions: at the first cycle, hourly after, sooner after
a failure, and only where it is the one to do it. What a sweep drops is tested on real nodes
(tests/integration/test_retention.py); the cluster here is a recorder of requests."""

from __future__ import annotations

from opensearchpy.exceptions import AuthorizationException

from sidecar.app.metrics import SidecarMetrics
from sidecar.app.retention import RetentionKeeper
from sidecar.app.wiring import load_settings

NOW_S = 1_764_547_200.0  # 2025-12-01T00:00:00Z


class Indices:
    def __init__(self, names: list[str], refuse: int = 0) -> None:
        self.names = set(names)
        self.refuse = refuse
        self.listed = 0

    def get_alias(self, index: str, params: dict) -> dict:
        self.listed += 1
        base = index.removesuffix("-*")
        return {n: {"aliases": {}} for n in self.names if n.startswith(f"{base}-")}

    def delete(self, index: str) -> None:
        if self.refuse:
            self.refuse -= 1
            raise AuthorizationException(403, "security_exception", "no permissions")
        self.names.remove(index)


class Cluster:
    def __init__(self, names: list[str], refuse: int = 0) -> None:
        self.indices = Indices(names, refuse)


class Clock:
    def __init__(self) -> None:
        self.now = NOW_S

    def __call__(self) -> float:
        return self.now


def keeper(cluster: Cluster, clock: Clock, **settings: object) -> RetentionKeeper:
    chosen = load_settings(**{"retention_days": 30, **settings})
    return RetentionKeeper(chosen, cluster, SidecarMetrics(), clock=clock)


def test_the_first_cycle_sweeps_then_one_sweep_an_hour() -> None:
    cluster = Cluster(["log-anomalies-2025.09", "log-anomalies-2025.11", "log-anomalies"])
    clock = Clock()
    keep = keeper(cluster, clock)

    first = keep()
    clock.now += 3_599
    within_the_hour = keep()
    clock.now += 1
    next_hour = keep()

    assert first == ["log-anomalies-2025.09"]
    assert within_the_hour == [] and next_hour == []
    assert cluster.indices.listed == 6  # three partitioned indices, two sweeps
    assert cluster.indices.names == {"log-anomalies-2025.11", "log-anomalies"}
    assert keep.metrics.partitions_dropped._value.get() == 1  # type: ignore[union-attr]


def test_a_refused_sweep_is_counted_and_tried_again_five_minutes_later() -> None:
    cluster = Cluster(["log-anomalies-2025.09"], refuse=1)
    clock = Clock()
    keep = keeper(cluster, clock)

    refused = keep()
    clock.now += 299
    too_soon = keep()
    clock.now += 1
    retried = keep()

    assert refused == [] and too_soon == []
    assert retried == ["log-anomalies-2025.09"]
    assert keep.metrics.retention_failures._value.get() == 1  # type: ignore[union-attr]


def test_nothing_is_swept_without_a_retention_by_a_plugin_or_on_other_replicas() -> None:
    clock = Clock()
    for settings in (
        {"retention_days": 0},
        {"retention_by": "ism", "result_partition": "day"},
        {"shard_count": 2, "shard_index": 1},
    ):
        cluster = Cluster(["log-anomalies-2025.09"])

        assert keeper(cluster, clock, **settings)() == []
        assert cluster.indices.listed == 0
