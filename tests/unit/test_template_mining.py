"""Template mining for logs without an event id: messages of one type share a template and an
id, variable values become wildcards, and ids survive a restart through plain JSON state."""

from __future__ import annotations

import pytest

from sidecar.encoding.drain import WILDCARD, TemplateMiner

LOGONS = [
    "Invalid user webmaster from 173.234.31.186",
    "Invalid user test9 from 52.80.34.196",
    "Invalid user admin from 10.0.0.7",
]


def test_messages_of_one_type_share_a_cluster_and_values_become_wildcards() -> None:
    miner = TemplateMiner()
    ids = {miner.add(m).id for m in LOGONS}
    assert len(ids) == 1
    (cluster,) = miner.clusters.values()
    assert cluster.template == f"Invalid user {WILDCARD} from {WILDCARD}"
    assert cluster.size == 3


def test_different_messages_get_different_templates() -> None:
    miner = TemplateMiner()
    a = miner.add("Accepted password for root from 10.0.0.1 port 22 ssh2")
    b = miner.add("Connection closed by 10.0.0.1 [preauth]")
    c = miner.add("Received disconnect from 10.0.0.1: 11: Bye Bye [preauth]")
    assert len({a.id, b.id, c.id}) == 3


def test_match_does_not_learn_and_finds_nothing_for_an_unknown_shape() -> None:
    miner = TemplateMiner()
    for m in LOGONS:
        miner.add(m)
    assert miner.match("Invalid user root from 1.2.3.4").id == 1  # type: ignore[union-attr]
    assert miner.match("kernel: Out of memory: Kill process 42") is None
    assert len(miner.clusters) == 1 and miner.clusters[1].size == 3


def test_ids_and_templates_survive_a_restart_through_json_state() -> None:
    miner = TemplateMiner()
    for m in [*LOGONS, "Connection closed by 10.0.0.1 [preauth]"]:
        miner.add(m)
    state = miner.to_json()

    reloaded = TemplateMiner.from_json(state)

    assert state.startswith(b"{")  # plain JSON, no pickle
    assert {c.id: c.template for c in reloaded.clusters.values()} == {
        c.id: c.template for c in miner.clusters.values()
    }
    assert reloaded.add("Invalid user guest from 8.8.8.8").id == 1
    assert reloaded.add("A brand new kind of message").id == 3


def test_state_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        TemplateMiner.from_json(b'{"format": 99}')
