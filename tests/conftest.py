from __future__ import annotations

from pathlib import Path

import pytest

from devtools.demo.generator import fleet, normal_documents
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.nextkey.deeplog import DeepLogConfig
from sidecar.models.nextkey.loganomaly import LogAnomalyConfig
from tests.helpers import T0, TRAIN_EVENTS_PER_HOST, TRAIN_HOSTS, to_events, write_jsonl

# Fewer, larger steps than the product's defaults: enough for the synthetic fleet, and the
# CLI tests train with the same values through SIDECAR_TRAIN_EPOCHS / _BATCH_SIZE.
FAST = {"epochs": 30, "batch_size": 512}
FAST_DEEPLOG = DeepLogConfig(**FAST)
FAST_LOGANOMALY = LogAnomalyConfig(**FAST)


@pytest.fixture(scope="session")
def training_docs() -> list[dict[str, object]]:
    return normal_documents(fleet(TRAIN_HOSTS), T0, TRAIN_EVENTS_PER_HOST, seed=1)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained(training_docs: list[dict[str, object]], model_dir: Path) -> ModelArtifact:
    """DeepLog trained once per session on the normal fleet (about ten seconds on two cores)."""
    return train_model(
        "deeplog", group_by_host(to_events(training_docs)), FAST_DEEPLOG, model_dir, {}
    )


@pytest.fixture(scope="session")
def trained_loganomaly(training_docs: list[dict[str, object]], model_dir: Path) -> ModelArtifact:
    """LogAnomaly trained once per session on the same fleet, into the same model directory."""
    return train_model(
        "loganomaly", group_by_host(to_events(training_docs)), FAST_LOGANOMALY, model_dir, {}
    )


@pytest.fixture(scope="session")
def training_file(training_docs: list[dict[str, object]], tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl", training_docs)
