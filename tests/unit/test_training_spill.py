"""Training in bounded memory: the events `train` and `retrain` read go to local disk
(sidecar/files/spill.py), every consumer walks the hosts one at a time, and what it trains is
the model the same events held in memory train."""

from __future__ import annotations

import gc
import random
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass
from pathlib import Path

import pytest

from devtools.demo.generator import fleet, normal_documents
from sidecar.app.settings import Settings
from sidecar.app.wiring import model_config
from sidecar.files.spill import SpilledStreams
from sidecar.lifecycle.retraining import retrain, split_streams, without_events
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.catalog import DetectorOptions
from sidecar.models.store import FileModelStore
from sidecar.types import LogEvent
from tests.helpers import T0, to_events

HOSTS = 6
EVENTS_PER_HOST = 700
# Every kind whose fit walks the hosts one at a time (the default set and the network kinds).
STREAMING_KINDS = ("deeplog", "loganomaly", "autoencoder", "volume", "periodic", "sessions")


@pytest.fixture(scope="module")
def streams() -> dict[str, list[LogEvent]]:
    docs = normal_documents(fleet(HOSTS), T0, EVENTS_PER_HOST, seed=5)
    return group_by_host(to_events(docs))


def spilled(streams: Mapping[str, list[LogEvent]], tmp_path: Path, **kw) -> SpilledStreams:
    spill = SpilledStreams(tmp_path, **kw)
    for host, events in streams.items():
        spill.add(host, events)
    spill.flush()
    return spill


def config(name: str):
    """The product's training configuration of `name`, with few epochs."""
    return model_config(name, Settings(train_epochs=3))


def comparable(manifest: Mapping[str, object]) -> dict[str, object]:
    """A manifest without what differs between two trainings of the same data: the version
    and the clock (the weights' digest stays: the weights must be the same)."""
    training = dict(manifest["training"])  # type: ignore[call-overload]
    training.pop("seconds")
    kept = {k: v for k, v in manifest.items() if k not in {"version", "created_at", "training"}}
    return {**kept, "training": training}


def test_a_host_reads_back_in_time_order_whatever_order_and_pieces_it_came_in(
    streams, tmp_path: Path
):
    events = [e for stream in streams.values() for e in stream]
    random.Random(3).shuffle(events)
    spill = SpilledStreams(tmp_path, buffer_events=97)  # many small appends per host
    for event in events:
        spill.add(event.host, (event,), ordered=False)
    spill.flush()
    assert sorted(spill) == sorted(streams)
    assert spill.events == len(events) == 4_204
    assert {h: spill[h] for h in spill} == streams
    assert spill.count(next(iter(streams))) == len(streams[next(iter(streams))])


def test_a_stream_replaced_while_walking_the_hosts_keeps_its_place_and_its_order(
    streams, tmp_path: Path
):
    spill = spilled(streams, tmp_path)
    order = list(spill)
    for host, events in spill.items():
        spill[host] = list(reversed(events[:10]))  # as given: a replaced stream is not sorted
    assert list(spill) == order
    first = order[0]
    assert [e.log_uuid for e in spill[first]] == [e.log_uuid for e in streams[first][9::-1]]
    assert spill.events == 10 * HOSTS == 60


def test_closing_removes_the_files(streams, tmp_path: Path):
    with spilled(streams, tmp_path) as spill:
        assert spill.disk_bytes() > 0
        assert len(list(tmp_path.iterdir())) == 1
    assert list(tmp_path.iterdir()) == []
    assert len(spill) == 0


def test_spilled_bytes_per_event_stay_small(streams, tmp_path: Path):
    """The disk a training range needs: README quotes about 150 bytes per event (messages of
    the demo's length; longer messages cost more)."""
    spill = spilled(streams, tmp_path)
    per_event = spill.disk_bytes() / spill.events
    assert 60 < per_event < 400


