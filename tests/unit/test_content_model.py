"""The content detector: a familiar template with unfamiliar text is flagged, with the tokens
that made it unusual and what the template usually says there; familiar text, free-text
variables and unseen templates are not its verdicts."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from sidecar.encoding.marks import marked_from_document
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.lifecycle.active import apply_false_positives
from sidecar.lifecycle.training import train_model
from sidecar.models.artifacts import load_artifact
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.content.detector import REASON_CONTENT, ContentDetector
from sidecar.models.content.forest import fit_forest, forest_scores
from sidecar.models.content.model import ContentConfig
from sidecar.models.content.rows import rows_of
from sidecar.models.content.stats import fit_stats
from sidecar.models.content.tokens import CLASSES, class_of, shape_of, tokens_of
from sidecar.models.store import FileModelStore
from sidecar.pipeline.annotate import anomaly_document
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.types import HostSequence, LogEvent
from tests.helpers import T0, ListSink

HOSTS = ("web-1", "web-2", "web-3", "web-4")
USERS = ("alice", "bob", "carol", "dave", "erin")


def _message(key: str, rng: random.Random) -> str:
    if key == "JOB":
        took = rng.randint(1, 900)
        return f"job {rng.randint(1, 9999)} state changed from RUNNING to SUCCEEDED in {took} ms"
    if key == "LOGIN":
        source = f"10.0.{rng.randint(0, 9)}.{rng.randint(1, 250)}"
        return f"session opened for user {rng.choice(USERS)} from {source}"
    if key == "READ":
        return f"read /data/part-{rng.randint(0, 999):05d} blk_{rng.getrandbits(40)} ok"
    # Free text: every message says something new, which is normal for this template.
    words = ["fix", "deploy", "retry", "check", "ship", "roll"]
    note = (
        rng.choice(words) + str(rng.randint(0, 99999)) + rng.choice("xyzw") * rng.randint(1, 3)
        for _ in range(3)
    )
    return f"user note: {' '.join(note)}"


def stream(host: str, events: int, seed: int, start_ms: int = T0) -> list[LogEvent]:
    rng = random.Random(f"{seed}:{host}")
    clock, out = start_ms, []
    for i in range(events):
        clock += rng.randint(500, 1_500)
        key = rng.choices(["JOB", "LOGIN", "READ", "NOTE"], [4, 3, 3, 1])[0]
        out.append(LogEvent(host, clock, f"{host}-{seed}-{i:05d}", key, "info", _message(key, rng)))
    return out


def planted(host: str, at_ms: int, key: str, message: str, uuid: str) -> LogEvent:
    return LogEvent(host, at_ms, uuid, key, "info", message)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("content-models")


@pytest.fixture(scope="module")
def artifact(store: Path):
    training = {h: stream(h, 2_500, seed=1) for h in HOSTS}
    return train_model("content", training, ContentConfig(), store, {})


@pytest.fixture()
def detector(artifact) -> ContentDetector:
    built = kind_of("content").detector(artifact, DetectorOptions())
    assert isinstance(built, ContentDetector)
    return built


FAILED = "job 77 state changed from RUNNING to FAILED in 12 ms"


def _with_plants(seed: int, *messages: tuple[str, str]) -> tuple[list[LogEvent], list[str]]:
    events = stream(HOSTS[0], 2_000, seed=seed, start_ms=T0 + 10**9)
    uuids = []
    for n, (key, message) in enumerate(messages):
        at = 500 + 400 * n
        uuid = f"planted-{seed}-{n}"
        events.insert(at, planted(HOSTS[0], events[at - 1].timestamp_ms + 1, key, message, uuid))
        uuids.append(uuid)
    return events, uuids


def _flagged(detector: ContentDetector, events: list[LogEvent]) -> dict[str, object]:
    batch = detector.detect([HostSequence(HOSTS[0], (), events)])
    return {d.event.log_uuid: d for d in batch.detections}


# -- tokens ---------------------------------------------------------------------------------


def test_digits_fold_and_each_token_gets_its_value_class() -> None:
    shape = shape_of("read /data/part-00590 from 10.1.2.3:50010 id 9f3a2b7c41 took 12.5 ms, ok.")
    assert shape == "read /data/part-0 from 0.0.0.0:0 id 0f0a0b0c0 took 0.0 ms, ok."
    assert shape_of("Logon ID: 0x3E7F0a") == shape_of("Logon ID: 0x1") == "Logon ID: 0"
    tokens = tokens_of(shape)
    assert tokens == [
        "read",
        "/data/part-0",
        "from",
        "0.0.0.0:0",
        "id",
        "<hex>",
        "took",
        "0.0",
        "ms",
        "ok",
    ]
    assert [CLASSES[class_of(t)] for t in tokens] == [
        "word", "path", "word", "ip", "word", "hex", "word", "num", "word", "word",
    ]  # fmt: skip


def test_a_hex_id_drawn_only_from_letters_is_an_id_not_a_new_word() -> None:
    # One random six-character id in 350 has no digit; read as a word, each was "unseen".
    for message in ("Key Identifier: afccfe", "Key Identifier: DBEFFF", "Key Identifier: 0a9f1e"):
        assert tokens_of(shape_of(message)) == ["Key", "Identifier", "<hex>"]
    assert [CLASSES[class_of(t)] for t in tokens_of("Facade faded")] == ["word", "word"]


def test_the_token_table_keeps_the_most_common_entries_under_its_cap() -> None:
    messages = ["disk sda ok"] * 5 + ["disk sdb ok"] * 3 + ["disk sdc ok"]
    rows = rows_of(np.full(len(messages), 2), messages, ["<pad>", "<unk>", "DISK/info"])
    full, capped = fit_stats(rows, 3, max_entries=10), fit_stats(rows, 3, max_entries=4)
    assert (len(full.hashes), full.dropped) == (5, 0)
    assert (len(capped.hashes), capped.dropped) == (4, 1)
    counts = dict(zip(rows.tokens[2], capped.lookup(rows.of_row(rows.hashes, 2)), strict=True))
    assert counts == {"disk": 9, "sdc": 0, "ok": 9}  # the rarest entry left out: unseen now


def test_the_forest_kept_as_arrays_scores_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1_500, 6))
    x[:4] += 7.0
    mine = forest_scores(fit_forest(x, trees=50, max_samples=256, seed=7), x)
    reference = (
        -IsolationForest(n_estimators=50, max_samples=256, random_state=7).fit(x).score_samples(x)
    )
    assert np.abs(mine - reference).max() < 1e-12
    assert mine[:4].min() > np.quantile(mine[4:], 0.99)


# -- verdicts -------------------------------------------------------------------------------


def test_a_never_seen_word_in_a_familiar_template_is_flagged_with_what_was_typical(
    detector,
) -> None:
    events, (failed,) = _with_plants(2, ("JOB", FAILED))
    hits = _flagged(detector, events)
    assert failed in hits
    hit = hits[failed]
    assert hit.reason == REASON_CONTENT and hit.model == "content"
    assert hit.p_value is not None and hit.p_value <= detector.threshold
    assert hit.grade is not None and hit.grade >= 50.0
    (token, *_) = hit.content.tokens
    assert (token.token, token.token_class, token.position, token.seen) == ("FAILED", "word", 7, 0)
    assert token.typical == (("SUCCEEDED", 1.0),)
    assert hit.content.unseen == 1 and hit.content.template_messages > 3_000


def test_an_unfamiliar_name_or_path_is_flagged_and_familiar_text_is_not(detector) -> None:
    events, (user, path, familiar) = _with_plants(
        3,
        ("LOGIN", "session opened for user mallory from 10.0.1.1"),
        ("READ", "read /etc/shadow blk_1f ok"),
        ("LOGIN", "session opened for user carol from 10.0.1.1"),
    )
    hits = _flagged(detector, events)
    assert user in hits and path in hits and familiar not in hits
    assert hits[user].content.tokens[0].token == "mallory"
    assert hits[path].content.tokens[0].token == "/etc/shadow"


def test_normal_traffic_and_free_text_templates_stay_quiet(detector) -> None:
    fresh = [HostSequence(h, (), stream(h, 3_000, seed=4, start_ms=T0 + 10**9)) for h in HOSTS]
    batch = detector.detect(fresh)
    assert batch.scored == 12_000
    # Every NOTE brings new words; the template's novelty rate says that is its normal.
    assert len(batch.detections) == 0


def test_unseen_templates_are_left_to_the_sequence_models_and_counted(detector) -> None:
    events, (unseen,) = _with_plants(5, ("PANIC", "kernel panic: not syncing"))
    hits = _flagged(detector, events)
    assert unseen not in hits
    assert detector.skipped["unknown_key"] == 1
    assert detector.distinct_rows < detector.judged_events


def test_artifacts_round_trip_with_identical_verdicts(artifact, detector, store: Path) -> None:
    events, _ = _with_plants(
        6, ("JOB", FAILED), ("LOGIN", "session opened for user eve from 10.0.0.1")
    )
    reloaded = load_artifact(store, "content")
    assert reloaded.version == artifact.version
    again = kind_of("content").detector(reloaded, DetectorOptions())
    first, second = _flagged(detector, events), _flagged(again, events)
    assert len(first) >= 2
    assert {u: d.content for u, d in first.items()} == {u: d.content for u, d in second.items()}


def test_a_cycle_writes_content_documents_the_strict_mapping_holds(detector) -> None:
    events, (failed,) = _with_plants(7, ("JOB", FAILED))
    sink = ListSink()
    run_cycle(
        FileSource(events),
        [detector],
        sink,
        MemoryCheckpoints(),
        now_ms=T0,
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=None),
    )
    (doc,) = [d for d in sink.documents.values() if d["log_uuid"] == failed]
    assert doc["reason"] == "content" and doc["model"]["name"] == "content"
    assert doc["content"]["tokens"][0] == {
        "token": "FAILED",
        "class": "word",
        "position": 7,
        "seen": 0,
        "typical": [{"token": "SUCCEEDED", "share": 1.0}],
    }


# -- feedback -------------------------------------------------------------------------------


def test_a_marked_variation_is_learned_while_other_unseen_text_is_still_flagged(
    artifact, detector, tmp_path: Path
) -> None:
    events, (failed,) = _with_plants(8, ("JOB", FAILED))
    hit = _flagged(detector, events)[failed]
    # The analyst: "jobs fail now and then; not an incident".
    mark = marked_from_document("fp-1", anomaly_document(hit, T0))
    store = FileModelStore(tmp_path)

    updated = apply_false_positives(store, artifact, [mark], DetectorOptions())

    assert updated is not None and updated.parent == artifact.version
    assert updated.manifest["online_update"]["marks_learned"] == 1
    after = kind_of("content").detector(load_artifact(store, "content"), DetectorOptions())
    events, (again, other) = _with_plants(
        9,
        ("JOB", "job 5 state changed from RUNNING to FAILED in 40 ms"),
        ("JOB", "job 5 state changed from RUNNING to KILLED in 40 ms"),
    )
    before_hits, after_hits = _flagged(detector, events), _flagged(after, events)
    assert again in before_hits and other in before_hits
    assert again not in after_hits and other in after_hits
    fresh = [HostSequence(h, (), stream(h, 2_000, seed=10, start_ms=T0 + 10**9)) for h in HOSTS]
    assert len(after.detect(fresh).detections) == 0
