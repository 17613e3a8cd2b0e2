"""The content detector against a real node: trained like every kind, kept in the cluster's
model store, its annotations accepted by the strict mapping, an analyst's false-positive mark
learned by the next cycle while other unfamiliar text is still flagged."""

from __future__ import annotations

import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.artifacts import ModelArtifact, load_artifact, save_artifact
from sidecar.models.content.model import ContentConfig
from sidecar.models.fitting import TrainingSummary
from tests.helpers import T0, TRAIN_HOSTS, to_events
from tests.integration.conftest import Deployment
from tests.integration.test_lifecycle import cluster_store, sidecar, with_fresh_ids

pytestmark = pytest.mark.integration

DAY = 86_400_000


@pytest.fixture(scope="module")
def trained_content(training_docs: list, tmp_path_factory: pytest.TempPathFactory):
    return train_model(
        "content",
        group_by_host(to_events(training_docs)),
        ContentConfig(),
        tmp_path_factory.mktemp("content-models"),
        {},
    )


def _publish(dep: Deployment, artifact: ModelArtifact) -> str:
    store = cluster_store(dep, chunk_bytes=64 << 10)  # several chunks per blob
    saved = save_artifact(
        store,
        artifact.name,
        artifact.net,
        artifact.vocabulary,
        artifact.config,
        TrainingSummary(),
        {},
        {k: v for k, v in artifact.manifest.items() if k in ("content", "calibration")},
    )
    return saved.version


def _logoff(docs: list[dict], nth: int, account: str) -> tuple[list[dict], str]:
    """The nth logoff of the fleet with another account name in its message."""
    at = [i for i, d in enumerate(docs) if d["EVENTID"] == "4634"][nth]
    message = docs[at]["MESSAGE"]
    name = message.split("Account Name: ")[1].split(" ")[0]
    docs = list(docs)
    docs[at] = {**docs[at], "MESSAGE": message.replace(f"Name: {name} ", f"Name: {account} ")}
    return docs, docs[at]["log_uuid"]


def test_an_unfamiliar_account_is_annotated_and_a_marked_one_is_learned_by_the_next_cycle(
    deployment: Deployment, trained_content: ModelArtifact, training_docs: list
) -> None:
    dep = deployment
    first = _publish(dep, trained_content)
    docs, _ = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 30 * DAY, 300, seed=12, incidents={}
    )
    docs, contractor = _logoff(docs, 40, "contractor7")
    index_documents(dep.client, dep.logs, docs)

    assert sidecar(dep, "run", "--once", SIDECAR_MODELS="content")["models"] == {"content": first}

    found = {a["log_uuid"]: a for a in dep.anomalies()}
    assert list(found) == [contractor], "normal traffic flagged"
    hit = found[contractor]
    assert hit["reason"] == "content" and hit["model"]["version"] == first
    (token,) = hit["content"]["tokens"]
    assert (token["token"], token["class"], token["seen"]) == ("contractor0", "alnum", 0)
    # What the template usually says there: account names of the training logoffs.
    accounts = {
        d["MESSAGE"].split("Account Name: ")[1].split(" ")[0]
        for d in training_docs
        if d["EVENTID"] == "4634"
    }
    assert token["typical"] and {t["token"] for t in token["typical"]} <= accounts
    dep.client.update(
        index=hit["_index"],
        id=hit["_id"],
        body={"doc": {"feedback": {"verdict": "false_positive", "note": "new contractor"}}},
        refresh="wait_for",
    )
    # Later: the same account logs off again, and another one nobody has seen.
    again, _ = _logoff(with_fresh_ids(docs, "c2", 10 * DAY), 80, "intruder")
    index_documents(dep.client, dep.logs, again)
    report = sidecar(dep, "run", "--once", SIDECAR_MODELS="content")

    second = report["models"]["content"]
    assert second != first and load_artifact(cluster_store(dep), "content").parent == first
    after = {a["log_uuid"]: a for a in dep.anomalies()}
    assert after[contractor]["feedback"]["applied_version"] == second
    assert f"c2-{contractor}" not in after, "the marked account was flagged again"
    intruder = [a for u, a in after.items() if u.startswith("c2-")]
    assert [a["content"]["tokens"][0]["token"] for a in intruder] == ["intruder"]
