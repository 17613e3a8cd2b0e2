"""DeepLog's parameter value model: timing and numbers per log key, judged against a Gaussian
of held-out prediction errors."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sidecar.encoding.marks import marked_from_document
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.lifecycle.active import apply_false_positives
from sidecar.lifecycle.training import train_model
from sidecar.models.artifacts import load_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.parameter.detector import REASON_PARAMETER, ParameterDetector
from sidecar.models.parameter.features import layout_of, previous_of_same_key
from sidecar.models.parameter.fit import fit_parameter_model
from sidecar.models.parameter.model import TIMING, ParameterConfig, predict
from sidecar.models.parameter.slots import choose_slots, is_counter, number_slots, slot_source
from sidecar.models.store import FileModelStore
from sidecar.pipeline.annotate import anomaly_document
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.types import HostSequence, LogEvent
from tests.helpers import T0, ListSink

HOSTS = [f"app-{i}" for i in range(4)]
CONFIDENCE = 0.995


def _message(key: str, rng: random.Random) -> str:
    if key == "A":
        return f"Request served, took {round(rng.gauss(120, 10))} ms"
    if key == "C":
        return f"Cache holds {round(rng.gauss(5000, 200))} entries, sequence {rng.randint(1, 9)}"
    return "User session refreshed"


def normal_stream(host: str, events: int, seed: int, start_ms: int = T0) -> list[LogEvent]:
    """Keys A, B, C in random order, one every 2 s ± 0.2 s; A's duration ~ N(120, 10) ms."""
    rng = random.Random(f"{seed}:{host}")
    clock, out = start_ms, []
    for i in range(events):
        clock += max(1, round(rng.gauss(2_000, 200)))
        key = rng.choices("ABC", [3, 2, 2])[0]
        out.append(LogEvent(host, clock, f"{host}-{seed}-{i:05d}", key, "info", _message(key, rng)))
    return out


def with_message(event: LogEvent, message: str) -> LogEvent:
    return replace(event, message=message)


def later(events: list[LogEvent], ms: int) -> list[LogEvent]:
    return [replace(e, timestamp_ms=e.timestamp_ms + ms) for e in events]


@pytest.fixture(scope="module")
def training() -> dict[str, list[LogEvent]]:
    streams = {h: normal_stream(h, 1_500, seed=1) for h in HOSTS}
    # A key seen three times: too rare to model.
    streams[HOSTS[0]][100] = replace(streams[HOSTS[0]][100], event_id="R", message="rare 1")
    streams[HOSTS[1]][200] = replace(streams[HOSTS[1]][200], event_id="R", message="rare 2")
    streams[HOSTS[2]][300] = replace(streams[HOSTS[2]][300], event_id="R", message="rare 3")
    return streams


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("parameter-models")


@pytest.fixture(scope="module")
def artifact(training, store: Path):
    return train_model("parameters", training, ParameterConfig(confidence=CONFIDENCE), store, {})


@pytest.fixture()
def detector(artifact) -> ParameterDetector:
    built = kind_of("parameters").detector(artifact, DetectorOptions())
    assert isinstance(built, ParameterDetector)
    return built


def _a_event(events: list[LogEvent], after: int) -> int:
    return next(i for i, e in enumerate(events) if i >= after and e.event_id == "A")


# -- features -------------------------------------------------------------------------------


def test_numbers_are_read_by_the_word_before_them_and_identifiers_are_not_numbers() -> None:
    assert number_slots("Request served, took 120 ms") == [("took#0", 120.0)]
    assert number_slots("uid=0 euid=-1 from 10.0.0.7:5000 port 22 ssh2") == [
        ("uid#0", 0.0),
        ("euid#0", -1.0),
        ("port#0", 22.0),
    ]
    assert number_slots("host-003 v6.1.7601 blk_-42 0x1f at 2016/9/27:20:30:31.455") == []
    assert number_slots("took 3 then took 4.5") == [("took#0", 3.0), ("took#1", 4.5)]
    assert slot_source("took#1") == "number 2 after 'took'"


def test_slots_are_the_positions_numeric_in_most_messages() -> None:
    messages = [f"took {i} ms" for i in range(9)] + ["took ages", None]
    parsed = [number_slots(m) for m in messages]
    assert choose_slots(parsed, 0.8, 4) == [("took#0", 9 / 11)]
    assert choose_slots(parsed, 0.9, 4) == []
    assert is_counter([list(range(20))]) and not is_counter([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]])