@pytest.mark.parametrize("name", STREAMING_KINDS)
def test_training_from_spilled_streams_trains_the_model_the_same_events_in_memory_train(
    name, streams, tmp_path: Path
):
    in_memory = train_model(name, streams, config(name), tmp_path / "a", {})
    from_disk = train_model(name, spilled(streams, tmp_path), config(name), tmp_path / "b", {})
    assert comparable(from_disk.manifest) == comparable(in_memory.manifest)
    assert from_disk.vocabulary.known == in_memory.vocabulary.known
    for key, tensor in in_memory.net.state_dict().items():
        assert from_disk.net.state_dict()[key].equal(tensor), key


class OneAtATime(Mapping[str, list[LogEvent]]):
    """Streams that hand out fresh events on every read, as spilled streams do, and count
    how many of them are alive at once."""

    def __init__(self, streams: Mapping[str, list[LogEvent]]) -> None:
        self._streams = streams
        self.alive = 0
        self.most_alive = 0

    def __getitem__(self, host: str) -> list[LogEvent]:
        loaded = [_Tracked(*astuple(e)) for e in self._streams[host]]
        for event in loaded:
            weakref.finalize(event, self._gone)
        self.alive += len(loaded)
        self.most_alive = max(self.most_alive, self.alive)
        return loaded

    def _gone(self) -> None:
        self.alive -= 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._streams)

    def __len__(self) -> int:
        return len(self._streams)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class _Tracked(LogEvent):
    """An event that can be watched going away."""


@pytest.mark.parametrize("name", STREAMING_KINDS)
def test_no_model_kind_holds_more_than_two_hosts_events_while_it_trains(
    name, streams, tmp_path: Path
):
    """One host read while the one before is let go: memory follows a host, not the range
    (a kind that kept every host's events would reach all 4,204 here)."""
    walked = OneAtATime(streams)
    train_model(name, walked, config(name), tmp_path, {})
    gc.collect()
    assert walked.alive == 0
    largest = max(len(s) for s in streams.values())
    assert largest <= walked.most_alive <= 2 * largest == 1_406


def test_the_retraining_gate_splits_and_filters_spilled_streams_on_disk(streams, tmp_path: Path):
    spill = spilled(streams, tmp_path / "spill")
    at = T0 + 6 * 60_000
    before, after = split_streams(spill, at)
    expected_before, expected_after = split_streams(streams, at)
    assert isinstance(before, SpilledStreams) and isinstance(after, SpilledStreams)
    assert dict(before.items()) == expected_before
    assert dict(after.items()) == expected_after
    assert before.events + after.events == spill.events
    gone = {e.log_uuid for e in next(iter(streams.values()))[:5]}
    kept = without_events(spill, gone)
    assert isinstance(kept, SpilledStreams) and kept.events == spill.events - 5
    assert dict(kept.items()) == without_events(streams, gone)


def test_retraining_on_spilled_streams_promotes_and_judges_as_in_memory(streams, tmp_path: Path):
    options = DetectorOptions()
    at = T0 + 8 * 60_000
    outcomes = []
    for source, root in ((streams, "a"), (spilled(streams, tmp_path / "spill"), "b")):
        store = FileModelStore(tmp_path / root)
        train_model("sessions", split_streams(streams, at)[0], config("sessions"), store, {})
        outcome = retrain(store, "sessions", config("sessions"), source, at, options, {})
        outcomes.append(outcome.to_json())
    for outcome in outcomes:
        outcome["candidate"].pop("version")
        outcome["current"].pop("version")
        outcome["reason"] = outcome["reason"].split(" of ")[0]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["candidate"]["events"] > 0


def test_what_every_model_shares_is_derived_once_until_the_streams_change(streams, tmp_path: Path):
    spill = spilled(streams, tmp_path)
    calls: list[int] = []

    def compute() -> int:
        calls.append(spill.events)
        return len(calls)

    assert spill.derived("vocabulary", compute) == 1
    assert spill.derived("vocabulary", compute) == 1
    host = next(iter(streams))
    spill.add(host, streams[host][:1])
    assert spill.derived("vocabulary", compute) == 2
    assert calls == [4_204, 4_205]
