"""N replicas split the hosts by hash(host) mod N: disjoint, complete, stable."""

from __future__ import annotations

import os

import pytest

from sidecar.cli import load_settings
from sidecar.demo.generator import documents_with_incidents, fleet
from sidecar.errors import ConfigError
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.models.registry import build_detector
from sidecar.pipeline import CycleOptions, run_cycle
from sidecar.sharding import Shard, ordinal_from_hostname, shard_of
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, ListSink, to_events


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)


def test_shards_partition_the_hosts_evenly_and_stably() -> None:
    hosts = [f"host-{i}" for i in range(3_000)]
    owners = [[h for h in hosts if Shard(i, 3).owns(h)] for i in range(3)]
    assert sorted(sum(owners, [])) == sorted(hosts)
    assert all(800 < len(o) < 1_200 for o in owners)
    assert shard_of("gokul-l3c", 7) == shard_of("gokul-l3c", 7)


def test_a_statefulset_pod_takes_its_ordinal_from_its_name(monkeypatch) -> None:
    assert ordinal_from_hostname("log-anomaly-sidecar-12") == 12
    assert ordinal_from_hostname("sidecar") is None
    monkeypatch.setenv("SIDECAR_SHARD_COUNT", "3")
    assert load_settings().shard("log-anomaly-sidecar-2") == Shard(2, 3)
    with pytest.raises(ValueError, match="HOSTNAME"):
        load_settings().shard("sidecar")


def test_a_shard_index_outside_the_count_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setenv("SIDECAR_SHARD_COUNT", "3")
    monkeypatch.setenv("SIDECAR_SHARD_INDEX", "3")
    with pytest.raises(ConfigError, match="SIDECAR_SHARD_INDEX"):
        load_settings()


def test_replicas_together_flag_exactly_what_one_sidecar_flags(trained) -> None:
    docs, _ = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 200, seed=4, incidents=INCIDENTS
    )
    events = to_events(docs)
    detector = build_detector(trained)

    def flagged(shard: Shard) -> set[str]:
        sink = ListSink()
        options = CycleOptions(read_lag_ms=None, initial_lookback_ms=None, shard=shard)
        run_cycle(
            FileSource(events), [detector], sink, MemoryCheckpoints(), now_ms=T0, options=options
        )
        return set(sink.documents)

    parts = [flagged(Shard(i, 3)) for i in range(3)]
    assert set().union(*parts) == flagged(Shard(0, 1))
    assert sum(len(p) for p in parts) == len(set().union(*parts))