def test_a_key_history_is_the_same_key_on_the_same_host_most_recent_first() -> None:
    runs = [
        [LogEvent("h1", t, f"a{t}", k, "info") for t, k in enumerate("ABAAB")],
        [LogEvent("h2", t, f"b{t}", k, "info") for t, k in enumerate("AB")],
    ]
    vocabulary = Vocabulary.fit(e for run in runs for e in run)
    previous = previous_of_same_key(layout_of(runs, vocabulary), 2)
    assert previous.tolist() == [
        [-1, -1],
        [-1, -1],
        [0, -1],
        [2, 0],
        [1, -1],  # h1: A B A A B
        [-1, -1],
        [-1, -1],  # h2 starts afresh
    ]


def test_counters_are_not_parameters() -> None:
    streams = {
        host: [
            LogEvent(host, T0 + 1_000 * i, f"{host}{i}", "D", "info", f"seq {i} load {i % 7}")
            for i in range(100)
        ]
        for host in ("h1", "h2")
    }
    vocabulary = Vocabulary.fit(e for run in streams.values() for e in run)
    fitted = fit_parameter_model(streams, vocabulary, ParameterConfig())
    assert fitted.slots[vocabulary.id_of("D", "info")] == ["load#0"]


def test_training_picks_the_stable_numbers_of_each_key_and_skips_rare_keys(artifact) -> None:
    section = artifact.manifest["parameters"]
    slots = {artifact.vocabulary.label_of(k): s for k, s in enumerate(section["slots"]) if s}
    # C's "sequence" number is a stable position too; B has no numbers; R is too rare.
    assert slots == {"A/info": ["took#0"], "C/info": ["holds#0", "sequence#0"]}
    assert section["modelled_keys"] == 3 and section["rare_keys"] == 1
    assert section["held_out_flag_rate"] < 0.02


# -- verdicts -------------------------------------------------------------------------------


def test_an_injected_value_is_flagged_and_the_parameter_named(detector) -> None:
    events = normal_stream(HOSTS[0], 400, seed=2)
    i = _a_event(events, 200)
    events[i] = with_message(events[i], "Request served, took 5000 ms")
    batch = detector.detect([HostSequence(HOSTS[0], (), events)])
    flagged = {d.event.log_uuid: d for d in batch.detections}
    assert events[i].log_uuid in flagged
    hit = flagged[events[i].log_uuid]
    assert hit.reason == REASON_PARAMETER and hit.parameters is not None
    assert hit.parameters.deviating == "value_1"
    value = hit.parameters.values[1]
    assert value.source == "number after 'took'" and value.observed == 5000.0
    assert 100 < value.expected < 140
    assert hit.parameters.error > hit.parameters.threshold and hit.score > CONFIDENCE


def test_a_long_silence_before_an_event_is_flagged_as_timing(detector) -> None:
    events = normal_stream(HOSTS[1], 400, seed=3)
    events = events[:250] + later(events[250:], 3_600_000)  # an hour of nothing
    batch = detector.detect([HostSequence(HOSTS[1], (), events)])
    flagged = {d.event.log_uuid: d for d in batch.detections}
    hit = flagged.get(events[250].log_uuid)
    assert hit is not None and hit.parameters is not None
    assert hit.parameters.deviating == TIMING
    timing = hit.parameters.values[0]
    assert timing.observed == pytest.approx(
        3_600 + (events[250].timestamp_ms - 3_600_000 - events[249].timestamp_ms) / 1000
    )
    assert timing.expected < 10
    # The events after the silence are back to normal gaps.
    assert events[251].log_uuid not in flagged


def test_normal_events_are_flagged_near_the_configured_tail_probability(detector) -> None:
    fresh = [HostSequence(h, (), normal_stream(h, 2_500, seed=7)) for h in HOSTS]
    batch = detector.detect(fresh)
    rate = len(batch.detections) / batch.scored
    assert batch.scored > 9_900
    assert rate < 0.02, rate  # nominal tail 0.5%


def test_a_stricter_confidence_at_scoring_time_flags_fewer(artifact) -> None:
    fresh = [HostSequence(h, (), normal_stream(h, 1_000, seed=8)) for h in HOSTS]
    build = kind_of("parameters").detector
    loose = build(artifact, DetectorOptions(parameter_confidence=0.9)).detect(fresh)
    strict = build(artifact, DetectorOptions(parameter_confidence=0.9999)).detect(fresh)
    assert len(strict.detections) < len(loose.detections)


