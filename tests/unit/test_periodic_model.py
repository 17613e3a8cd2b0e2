"""The periodic model: a familiar key that a host starts logging at a steady period, a beacon,
is flagged; the fleet's own clocks (a heartbeat every five minutes) and ordinary random
activity are not."""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import pytest

from sidecar.errors import ModelError
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.lifecycle.training import train_model
from sidecar.models.artifacts import load_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.periodic.chains import ChainRule, longest_chain
from sidecar.models.periodic.detector import REASON_PERIODIC, PeriodicDetector
from sidecar.models.periodic.model import PeriodicConfig, period_step
from sidecar.models.store import FileModelStore
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.types import HostSequence, LogEvent
from tests.helpers import ListSink

START = 1_700_006_400_000
HOUR = 3_600_000
HOSTS = [f"app-{i}" for i in range(1, 7)]


def day(host: str, index: int, seed: int) -> list[LogEvent]:
    """A day of a host: keys A-D at random (about 40 an hour) and a heartbeat HB every
    300 s give or take 2 s."""
    rng = random.Random(f"{seed}:{host}:{index}")
    start, end = START + index * 24 * HOUR, START + (index + 1) * 24 * HOUR
    out, t = [], start
    while t < end:
        out.append(LogEvent(host, t, f"{host}-{index}-{t}", rng.choice("ABCD"), "info", "work"))
        t += int(rng.expovariate(1 / 90_000)) + 1
    t = start + rng.randrange(300_000)
    while t < end:
        out.append(LogEvent(host, t, f"{host}-{index}-hb-{t}", "HB", "info", "heartbeat"))
        t += 300_000 + rng.randrange(-2_000, 2_000)
    return sorted(out, key=lambda e: (e.timestamp_ms, e.log_uuid))


def beacon(host: str, index: int, at_hour: int, every_ms: int, beats: int) -> list[LogEvent]:
    """`beats` events of the familiar key B every `every_ms`, within 300 ms."""
    rng = random.Random(f"beacon:{host}:{index}")
    t = START + index * 24 * HOUR + at_hour * HOUR
    out = []
    for i in range(beats):
        out.append(LogEvent(host, t, f"{host}-beacon-{i}", "B", "info", "connect"))
        t += every_ms + rng.randrange(-300, 300)
    return out


def with_beacon(host: str, index: int, seed: int) -> list[LogEvent]:
    events = [*day(host, index, seed), *beacon(host, index, 10, 60_000, 90)]
    return sorted(events, key=lambda e: (e.timestamp_ms, e.log_uuid))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory):
    store = FileModelStore(tmp_path_factory.mktemp("models"))
    history = {h: [e for i in range(3) for e in day(h, i, seed=1)] for h in HOSTS}
    train_model("periodic", history, PeriodicConfig(), store, {}, budget=(0.05, 4))
    return load_artifact(store, "periodic")


@pytest.fixture(scope="module")
def detector(artifact) -> PeriodicDetector:
    built = kind_of("periodic").detector(artifact, DetectorOptions(alert_budget=0.05))
    assert isinstance(built, PeriodicDetector)
    return built


def test_a_chain_of_steady_beats_costs_its_chance_per_confirmed_beat() -> None:
    earlier = [0, 60_000, 120_000, 180_000]
    chain = longest_chain(240_000, earlier, 240_000, ChainRule())
    assert chain is not None
    assert chain.gaps == 4 and chain.period_ms == 60_000.0 and chain.key_events == 5
    # Five events in four minutes; each of the three confirming beats could fall in its
    # ±6 s window by chance with probability 1 - exp(-12 s × 5 / 240 s).
    assert chain.surprise == pytest.approx(3 * -math.log(-math.expm1(-12_000 * 5 / 240_000)))


def test_a_beat_out_of_step_ends_the_chain() -> None:
    # 180 s -> 240 s sets a 60 s period that 120 s would confirm, but there is no event
    # there; the best chain left is 60 s -> 150 s -> 240 s, one confirmed beat of 90 s.
    chain = longest_chain(240_000, [0, 60_000, 150_000, 180_000], 240_000, ChainRule())
    assert chain is not None and chain.gaps == 2 and chain.period_ms == 90_000.0


def test_periods_outside_the_bounds_are_not_looked_for() -> None:
    rule = ChainRule()
    assert longest_chain(4_000, [1_000, 2_000, 3_000], 4_000, rule) is None
    assert longest_chain(3 * 3_700_000, [0, 3_700_000, 7_400_000], 3 * 3_700_000, rule) is None


def test_a_beacon_of_a_familiar_key_is_flagged(detector) -> None:
    batch = detector.detect([HostSequence("app-3", (), with_beacon("app-3", 5, seed=2))])
    assert batch.detections, "90 beats a minute apart went unflagged"
    beats = [d for d in batch.detections if d.event.log_uuid.startswith("app-3-beacon-")]
    # From the chain's fifth beat or so to the last; an ordinary B that happens to land on a
    # beat joins the chain too, so nothing is flagged outside the beacon's hour and a half.
    assert 80 <= len(beats) <= 90 and len(batch.detections) - len(beats) <= 5
    first, end = beats[0].event.timestamp_ms, beats[-1].event.timestamp_ms
    assert all(first - 120_000 <= d.event.timestamp_ms <= end for d in batch.detections)
    assert {d.reason for d in batch.detections} == {REASON_PERIODIC}
    last = beats[-1]
    assert last.event.log_uuid == "app-3-beacon-89"
    values = {v.name: v for v in last.parameters.values}
    assert values["period_seconds"].observed == pytest.approx(60.0, abs=0.5)
    assert values["beats"].observed >= 10
    assert last.parameters.error > last.parameters.threshold
    assert last.grade is not None and last.grade >= 50.0


def test_the_fleets_heartbeat_and_ordinary_days_are_not_flagged(detector) -> None:
    days = {h: day(h, 6, seed=3) for h in HOSTS}
    batch = detector.detect([HostSequence(h, (), e) for h, e in days.items()])
    assert batch.detections == []
    assert batch.scored == sum(len(e) for e in days.values())


def test_a_beacon_across_two_cycles_is_judged_as_in_one(detector) -> None:
    events = [*day("app-2", 4, seed=5), *with_beacon("app-2", 5, seed=5)]
    end = START + 6 * 24 * HOUR
    runs = []
    for cuts in ([end], [START + 5 * 24 * HOUR + 10 * HOUR + 40 * 60_000, end]):
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
    assert len(one) >= 80 and one == two
    assert {doc["reason"] for doc in one.values()} == {"periodic"}


def test_the_manifest_keeps_the_known_periods(artifact, tmp_path: Path) -> None:
    known = artifact.manifest["periodic"]["known_periods"]
    # The heartbeat's five minutes are known for its key in the host group.
    assert period_step(300_000) in known["app"]["HB/info"]
    assert "B/info" not in known["app"] or period_step(60_000) not in known["app"]["B/info"]
    assert artifact.manifest["calibration"]["n"] > 0
    manifest = {k: v for k, v in artifact.manifest.items() if k != "periodic"}
    with pytest.raises(ModelError, match="no known periods"):
        kind_of("periodic").empty_net(artifact.vocabulary, artifact.config, manifest)
    rebuilt = kind_of("periodic").detector(
        dataclasses.replace(artifact), DetectorOptions(alert_budget=0.05)
    )
    assert isinstance(rebuilt, PeriodicDetector) and rebuilt.rule == ChainRule()
