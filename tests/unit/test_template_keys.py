"""Event ids mined from MESSAGE (SIDECAR_TEMPLATE_MINING): which events get one, how they are
counted, and that cycles, restarts and the embedded commands all hand the same message the
same id. The cluster-backed state is tested against a real node in
tests/integration/test_template_mining_cycles.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from devtools.demo.generator import documents_with_incidents, fleet, normal_documents
from sidecar.app.metrics import SidecarMetrics
from sidecar.encoding.events import FieldNames, parse_event
from sidecar.errors import CheckpointError
from sidecar.files.minerstate import FileMinerStore, MemoryMinerStore
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.templates.drain import TemplateMiner
from sidecar.templates.keys import (
    MINED_PREFIX,
    TemplateLabeller,
    key_scheme_mismatch,
    mined_event_id,
)
from sidecar.types import (
    CycleReport,
    DetectionBatch,
    HostSequence,
    HostState,
    InputStats,
    LogEvent,
    MiningStats,
)
from tests.helpers import INCIDENTS, T0, ListSink, read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
LOGON = "Invalid user webmaster from 173.234.31.186"
# A value where the name stood: the place varies, so both share one template.
LOGON_AGAIN = "Invalid user test9 from 10.0.0.7"


def event(uuid: str, event_id: str = "", message: str | None = LOGON, ts: int = T0) -> LogEvent:
    return LogEvent("host-a", ts, uuid, event_id, "info", message)


def without_event_id(docs: list[dict]) -> list[dict]:
    return [{k: v for k, v in d.items() if k != "EVENTID"} for d in docs]


def parsed(docs: list[dict], stats: InputStats) -> list[LogEvent]:
    events = [parse_event(d, FieldNames(), stats, event_id_optional=True) for d in docs]
    return [e for e in events if e is not None]


# -- which events get a mined id, and how they are counted ------------------------------------


def test_a_missing_event_id_is_bad_input_only_without_template_mining() -> None:
    doc = {
        "_zl_timestamp": T0,
        "log_uuid": "u",
        "HOSTNAME": "h",
        "SEVERITY": "info",
        "MESSAGE": LOGON,
    }
    today, mining = InputStats(), InputStats()
    parse_event(doc, FieldNames(), today)
    parse_event(doc, FieldNames(), mining, event_id_optional=True)
    assert today.repaired == {"missing_event_id": 1}
    assert mining.repaired == {}


def test_auto_keys_only_events_without_event_id_by_their_template() -> None:
    labeller = TemplateLabeller("auto", MemoryMinerStore())
    stats = InputStats()

    result = labeller.label(
        [event("a", "4624"), event("b"), event("c", message=LOGON_AGAIN)], stats
    )

    kept, first, second = result.events
    assert kept == event("a", "4624")
    assert first.event_id.startswith(MINED_PREFIX) and first.event_id == second.event_id
    assert first.event_id == mined_event_id(labeller.miner.match(LOGON).id)  # type: ignore[union-attr]
    assert (first.log_uuid, first.message, first.severity) == ("b", LOGON, "info")
    assert result.mined == 2
    assert stats.repaired == {}  # keyed on purpose, not repaired: counted as mined instead


def test_auto_counts_an_event_with_neither_event_id_nor_message_as_before() -> None:
    labeller = TemplateLabeller("auto", MemoryMinerStore())
    stats = InputStats()
    result = labeller.label([event("a", message=None), event("b", message="  ")], stats)
    assert [e.event_id for e in result.events] == ["", ""]
    assert result.mined == 0 and stats.repaired == {"missing_event_id": 2}


def test_always_ignores_event_ids_and_counts_events_without_a_message() -> None:
    labeller = TemplateLabeller("always", MemoryMinerStore())
    stats = InputStats()
    result = labeller.label([event("a", "4625"), event("b"), event("c", "4625", None)], stats)
    ids = [e.event_id for e in result.events]
    assert ids[0] == ids[1] and ids[0].startswith(MINED_PREFIX)
    assert ids[2] == ""
    assert result.mined == 2 and stats.repaired == {"missing_message": 1}


# -- state: saved when something was learned, shared, merged ----------------------------------


def test_a_restarted_labeller_gives_a_message_the_id_it_got_before() -> None:
    store = MemoryMinerStore()
    first = TemplateLabeller("auto", store)
    before = first.label([event("a"), event("b", message=LOGON_AGAIN)], InputStats()).events
    first.save()

    again = TemplateLabeller("auto", store).label([event("c", message=LOGON)], InputStats())

    assert again.events[0].event_id == before[0].event_id == before[1].event_id


def test_state_is_saved_only_when_a_template_was_added_or_generalised() -> None:
    store = MemoryMinerStore()
    labeller = TemplateLabeller("auto", store)
    labeller.save()
    assert store.state is None  # nothing labelled, nothing loaded

    labeller.label([event("a")], InputStats())
    labeller.save()
    saved = store.state
    labeller.label([event("b")], InputStats())  # the same message: only a size changes
    labeller.save()
    assert saved is not None and store.state is saved

    labeller.label([event("c", message=LOGON_AGAIN)], InputStats())  # generalises the template
    labeller.save()
    assert store.state is not saved


def test_the_state_file_keeps_what_two_writers_learned(tmp_path: Path) -> None:
    path = tmp_path / "models" / "template-miner.json"
    one = TemplateLabeller("auto", FileMinerStore(path))
    other = TemplateLabeller("auto", FileMinerStore(path))
    a = one.label([event("a")], InputStats()).events[0].event_id
    b = other.label([event("b", message="Connection closed by 10.0.0.1")], InputStats())
    one.save()
    other.save()  # has not seen `one`'s template: merges it in

    saved = TemplateMiner.from_json(path.read_bytes())
    assert {mined_event_id(i) for i in saved.clusters} == {a, b.events[0].event_id}
    assert orjson.loads(path.read_bytes())["format"] == 3
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_an_unreadable_state_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "template-miner.json"
    path.write_bytes(b'{"format": 99, "clusters": []}')
    with pytest.raises(CheckpointError, match="unreadable"):
        TemplateLabeller("auto", FileMinerStore(path)).label([event("a")], InputStats())


def test_a_state_saved_by_an_older_miner_is_refused_with_a_message_to_retrain(
    tmp_path: Path,
) -> None:
    path = tmp_path / "template-miner.json"
    path.write_bytes(b'{"format": 2, "clusters": []}')
    with pytest.raises(CheckpointError, match=r"older miner.*retrain"):
        TemplateLabeller("auto", FileMinerStore(path)).label([event("a")], InputStats())


def test_labelling_reports_new_templates_rare_templates_and_overflow() -> None:
    labeller = TemplateLabeller("auto", MemoryMinerStore(), max_clusters=2)
    messages = [LOGON, LOGON_AGAIN, "Connection closed by 10.0.0.1", "disk full", "fan stopped"]
    with capture_logs() as logs:
        result = labeller.label(
            [event(str(i), message=m) for i, m in enumerate(messages)], InputStats()
        )
    assert result.mining is not None
    # logon (one template for two messages), closed; then the miner is full.
    assert (result.mining.new_templates, result.mining.overflowed) == (3, 2)
    assert result.mining.templates_known == 3  # the two, and the one overflow template
    assert result.mining.rare_template_events == 5  # all seen fewer than 10 times
    full = [e for e in logs if e["event"] == "template_miner_full"]
    assert len(full) == 1 and full[0]["log_level"] == "warning", logs
    assert (full[0]["max_clusters"], full[0]["overflowed"]) == (2, 2)


def test_metrics_show_templates_and_warn_when_new_templates_keep_coming() -> None:
    metrics = SidecarMetrics()

    def cycle(new: int) -> None:
        report = CycleReport("c", 0, 0, mined_event_ids=200)
        report.mining = MiningStats(templates_known=50, new_templates=new, rare_template_events=30)
        metrics.record_cycle(report)

    with capture_logs() as logs:
        cycle(40)
        cycle(40)
    assert not [e for e in logs if e["event"] == "new_template_rate_high"], logs
    with capture_logs() as logs:
        cycle(40)  # a fifth of the events started a template, three cycles in a row
    warned = [e for e in logs if e["event"] == "new_template_rate_high"]
    assert len(warned) == 1 and warned[0]["log_level"] == "warning", logs
    assert (warned[0]["new_templates"], warned[0]["mined_event_ids"]) == (40, 200)
    cycle(1)
    value = metrics.registry.get_sample_value
    assert value("sidecar_templates_known") == 50
    assert value("sidecar_new_templates_total") == 121
    assert value("sidecar_rare_template_events_total") == 120


def test_training_keys_events_by_the_template_their_template_was_merged_into() -> None:
    labeller = TemplateLabeller("auto", MemoryMinerStore())
    users = ["cyrus", "news", "oracle", "guest", "support"]
    events = [event(u, message=f"session closed for user {u}") for u in users]
    # One batch each (as cycles come): the first names looked like statements of their own.
    online = [labeller.label([e], InputStats()).events[0] for e in events]
    assert len({e.event_id for e in online}) > 1
    final = labeller.final_ids(online)
    assert len({e.event_id for e in final}) == 1
    assert {e.event_id for e in final} == {mined_event_id(i) for i in labeller.miner.clusters}


def test_a_statement_the_models_know_keeps_its_id_when_new_variants_merge_it_away() -> None:
    trained = TemplateLabeller("auto", MemoryMinerStore())
    nightly = "worker alpha started the nightly job"
    (known,) = {
        e.event_id for e in trained.label([event("t", message=nightly)], InputStats()).events
    }
    # Scoring: four new workers show the place varies; the merged template's id is the
    # least of the five, not the one the models were trained on.
    variants = [
        event(w, message=f"worker {w} started the nightly job")
        for w in ("beta", "gamma", "delta", "epsilon")
    ]
    again = event("again", message=nightly)
    saved = trained.miner.to_json()
    plain = TemplateLabeller("auto", MemoryMinerStore(saved))
    aware = TemplateLabeller("auto", MemoryMinerStore(saved), known={known})

    unaware_ids = {e.event_id for e in plain.label([*variants, again], InputStats()).events}
    aware_ids = {e.event_id for e in aware.label([*variants, again], InputStats()).events}

    assert unaware_ids == {"T-0bf5249f59fb"} != {known}, "the scenario: the merge re-keys"
    assert aware_ids == {known} == {"T-d2f35135b8c6"}
    assert aware.final_ids([event("x", known)]) == [event("x", known)]


def test_describe_gives_an_event_s_template_and_values() -> None:
    labeller = TemplateLabeller("auto", MemoryMinerStore())
    labeller.label([event("a"), event("b", message=LOGON_AGAIN)], InputStats())
    described = labeller.describe("Invalid user root from 10.9.9.9")
    assert described is not None and described.template == "Invalid user <*> from <*>"
    assert described.variables == [("10.9.9.9", "ip"), ("root", "word")]


def test_events_that_all_carry_an_event_id_never_touch_the_state(tmp_path: Path) -> None:
    path = tmp_path / "template-miner.json"
    path.write_bytes(b"not even JSON")  # reading it would fail the cycle
    labeller = TemplateLabeller("auto", FileMinerStore(path))
    result = labeller.label([event("a", "4624"), event("b", "4625")], InputStats())
    labeller.save()
    assert [e.event_id for e in result.events] == ["4624", "4625"] and result.mined == 0
    assert path.read_bytes() == b"not even JSON"


# -- in a cycle -------------------------------------------------------------------------------


@dataclass
class RecordingDetector:
    """A detector that flags nothing and remembers what it was given (the Detector port)."""

    name: str = "recorder"
    version: str = "1"
    window_size: int = 5
    seen: list[HostSequence] = field(default_factory=list)
    workflows: None = None

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        self.seen.extend(sequences)
        return DetectionBatch([], sum(len(s.events) for s in sequences))


class FailingCheckpoints(MemoryCheckpoints):
    def save(self, states: Sequence[HostState]) -> int:
        raise CheckpointError("the state index refused the write")


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return without_event_id(normal_documents(fleet(3), T0, 80, seed=5))


def test_new_events_and_the_context_before_them_carry_mined_ids(docs: list[dict]) -> None:
    events = parsed(docs, InputStats())
    split = sorted(e.timestamp_ms for e in events)[len(events) // 2]
    detector, checkpoints = RecordingDetector(), MemoryCheckpoints()
    store = MemoryMinerStore()

    report = run_cycle(
        FileSource(events),
        [detector],
        ListSink(),
        checkpoints,
        now_ms=split + 10**9,
        # New hosts start at `split`: the events before it are read as their context.
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=10**9),
        keys=TemplateLabeller("auto", store),
    )

    scored = [e for s in detector.seen for e in s.events]
    context = [e for s in detector.seen for e in s.context]
    assert len(scored) == sum(e.timestamp_ms >= split for e in events)
    assert context and all(e.event_id.startswith(MINED_PREFIX) for e in [*scored, *context])
    assert report.mined_event_ids == len(scored) + len(context)
    assert "missing_event_id" not in report.input.repaired
    assert report.summary()["mined_event_ids"] == report.mined_event_ids
    metrics = SidecarMetrics()
    metrics.record_cycle(report)
    mined_total = metrics.registry.get_sample_value("sidecar_mined_event_ids_total")
    assert mined_total == report.mined_event_ids
    tails = [e for s in checkpoints.states.values() for e in s.tail]
    assert tails and all(e.event_id.startswith(MINED_PREFIX) for e in tails)
    # The ids are the saved miner's: a restarted process labels these messages alike, or,
    # where a template learned during the cycle that a place varies and was merged, the id
    # given leads to the template the message belongs to now.
    saved = TemplateMiner.from_json(store.state)  # type: ignore[arg-type]
    for e in scored:
        now = saved.match(e.message).id  # type: ignore[arg-type, union-attr]
        assert saved.resolve(e.event_id.removeprefix(MINED_PREFIX)) == now


def test_a_cycle_whose_cursors_fail_to_save_is_redone_with_the_same_ids(docs: list[dict]) -> None:
    events = parsed(docs, InputStats())
    store = MemoryMinerStore()
    options = CycleOptions(read_lag_ms=None, initial_lookback_ms=None)
    failed = RecordingDetector()
    with pytest.raises(CheckpointError):
        run_cycle(
            FileSource(events),
            [failed],
            ListSink(),
            FailingCheckpoints(),
            now_ms=T0,
            options=options,
            keys=TemplateLabeller("auto", store),
        )
    assert store.state is not None  # the templates were saved before the cursors failed
    redone = RecordingDetector()
    run_cycle(
        FileSource(events),
        [redone],
        ListSink(),
        MemoryCheckpoints(),
        now_ms=T0,
        options=options,
        keys=TemplateLabeller("auto", store),  # a fresh process: only the saved state
    )

    def ids(detector: RecordingDetector) -> dict[str, str]:
        return {e.log_uuid: e.event_id for s in detector.seen for e in s.events}

    # The same ids, or (for a template merged into another during the failed cycle, once a
    # place was seen to vary) the id the saved state resolves the first one to.
    saved = TemplateMiner.from_json(store.state)

    def resolved(event_id: str) -> str:
        return mined_event_id(saved.resolve(event_id.removeprefix(MINED_PREFIX)))

    assert {u: resolved(i) for u, i in ids(failed).items()} == ids(redone)
    assert len(ids(redone)) == len(events)


def test_without_template_mining_events_keep_their_empty_id(docs: list[dict]) -> None:
    events = parsed(docs, InputStats())
    detector = RecordingDetector()
    report = run_cycle(
        FileSource(events),
        [detector],
        ListSink(),
        MemoryCheckpoints(),
        now_ms=T0,
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=None),
    )
    assert report.mined_event_ids == 0
    assert {e.event_id for s in detector.seen for e in s.events} == {""}


# -- embedded mode, end to end ----------------------------------------------------------------


def _cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "SIDECAR_TRAIN_EPOCHS": "10",
            "SIDECAR_TRAIN_BATCH_SIZE": "512",
            "SIDECAR_LOG_FORMAT": "json",
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args], env=env, capture_output=True, text=True
    )


def test_train_and_score_from_files_without_event_ids(tmp_path: Path) -> None:
    # Small and briefly trained: the incident is a message type never seen in training, which
    # any model flags as an unseen key.
    training = without_event_id(normal_documents(fleet(4), T0, 250, seed=1))
    live, incidents = documents_with_incidents(
        fleet(4), T0 + 10**8, 100, seed=2, incidents={"host-001": INCIDENTS["host-001"]}
    )
    model_dir, out = tmp_path / "models", tmp_path / "anomalies.jsonl"
    train_file = write_jsonl(tmp_path / "train.jsonl", training)
    live_file = write_jsonl(tmp_path / "live.jsonl", without_event_id(live))

    trained = _cli("train", "--from-file", str(train_file), "--model-dir", str(model_dir))
    assert trained.returncode == 0, trained.stderr
    state = model_dir / "template-miner.json"
    assert state.is_file()
    before = state.read_bytes()
    (manifest,) = [orjson.loads(p.read_bytes()) for p in model_dir.glob("deeplog/*/manifest.json")]
    assert manifest["training_data"]["template_mining"] == {
        "mode": "auto",
        "mined_event_ids": len(training),
        "miner_format": 3,
    }
    # The model knows exactly the ids the saved state gives: those the cycles will produce.
    known = {k["event_id"] for k in manifest["vocabulary"]["keys"]}
    assert known == {mined_event_id(i) for i in TemplateMiner.from_json(before).clusters}

    scored = _cli(
        "score", "--from-file", str(live_file), "--model-dir", str(model_dir), "--to-file", str(out)
    )
    assert scored.returncode == 0, scored.stderr
    summary = orjson.loads(scored.stdout)
    assert summary["mined_event_ids"] == len(live)
    assert "missing_event_id" not in summary["repaired"]
    anomalies = read_jsonl(out)
    assert anomalies and all(a["event"]["id"].startswith(MINED_PREFIX) for a in anomalies)
    (incident,) = incidents
    assert {a["log_uuid"] for a in anomalies} & set(incident.log_uuids)
    assert state.read_bytes() == before  # scoring a file does not change the trained state


# -- a model and the mining mode it scores under -----------------------------------------------

LOGGED, MINED = ["4624", "4634"], [mined_event_id("a1"), mined_event_id("b2")]


@pytest.mark.parametrize(
    ("event_ids", "trained_mode", "mode", "refused"),
    [
        (LOGGED, None, "auto", False),
        (LOGGED, None, "off", False),
        (LOGGED, None, "always", True),  # no event would ever get these keys
        (LOGGED + MINED, "auto", "always", True),
        (MINED, "auto", "always", False),  # logs without EVENTID: both modes key them alike
        (MINED, "always", "always", False),
        (MINED, "always", "auto", True),  # events with EVENTID would now be keyed by it
        (MINED, None, "off", True),  # every event rejected or unknown
        (LOGGED + MINED, "auto", "off", False),  # the EVENTID part still works
    ],
)
def test_a_model_is_refused_under_a_mining_mode_that_cannot_produce_its_keys(
    event_ids: list[str], trained_mode: str | None, mode: str, refused: bool
) -> None:
    why = key_scheme_mismatch(event_ids, trained_mode, mode)
    assert (why is not None) is refused, why
    if why:
        assert "SIDECAR_TEMPLATE_MINING" in why and "retrain" in why


@pytest.mark.parametrize("miner_format", [None, 2])
def test_a_model_of_keys_mined_by_an_older_miner_is_refused(miner_format: int | None) -> None:
    why = key_scheme_mismatch(MINED, "auto", "auto", miner_format)
    assert why is not None and "retrain" in why and "format" in why
    assert key_scheme_mismatch(LOGGED, None, "auto", miner_format) is None  # nothing mined


def test_scoring_refuses_a_model_trained_on_event_ids_when_every_event_is_mined(
    tmp_path: Path,
) -> None:
    docs = normal_documents(fleet(2), T0, 150, seed=3)
    model_dir = tmp_path / "models"
    data = write_jsonl(tmp_path / "train.jsonl", docs)
    trained = _cli("train", "--from-file", str(data), "--model-dir", str(model_dir))
    assert trained.returncode == 0, trained.stderr

    scored = _cli(
        "score",
        "--from-file",
        str(data),
        "--model-dir",
        str(model_dir),
        "--to-file",
        str(tmp_path / "anomalies.jsonl"),
        SIDECAR_TEMPLATE_MINING="always",
    )

    assert scored.returncode == 1
    assert "model error: deeplog" in scored.stderr
    assert "SIDECAR_TEMPLATE_MINING=always" in scored.stderr
    assert not (tmp_path / "anomalies.jsonl").exists()