def test_rare_and_unknown_keys_are_skipped_and_counted(detector) -> None:
    events = normal_stream(HOSTS[2], 60, seed=4)
    events[10] = replace(events[10], event_id="R", message="rare took 99999 ms")
    events[20] = replace(events[20], event_id="NEVER-SEEN", message="took 99999 ms")
    batch = detector.detect([HostSequence(HOSTS[2], (), events)])
    flagged = {d.event.log_uuid for d in batch.detections}
    assert events[10].log_uuid not in flagged and events[20].log_uuid not in flagged
    assert detector.skipped["rare_key"] == 1 and detector.skipped["unknown_key"] == 1
    # Of 60 events: 2 skipped by key; the first has no previous event, so an event of B (no
    # numbers) would have nothing to judge.
    assert batch.scored == 60 - 2 - detector.skipped["nothing_observed"]


def test_the_saved_tail_gives_the_first_new_event_its_timing(detector) -> None:
    events = normal_stream(HOSTS[3], 300, seed=5)
    events = events[:200] + later(events[200:], 3_600_000)
    j = _a_event(events, 192)
    assert j < 200
    events[j] = with_message(events[j], "Request served, took 5000 ms")  # judged last cycle
    context, new = tuple(events[190:200]), events[200:]
    with_tail = detector.detect([HostSequence(HOSTS[3], context, new)])
    assert new[0].log_uuid in {d.event.log_uuid for d in with_tail.detections}
    # The tail's own events are context, never judged again.
    assert {d.event.log_uuid for d in with_tail.detections} <= {e.log_uuid for e in new}
    # Without the tail nothing comes before the first event: its timing is not observed, even
    # with another host's events (an hour earlier) just before it in the batch.
    other = HostSequence(HOSTS[0], (), events[:200])
    without = detector.detect([other, HostSequence(HOSTS[3], (), new)])
    assert new[0].log_uuid not in {d.event.log_uuid for d in without.detections}


def test_artifacts_round_trip_with_identical_verdicts(artifact, detector, store: Path) -> None:
    events = normal_stream(HOSTS[0], 600, seed=6)
    i = _a_event(events, 300)
    events[i] = with_message(events[i], "Request served, took 5000 ms")
    events = events[:400] + later(events[400:], 7_200_000)
    sequences = [HostSequence(HOSTS[0], (), events)]
    reloaded = load_artifact(store, "parameters")
    assert reloaded.version == artifact.version
    again = kind_of("parameters").detector(reloaded, DetectorOptions())
    first, second = detector.detect(sequences), again.detect(sequences)
    assert len(first.detections) >= 2 and first.scored == second.scored
    assert [(d.event.log_uuid, d.parameters) for d in first.detections] == [
        (d.event.log_uuid, d.parameters) for d in second.detections
    ]


def test_a_manifest_without_slots_is_refused(artifact, tmp_path: Path) -> None:
    manifest = {k: v for k, v in artifact.manifest.items() if k != "parameters"}
    with pytest.raises(ModelError, match="parameter slots"):
        kind_of("parameters").empty_net(artifact.vocabulary, artifact.config, manifest)


def test_a_cycle_writes_parameter_anomaly_documents(detector) -> None:
    events = normal_stream(HOSTS[0], 300, seed=9)
    i = _a_event(events, 150)
    events[i] = with_message(events[i], "Request served, took 5000 ms")
    sink = ListSink()
    run_cycle(
        FileSource(events),
        [detector],
        sink,
        MemoryCheckpoints(),
        now_ms=T0,
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=None),
    )
    (doc,) = [d for d in sink.documents.values() if d["log_uuid"] == events[i].log_uuid]
    assert doc["reason"] == "parameter" and doc["model"]["name"] == "parameters"
    assert doc["parameters"]["deviating"] == "value_1"
    assert doc["parameters"]["values"][1]["observed"] == 5000.0
    assert doc == anomaly_document(
        next(
            d
            for d in detector.detect([HostSequence(HOSTS[0], (), events)]).detections
            if d.event.log_uuid == events[i].log_uuid
        ),
        T0,
    )


