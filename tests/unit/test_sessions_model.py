"""The sessions model: events that share an identifier (a logon ID, a handle) must follow the
orders the fleet showed, however the host interleaves them; a session logged backwards and
privileges for a logon no one announced are flagged, ordinary interleaved sessions are not."""

from __future__ import annotations

import math
import random

import pytest

from sidecar.errors import ModelError
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.lifecycle.training import train_model
from sidecar.models.artifacts import load_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.sessions.detector import REASON_SESSION_ORDER, SessionsDetector
from sidecar.models.sessions.links import identifiers, links
from sidecar.models.sessions.model import START, LinkCounts, SessionsConfig
from sidecar.models.store import FileModelStore
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.types import HostSequence, LogEvent
from tests.helpers import ListSink

START_MS = 1_700_006_400_000
HOUR = 3_600_000
HOSTS = [f"wks-{i}" for i in range(1, 9)]
MESSAGES = {
    "4624": "An account was logged on. Account Name: {user} Logon ID: {lid}",
    "4672": "Special privileges assigned to new logon. Account Name: {user} Logon ID: {lid}",
    "4688": "A new process has been created. Account Name: {user} Logon ID: {lid}",
    "4634": "An account was logged off. Account Name: {user} Logon ID: {lid}",
    "5156": "The Windows Filtering Platform has permitted a connection. Port: {port}",
}


def event(host: str, t: int, key: str, uid: str, **fields: object) -> LogEvent:
    return LogEvent(host, t, uid, key, "success", MESSAGES[key].format(**fields))


def day(host: str, index: int, seed: int) -> list[LogEvent]:
    """Sessions that overlap: logon, sometimes privileges, processes, logoff, each with its
    own logon ID; connections without identifiers in between."""
    rng = random.Random(f"{seed}:{host}:{index}")
    start = START_MS + index * 24 * HOUR
    out: list[LogEvent] = []
    for s in range(40):
        t = start + rng.randrange(22 * HOUR)
        lid, user = f"0x{rng.randrange(16**6, 16**7):x}", rng.choice(["ann", "bob", "eve"])
        uid = f"{host}-{index}-{s}"
        out.append(event(host, t, "4624", f"{uid}-on", user=user, lid=lid))
        if rng.random() < 0.5:
            out.append(event(host, t + 2, "4672", f"{uid}-priv", user=user, lid=lid))
        for p in range(rng.randint(1, 4)):
            t += rng.randrange(1_000, 600_000)
            out.append(event(host, t, "4688", f"{uid}-proc-{p}", user=user, lid=lid))
        t += rng.randrange(1_000, 900_000)
        out.append(event(host, t, "4634", f"{uid}-off", user=user, lid=lid))
    for c in range(300):
        t = start + rng.randrange(24 * HOUR)
        out.append(event(host, t, "5156", f"{host}-{index}-c{c}", port=rng.randrange(1024, 65535)))
    return sorted(out, key=lambda e: (e.timestamp_ms, e.log_uuid))


def backwards(host: str, index: int) -> list[LogEvent]:
    """A session logged backwards: logoff, privileges, logon, one logon ID."""
    t = START_MS + index * 24 * HOUR + 23 * HOUR
    lid = "0xbad0bad"
    return [
        event(host, t, "4634", "bad-off", user="adm", lid=lid),
        event(host, t + 40, "4672", "bad-priv", user="adm", lid=lid),
        event(host, t + 90, "4624", "bad-on", user="adm", lid=lid),
    ]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory):
    store = FileModelStore(tmp_path_factory.mktemp("models"))
    history = {h: [e for i in range(3) for e in day(h, i, seed=1)] for h in HOSTS}
    train_model("sessions", history, SessionsConfig(), store, {}, budget=(0.05, 4))
    return load_artifact(store, "sessions")


@pytest.fixture(scope="module")
def detector(artifact) -> SessionsDetector:
    built = kind_of("sessions").detector(artifact, DetectorOptions(alert_budget=0.05))
    assert isinstance(built, SessionsDetector)
    return built


