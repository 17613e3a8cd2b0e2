"""The demo's data: one unbroken stream per host, the incidents in the live batches, and the
identifiers that let `sessions` link a workflow's events."""

from __future__ import annotations

import re
from itertools import islice

from devtools.demo.generator import fleet, host_stream, normal_documents
from devtools.demo.runner import BATCH_EVENTS, HISTORY_EVENTS, demo_data

NOW_MS = 1_780_000_000_000
LOGON_ID = re.compile(r"Logon ID: (0x[0-9a-f]+)")


def _ts(doc: dict[str, object]) -> int:
    return int(str(doc["_zl_timestamp"]))


def test_history_and_batches_split_one_stream_per_host_without_losing_an_event():
    data = demo_data(fleet(8), NOW_MS, cycles=3)
    live = [d for batch in data.batches for d in batch]
    uuids = [d["log_uuid"] for d in [*data.history, *live]]

    stormy = {i.host for i in data.incidents}
    calm = [p for p in fleet(8) if p.name not in stormy]
    per_host = HISTORY_EVENTS + 3 * BATCH_EVENTS

    assert len(data.batches) == 3
    assert len(uuids) == len(set(uuids))  # nothing twice
    for profile in calm:  # nothing left out: a calm host's whole stream, as generated
        kept = [d for d in [*data.history, *live] if d["HOSTNAME"] == profile.name]
        assert len(kept) == len(normal_documents([profile], 0, per_host, seed=1))
    assert max(_ts(d) for d in data.history) < data.live_from_ms <= min(_ts(d) for d in live)
    assert max(_ts(d) for d in live) < NOW_MS - 60_000  # all of it readable at once


def test_a_hosts_pace_is_the_same_in_history_and_batches():
    data = demo_data(fleet(4), NOW_MS, cycles=2)
    injected = {u for i in data.incidents for u in i.log_uuids}
    by_host: dict[str, list[dict[str, object]]] = {}
    for doc in [*data.history, *(d for batch in data.batches for d in batch)]:
        by_host.setdefault(str(doc["HOSTNAME"]), []).append(doc)
    for docs in by_host.values():
        docs.sort(key=_ts)
        normal = [d for d in docs if d["log_uuid"] not in injected]
        gaps = [_ts(b) - _ts(a) for a, b in zip(normal, normal[1:], strict=False)]
        # 50 ms to 2 s between a host's events, across the seam as elsewhere (an incident's
        # few events can sit in one gap and make it at most a few gaps long).
        assert max(gaps) <= 2_000 * 12
        assert 700 <= sum(gaps) / len(gaps) <= 1_400


def test_the_planned_incidents_are_all_in_the_batches():
    data = demo_data(fleet(12), NOW_MS, cycles=3)
    live = {d["log_uuid"] for batch in data.batches for d in batch}

    assert sorted(i.kind for i in data.incidents) == [
        "audit_log_cleared",
        "brute_force",
        "logoff_storm",
        "privilege_without_logon",
    ]
    for incident in data.incidents:
        assert set(incident.log_uuids) <= live


def test_fewer_cycles_inject_only_their_share_of_the_plan():
    data = demo_data(fleet(12), NOW_MS, cycles=1)

    assert sorted(i.kind for i in data.incidents) == ["audit_log_cleared", "brute_force"]


def test_a_logons_events_share_its_logon_id():
    docs = normal_documents(fleet(5), NOW_MS, 400, seed=1)
    last_logon: dict[str, str] = {}
    checked = 0
    for doc in docs:
        found = LOGON_ID.search(str(doc["MESSAGE"]))
        if doc["EVENTID"] == "4624" and found:
            last_logon[str(doc["HOSTNAME"])] = found.group(1)
        elif doc["EVENTID"] == "4672" and found:
            assert found.group(1) == last_logon[str(doc["HOSTNAME"])]
            checked += 1
    assert checked >= 10


def test_a_hosts_endless_stream_is_the_stream_normal_documents_cuts():
    for profile in fleet(5):
        cut = normal_documents([profile], NOW_MS, 300, seed=7)
        assert list(islice(host_stream(profile, NOW_MS, seed=7), len(cut))) == cut
        assert len(cut) >= 300
