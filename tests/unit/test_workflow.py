"""Workflow diagnosis (DeepLog, section 5): host groups, the normal key-to-key workflow learned
per group, the expected path carried by every anomaly document, and the `workflow` command."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from sidecar.app.main import main
from sidecar.app.settings import Settings
from sidecar.encoding.hostgroups import HostGrouping, check_pattern, default_group, host_group
from sidecar.files.sink import MemoryCheckpoints
from sidecar.files.source import FileSource
from sidecar.lifecycle.training import train_model
from sidecar.models.artifacts import load_artifact
from sidecar.models.nextkey.build import build_detector
from sidecar.models.nextkey.deeplog import DeepLogConfig
from sidecar.pipeline.annotate import anomaly_document
from sidecar.pipeline.cycle import CycleOptions, run_cycle
from sidecar.types import Detection, DetectionBatch, HostSequence, LogEvent
from sidecar.workflows.diagnose import attach_workflows, with_workflows, workflow_summary
from sidecar.workflows.learn import FLEET_GROUP, WorkflowSet, learn_workflow, learn_workflows
from sidecar.workflows.render import describe_walk

# -- host groups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "group"),
    [
        ("web-01", "web"),
        ("web-02", "web"),
        ("web_7", "web"),
        ("web03", "web"),
        ("db.12", "db"),
        ("gokul-l3c", "gokul-l3c"),  # no trailing number: the whole name
        ("eu-web-01", "eu-web"),
        ("1234", "1234"),  # nothing but a number: its own group
        ("10.0.0.1", "10.0.0.1"),  # an address must not group a subnet
    ],
)
def test_by_default_a_host_belongs_to_its_name_without_the_trailing_number(
    host: str, group: str
) -> None:
    assert default_group(host) == group
    assert host_group(host) == group


def test_a_pattern_names_the_group_by_its_capture_group_and_a_non_match_is_its_own_group() -> None:
    pattern = r"^(web|db)-"
    assert host_group("web-eu-3", pattern) == "web"
    assert host_group("db-primary", pattern) == "db"
    assert host_group("mail-01", pattern) == "mail-01"
    assert HostGrouping(pattern).group_of("web-9") == "web"


@pytest.mark.parametrize("pattern", [r"^web-\d+", r"^(web)-(\d+)", r"^(web"])
def test_a_pattern_without_exactly_one_capture_group_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_pattern(pattern)
    with pytest.raises(ValidationError, match="host_group_pattern"):
        Settings(host_group_pattern=pattern)


# -- a synthetic workflow ------------------------------------------------------------------------

# Task 1 is A, then B once or repeated, then C (or, once in three runs, D); tasks 2-4 are other
# work that runs between them, so task 1 starts after three different keys.
TASKS = [
    ["A", "B", "C"],
    ["P", "Q"],
    ["A", "B", "B", "B", "C"],
    ["R"],
    ["A", "B", "D"],
    ["S"],
]
APP_HOSTS = ("app-01", "app-02", "app-03")


def _keys(blocks: int = 10, noise: bool = False) -> list[str]:
    keys = [k for _ in range(blocks) for task in TASKS for k in task]
    if noise:  # one stray key, once: A -> Z -> B must not become normal
        keys[1:1] = ["Z"]
    return keys


def _events(host: str, keys: Sequence[str], start_ms: int = 1_000) -> list[LogEvent]:
    return [
        LogEvent(host, start_ms + i, f"{host}-{start_ms + i}", key, "")
        for i, key in enumerate(keys)
    ]


def _streams() -> dict[str, list[LogEvent]]:
    streams = {host: _events(host, _keys(noise=host == "app-02")) for host in APP_HOSTS}
    streams["db-01"] = _events("db-01", ["X", "Y"] * 20)
    return streams


@pytest.fixture(scope="module")
def workflows() -> WorkflowSet:
    return learn_workflows(_streams())


def test_each_group_learns_its_edges_with_the_loop_and_the_branch(workflows) -> None:
    assert set(workflows.groups) == {"app", "db"}
    app = workflows.groups["app"]
    assert app.hosts == 3 and app.events == 3 * 10 * 15 + 1
    for a, b in [("A", "B"), ("B", "B"), ("B", "C"), ("B", "D"), ("C", "P"), ("Q", "A")]:
        assert app.has_edge(a, b), (a, b)
    after_b = {s.key: round(s.probability, 3) for s in app.successors("B")}
    assert after_b == {"B": 0.4, "C": 0.4, "D": 0.2}
    assert not app.has_edge("A", "D") and not app.has_edge("X", "Y")
    assert workflows.groups["db"].successors("X")[0].key == "Y"


def test_a_rare_noise_transition_is_pruned_so_it_does_not_become_normal(workflows) -> None:
    app = workflows.groups["app"]
    assert app.knows("Z")
    assert not app.has_edge("A", "Z") and not app.has_edge("Z", "B")
    assert app.pruned_edges == 2 and app.pruned_transitions == 2
    assert app.successors("A")[0].probability == 1.0  # the pruned edge takes no share


def test_an_edge_also_needs_a_share_of_what_follows_its_key() -> None:
    stream = ["A", "B"] * 98 + ["A", "C"] * 2
    assert learn_workflow("g", [stream]).has_edge("A", "C")
    assert not learn_workflow("g", [stream], min_share=0.05).has_edge("A", "C")


def test_a_task_start_that_follows_several_different_keys_is_an_entry_key(workflows) -> None:
    entries = workflows.groups["app"].entries
    assert "A" in entries
    assert not {"B", "C", "Q"} & set(entries)


def test_the_expected_path_after_a_is_b_and_a_repeated_block_prints_as_a_loop(workflows) -> None:
    app = workflows.groups["app"]
    walk = app.main_path("A", 10)
    assert walk.keys[:2] == ("B", "C")
    assert "B" in walk.repeats  # B -> B does not advance the walk
    assert walk.loops_to == "A"
    assert describe_walk("A", walk) == "A -> B (repeats) -> C -> P -> Q -> back to A"
    assert app.main_path("A", 1).keys == ("B",) and app.main_path("A", 1).loops_to is None


def test_workflows_round_trip_through_plain_json(workflows) -> None:
    text = orjson.dumps(workflows.to_json())
    assert WorkflowSet.from_json(orjson.loads(text)) == workflows
    assert WorkflowSet.from_manifest({"workflow": orjson.loads(text)}) == workflows
    assert WorkflowSet.from_manifest({"vocabulary": {}}) is None
    patterned = learn_workflows(_streams(), HostGrouping(r"^(app)-0[12]"))
    again = WorkflowSet.from_json(orjson.loads(orjson.dumps(patterned.to_json())))
    assert again.grouping.pattern == r"^(app)-0[12]" and set(again.groups) == set(patterned.groups)
    assert set(patterned.groups) == {"app", "app-03", "db-01"}


def test_only_the_largest_groups_are_kept_and_the_rest_fall_back_to_the_fleet() -> None:
    capped = learn_workflows(_streams(), max_groups=1)
    assert set(capped.groups) == {"app"} and capped.dropped_groups == 1
    assert capped.for_host("db-01") is capped.fleet
    assert capped.fleet.group == FLEET_GROUP and capped.fleet.hosts == 4


# -- anomaly documents ---------------------------------------------------------------------------


def _detection(host: str, before: Sequence[str], observed: str) -> Detection:
    window = tuple(_events(host, before))
    event = LogEvent(host, 9_000, f"{host}-anomaly", observed, "")
    return Detection(
        model="deeplog",
        model_version="v1",
        event=event,
        window=window,
        padded=0,
        reason="not_in_top_g",
        score=0.9,
        observed_key=observed,
        observed_rank=7,
        observed_probability=0.1,
        expected=(),
        window_size=len(window),
        top_g=1,
    )


def test_an_event_that_breaks_the_path_shows_the_transition_unseen_and_the_expected_next_key(
    workflows,
) -> None:
    (detection,) = with_workflows([_detection("app-02", ["C", "P", "Q", "A"], "D")], workflows)
    doc = anomaly_document(detection, 10_000)
    assert doc["workflow"] == {
        "group": "app",
        "from_key": "A",
        "path_before": ["C", "P", "Q", "A"],
        "expected_next": [{"key": "B", "probability": 1.0}],
        "expected_path": ["B", "C", "P", "Q"],  # then back to A: the walk stops at the loop
        "observed_transition_seen": False,
    }


def test_a_normal_transition_is_marked_seen(workflows) -> None:
    summary = workflow_summary(_detection("app-01", ["Q", "A"], "B"), workflows)
    assert summary.observed_transition_seen is True


def test_an_unknown_key_before_the_anomaly_falls_back_to_the_last_known_key(workflows) -> None:
    summary = workflow_summary(_detection("app-01", ["P", "Q", "NEW"], "A"), workflows)
    assert summary.from_key == "Q" and summary.expected_next[0].key == "A"
    assert summary.observed_transition_seen is False  # NEW -> A was never normal


def test_a_host_of_an_unseen_group_uses_the_fleet_workflow(workflows) -> None:
    summary = workflow_summary(_detection("cache-01", ["X"], "Y"), workflows)
    assert summary.group == FLEET_GROUP and summary.observed_transition_seen is True


def test_the_first_event_of_a_host_is_seen_when_its_key_is_part_of_the_workflow(workflows) -> None:
    assert workflow_summary(_detection("app-01", [], "A"), workflows).observed_transition_seen
    assert not workflow_summary(_detection("app-01", [], "NEW"), workflows).observed_transition_seen


class _FixedDetector:
    """A detector that flags the last event of each host, with workflows attached like an
    artifact-built one."""

    name = "fixed"
    version = "v1"
    window_size = 3

    def __init__(self, workflows: WorkflowSet | None) -> None:
        self.workflows = workflows

    def detect(self, sequences: Sequence[HostSequence]) -> DetectionBatch:
        found = []
        for seq in sequences:
            history = [*seq.context, *seq.events]
            before = [e.event_id for e in history[-4:-1]]
            found.append(_detection(seq.host, before, history[-1].event_id))
        return DetectionBatch(found, sum(len(s.events) for s in sequences))


def test_the_pipeline_adds_the_summary_to_every_document_of_a_detector_with_workflows(
    workflows,
) -> None:
    from tests.helpers import ListSink

    events = _events("app-01", ["A", "B", "C", "P", "Q", "A", "D"])
    sink = ListSink()
    run_cycle(
        FileSource(events),
        [_FixedDetector(workflows)],
        sink,
        MemoryCheckpoints(),
        now_ms=10**9,
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=None),
    )
    (doc,) = sink.documents.values()
    assert doc["workflow"]["observed_transition_seen"] is False
    assert doc["workflow"]["expected_next"][0]["key"] == "B"

    without = ListSink()
    run_cycle(
        FileSource(events),
        [_FixedDetector(None)],
        without,
        MemoryCheckpoints(),
        now_ms=10**9,
        options=CycleOptions(read_lag_ms=None, initial_lookback_ms=None),
    )
    assert "workflow" not in next(iter(without.documents.values()))


def test_a_detector_that_does_not_load_workflows_gets_them_from_the_manifest(workflows) -> None:
    detector = _FixedDetector(None)
    attach_workflows(detector, {"workflow": workflows.to_json()})
    assert detector.workflows == workflows


# -- training and the command ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("workflow-models")
    config = DeepLogConfig(window_size=3, top_g=2, epochs=2, batch_size=512)
    train_model("deeplog", _streams(), config, where, {"source": "test"})
    return where


def test_training_any_model_stores_the_workflows_of_its_streams(model_dir, workflows) -> None:
    artifact = load_artifact(model_dir, "deeplog")
    assert WorkflowSet.from_manifest(artifact.manifest) == workflows
    assert build_detector(artifact).workflows == workflows


def _workflow_cli(model_dir: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("SIDECAR_MODEL_STORE", "file")
    monkeypatch.setenv("SIDECAR_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("SIDECAR_MODELS", "deeplog")
    monkeypatch.setenv("SIDECAR_LOG_LEVEL", "WARNING")
    code = main(["workflow", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_each_groups_workflow_as_text(model_dir, monkeypatch, capsys) -> None:
    code, out, _ = _workflow_cli(model_dir, monkeypatch, capsys)
    assert code == 0
    assert "group app" in out and "group db" in out and "group *" in out
    assert "A -> B (repeats) -> C -> P -> Q -> back to A" in out
    assert "entry keys: A" in out


def test_the_command_prints_one_group_or_the_group_of_a_host(model_dir, monkeypatch, capsys):
    code, out, _ = _workflow_cli(model_dir, monkeypatch, capsys, "--group", "db-07")
    assert code == 0 and "group db" in out and "group app" not in out
    code, _, err = _workflow_cli(model_dir, monkeypatch, capsys, "--group", "nothing-here")
    assert code == 1 and "groups: app, db" in err


def test_the_command_prints_graphviz_and_json(model_dir, monkeypatch, capsys) -> None:
    code, out, _ = _workflow_cli(
        model_dir, monkeypatch, capsys, "--format", "dot", "--group", "app"
    )
    assert code == 0 and out.startswith("digraph ")
    assert '"app|A" -> "app|B" [label="1.00"' in out and '"app|A" -> "app|Z"' not in out
    code, out, _ = _workflow_cli(model_dir, monkeypatch, capsys, "--format", "json")
    data = orjson.loads(out)
    assert code == 0 and data["model"] == "deeplog"
    assert [w["group"] for w in data["workflows"]] == ["app", "db", "*"]
    assert data["workflows"][0]["edges"]["B"] == {"B": 60, "C": 60, "D": 30}