def test_identifiers_are_ids_by_shape_not_numbers_or_status_codes() -> None:
    message = (
        "Logon ID: 0x3E7a1 Status: 0x0 Sub Status: 0xC000006A Port: 51353 "
        "Key: 7a2eaac6-8ab7-7603-db69-8df1686e1b11 block blk_-1608999687919862906 "
        "job application_1445144423722_0020 again 0x3e7a1"
    )
    assert identifiers(message) == [
        "0x3e7a1",
        "0xc000006a",
        "7a2eaac6-8ab7-7603-db69-8df1686e1b11",
        "blk_-1608999687919862906",
        "application_1445144423722_0020",
    ]
    assert identifiers(None) == [] and identifiers("no ids 1234 here") == []


def test_a_link_is_the_last_event_of_the_identifier_within_the_window() -> None:
    events = [
        event("h", 1, "4624", "a", user="u", lid="0xaaaa"),
        event("h", 2, "5156", "b", port=1),
        event("h", 3, "4688", "c", user="u", lid="0xaaaa"),
        event("h", 4, "5156", "d", port=2),
        event("h", 5, "4634", "e", user="u", lid="0xaaaa"),
    ]
    assert links(events, 0, 64) == [
        ("4624/success", [None]),
        ("5156/success", []),
        ("4688/success", ["4624/success"]),
        ("5156/success", []),
        ("4634/success", ["4688/success"]),
    ]
    # With a window of one event, the logoff no longer sees the process two events back.
    assert links(events, 4, 1) == [("4634/success", [None])]


def test_link_surprise_is_the_smoothed_log_odds_of_the_order() -> None:
    counts = LinkCounts.count(
        [("on", [None])] * 9 + [("priv", ["on"])] * 3 + [("off", ["on"])] * 6 + [("x", [])]
    )
    assert counts.pairs == {(START, "on"): 9, ("on", "priv"): 3, ("on", "off"): 6}
    # P(off | on) = (6 + prior) / (9 + 1), prior = (6 + 1) / (19 + 4 + 1).
    assert counts.surprise("off", "on") == pytest.approx(-math.log((6 + 7 / 24) / 10))
    # Never after "on": only the prior's weight is left.
    assert counts.surprise("on", "on") == pytest.approx(-math.log((10 / 24) / 10))
    assert counts.followers("on", 1) == [("off", 6 / 9)]


def test_a_session_logged_backwards_is_flagged(detector) -> None:
    events = sorted(
        [*day("wks-3", 5, seed=2), *backwards("wks-3", 5)],
        key=lambda e: (e.timestamp_ms, e.log_uuid),
    )
    batch = detector.detect([HostSequence("wks-3", (), events)])
    flagged = {d.event.log_uuid: d for d in batch.detections}
    # A logoff of a logon ID no event announced, privileges after a logoff and a logon after
    # privileges: orders no session showed.
    assert set(flagged) == {"bad-off", "bad-priv", "bad-on"}
    off = flagged["bad-off"]
    assert {v.name: v for v in off.parameters.values}["linked_by"].source == (
        "identifier 0xbad0bad, new among the host's last 64 events"
    )
    assert off.expected[0].key == "4624/success"
    priv = flagged["bad-priv"]
    assert priv.reason == REASON_SESSION_ORDER and priv.model == "sessions"
    values = {v.name: v for v in priv.parameters.values}
    assert values["linked_by"].source == "identifier 0xbad0bad shared with an earlier event"
    # What follows a logoff along its logon ID: nothing did in training.
    assert priv.expected == ()
    on = flagged["bad-on"]
    assert [e.key for e in on.expected][:1] == ["4688/success"]
    assert on.grade is not None and on.grade >= 50.0


def test_interleaved_ordinary_sessions_are_not_flagged(detector) -> None:
    days = {h: day(h, 6, seed=3) for h in HOSTS}
    batch = detector.detect([HostSequence(h, (), e) for h, e in days.items()])
    assert batch.detections == []
    assert batch.scored == sum(len(e) for e in days.values())


def test_a_session_across_two_cycles_is_judged_as_in_one(detector) -> None:
    events = sorted(
        [*day("wks-2", 5, seed=5), *backwards("wks-2", 5)],
        key=lambda e: (e.timestamp_ms, e.log_uuid),
    )
    end = START_MS + 6 * 24 * HOUR
    cut = backwards("wks-2", 5)[1].timestamp_ms  # between the logoff and the privileges
    runs = []
    for cuts in ([end], [cut, end]):
        sink, checkpoints = ListSink(), MemoryCheckpoints()
        for now in cuts:
            run_cycle(
                FileSource(events),
                [detector],
                sink,
                checkpoints,
                now_ms=now,
                options=CycleOptions(read_lag_ms=0, initial_lookback_ms=None),
            )
        runs.append({i: {**d, "detected_at": None} for i, d in sink.documents.items()})
    one, two = runs
    assert {d["log_uuid"] for d in one.values()} == {"bad-off", "bad-priv", "bad-on"}
    assert one == two


