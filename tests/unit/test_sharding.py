"""N replicas split the hosts by SHA-1(host) mod N: disjoint, complete, the same in every
process."""

from __future__ import annotations

import os

import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from sidecar.app.wiring import load_settings
from sidecar.errors import ConfigError
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.models.nextkey.build import build_detector
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.pipeline.sharding import Shard, ordinal_from_hostname, shard_of
from tests.helpers import (
    INCIDENTS,
    T0,
    TRAIN_HOSTS,
    ListSink,
    printed_by_fresh_interpreter,
    to_events,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)


def test_shards_partition_the_hosts_evenly() -> None:
    hosts = [f"host-{i}" for i in range(3_000)]
    owners = [[h for h in hosts if Shard(i, 3).owns(h)] for i in range(3)]
    assert sorted(sum(owners, [])) == sorted(hosts)
    assert all(800 < len(o) < 1_200 for o in owners)


# Every replica computes the split on its own, so every process must compute the same one.
PINNED_SHARDS_OF_7 = {"gokul-l3c": 6, "host-001": 4, "host-002": 0, "host-003": 1}


def test_every_process_puts_a_host_in_the_same_shard() -> None:
    assert {host: shard_of(host, 7) for host in PINNED_SHARDS_OF_7} == PINNED_SHARDS_OF_7
    code = (
        "import json; from sidecar.pipeline.sharding import shard_of; "
        f"print(json.dumps({{h: shard_of(h, 7) for h in {list(PINNED_SHARDS_OF_7)!r}}}))"
    )
    for seed in (1, 2):
        assert printed_by_fresh_interpreter(code, seed) == PINNED_SHARDS_OF_7, seed


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
    docs, incidents = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 200, seed=4, incidents=INCIDENTS
    )
    events = to_events(docs)
    detector = build_detector(trained)

    def flagged(shard: Shard) -> dict[str, dict]:
        """The anomaly documents (by id) one replica writes."""
        sink = ListSink()
        options = CycleOptions(read_lag_ms=None, initial_lookback_ms=None, shard=shard)
        run_cycle(
            FileSource(events), [detector], sink, MemoryCheckpoints(), now_ms=T0, options=options
        )
        return sink.documents

    reference = flagged(Shard(0, 1))
    # Not vacuous: the single sidecar flags every injected incident, and the incident hosts
    # (host-001 and -005, host-003, host-007) fall in all three shards, so every replica flags.
    assert reference, "the single-sidecar reference flagged nothing"
    flagged_uuids = {d["log_uuid"] for d in reference.values()}
    missed = [i.kind for i in incidents if not flagged_uuids & set(i.log_uuids)]
    assert len(incidents) == len(INCIDENTS) and not missed, missed
    parts = [set(flagged(Shard(i, 3))) for i in range(3)]
    assert all(parts), [len(p) for p in parts]
    assert set().union(*parts) == set(reference)
    assert sum(len(p) for p in parts) == len(reference)