def test_timing_and_values_are_log_scaled_before_normalising(artifact) -> None:
    net = artifact.net
    key = artifact.vocabulary.id_of("A", "info")
    assert float(net.mean[key, 0]) == pytest.approx(np.log1p(2.0), abs=0.05)
    assert float(net.mean[key, 1]) == pytest.approx(np.log1p(120.0), abs=0.05)


def test_the_network_forward_and_the_numpy_scoring_path_agree(artifact) -> None:
    net = artifact.net
    rng = np.random.default_rng(0)
    history = rng.normal(size=(50, net.history * net.dims))
    keys = rng.integers(0, net.weights.shape[0], size=50)
    with torch.inference_mode():
        through_torch = net(torch.from_numpy(history), torch.from_numpy(keys)).numpy()
    assert np.allclose(
        through_torch, predict(net.weights.detach().double().numpy(), history, keys), atol=1e-6
    )


# -- feedback -------------------------------------------------------------------------------


def _with_a_duration(seed: int, ms: int) -> tuple[list[LogEvent], str]:
    """A normal stream in which one A event took `ms`; also that event's log_uuid."""
    events = normal_stream(HOSTS[0], 400, seed=seed)
    i = _a_event(events, 200)
    events[i] = with_message(events[i], f"Request served, took {ms} ms")
    return events, events[i].log_uuid


def _flags(detector, events: list[LogEvent], log_uuid: str) -> bool:
    batch = detector.detect([HostSequence(HOSTS[0], (), events)])
    return log_uuid in {d.event.log_uuid for d in batch.detections}


def test_a_marked_deviation_is_accepted_while_larger_ones_and_other_values_are_still_flagged(
    artifact, detector, tmp_path: Path
) -> None:
    events, slow = _with_a_duration(seed=21, ms=5_000)
    (hit,) = [
        d
        for d in detector.detect([HostSequence(HOSTS[0], (), events)]).detections
        if d.event.log_uuid == slow
    ]
    # The analyst: "5 s requests happen during backups; not an incident".
    mark = marked_from_document("fp-1", anomaly_document(hit, T0))
    assert mark.deviations[1] == hit.parameters.values[1].deviation > 0
    store = FileModelStore(tmp_path)

    updated = apply_false_positives(store, artifact, [mark], DetectorOptions())

    assert updated is not None and store.active("parameters") == updated.version
    assert updated.parent == artifact.version
    assert updated.manifest["online_update"]["accepted_keys"] == ["A/info"]
    band = updated.manifest["parameters"]["accepted"]["A/info"]
    assert band["above"][1] == pytest.approx(hit.parameters.values[1].deviation * 1.25, rel=1e-3)
    assert band["below"][1] == 0.0  # slower was accepted, not faster
    assert updated.version != artifact.version
    after = kind_of("parameters").detector(load_artifact(store, "parameters"), DetectorOptions())
    # The same pattern again, and a little slower, passes; far slower, far faster, another
    # key's numbers and a long silence are flagged as before.
    for ms, flagged in [(5_000, False), (5_400, False), (60_000, True), (1, True)]:
        events, uuid = _with_a_duration(seed=22, ms=ms)
        assert _flags(detector, events, uuid), ms
        assert _flags(after, events, uuid) is flagged, ms
    events = normal_stream(HOSTS[0], 400, seed=23)
    c = next(i for i, e in enumerate(events) if i >= 200 and e.event_id == "C")
    events[c] = with_message(events[c], "Cache holds 90000 entries, sequence 3")
    assert _flags(detector, events, events[c].log_uuid)
    assert _flags(after, events, events[c].log_uuid)
    events = normal_stream(HOSTS[1], 400, seed=24)
    events = events[:250] + later(events[250:], 3_600_000)
    assert _flags(after, events, events[250].log_uuid)
    # On normal traffic it flags no more than before.
    fresh = [HostSequence(h, (), normal_stream(h, 1_000, seed=25)) for h in HOSTS]
    assert len(after.detect(fresh).detections) <= len(detector.detect(fresh).detections)


def test_marks_without_recorded_deviations_are_counted_not_guessed(artifact, tmp_path) -> None:
    bare = marked_from_document("fp-2", {"event": {"id": "A", "severity": "info"}})
    updated = apply_false_positives(FileModelStore(tmp_path), artifact, [bare], DetectorOptions())
    assert updated is not None
    assert updated.manifest["online_update"]["marks_without_deviations"] == 1
    assert updated.manifest["parameters"]["accepted"] == {}