def test_the_manifest_keeps_the_link_counts(artifact) -> None:
    saved = artifact.manifest["sessions"]["links"]
    # Counts from the whole range; the calibration cross-fitted over it, every event scored
    # by the counts of the folds it is not in.
    assert saved["keys"]["4624/success"] == 3 * 8 * 40
    total = sum(len(day(h, i, seed=1)) for h in HOSTS for i in range(3))
    assert sum(saved["keys"].values()) == total
    assert artifact.manifest["calibration"]["n"] == total
    pairs = {(a, b): n for a, b, n in saved["pairs"]}
    assert pairs[(START, "4624/success")] > 0 and ("4634/success", "4672/success") not in pairs
    manifest = {k: v for k, v in artifact.manifest.items() if k != "sessions"}
    with pytest.raises(ModelError, match="no link counts"):
        kind_of("sessions").empty_net(artifact.vocabulary, artifact.config, manifest)


def cut_session(host: str, index: int) -> list[LogEvent]:
    """The end of a session whose logon came before the events given: what a training range
    or a first read starts with when it cuts through a session."""
    t = START_MS + index * 24 * HOUR - 10
    return [
        event(host, t, "4672", f"{host}-cut-priv", user="ann", lid="0xc0ffee1"),
        event(host, t + 3, "4688", f"{host}-cut-proc", user="ann", lid="0xc0ffee1"),
        event(host, t + 6, "4634", f"{host}-cut-off", user="ann", lid="0xc0ffee1"),
    ]


def lone_privilege(host: str, index: int) -> LogEvent:
    return event(
        host,
        START_MS + index * 24 * HOUR + 12 * HOUR,
        "4672",
        "lone-priv",
        user="adm",
        lid="0x5eed5",
    )


def test_within_a_window_of_a_cut_a_new_identifier_is_not_reported() -> None:
    events = [
        *cut_session("h", 1),
        event("h", START_MS + 24 * HOUR + 20, "4624", "on", user="u", lid="0xaaaa"),
        event("h", START_MS + 24 * HOUR + 30, "4672", "priv", user="u", lid="0xaaaa"),
    ]
    assert links(events, 0, 64, cut=True) == [
        ("4672/success", []),
        ("4688/success", ["4672/success"]),
        ("4634/success", ["4688/success"]),
        ("4624/success", []),
        ("4672/success", ["4624/success"]),
    ]
    # Past the first window the stream is known: an identifier new there is new.
    assert links(events, 0, 3, cut=True)[3:] == [
        ("4624/success", [None]),
        ("4672/success", ["4624/success"]),
    ]


def test_sessions_cut_by_the_training_range_are_not_learned_as_orders(tmp_path) -> None:
    # Every host's range opens inside a session: privileges and a logoff with no logon.
    history = {
        h: [*cut_session(h, 0), *(e for i in range(3) for e in day(h, i, seed=1))] for h in HOSTS
    }
    store = FileModelStore(tmp_path)
    train_model("sessions", history, SessionsConfig(), store, {}, budget=(0.05, 4))
    trained = load_artifact(store, "sessions")
    pairs = {(a, b): n for a, b, n in trained.manifest["sessions"]["links"]["pairs"]}
    assert (START, "4672/success") not in pairs and (START, "4634/success") not in pairs
    found = kind_of("sessions").detector(trained, DetectorOptions(alert_budget=0.05))
    events = sorted(
        [*day("wks-4", 5, seed=2), lone_privilege("wks-4", 5)],
        key=lambda e: (e.timestamp_ms, e.log_uuid),
    )
    context = tuple(day("wks-4", 4, seed=2)[-64:])
    flagged = {
        d.event.log_uuid for d in found.detect([HostSequence("wks-4", context, events)]).detections
    }
    assert flagged == {"lone-priv"}
