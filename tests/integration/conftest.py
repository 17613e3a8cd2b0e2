"""A real single-node OpenSearch, started once per test session (devtools.node).

Set SIDECAR_TEST_OPENSEARCH_URL to run against a node you already have. Tests isolate
themselves by index names, never by mocking the client.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from devtools.node import DevNode
from sidecar.app.service import cluster_cycle
from sidecar.app.settings import Settings
from sidecar.cluster.bootstrap import install_templates
from sidecar.cluster.client import make_client
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.nextkey.build import build_detector
from sidecar.types import CycleReport

# Every integration test runs once per engine. SIDECAR_TEST_ENGINES narrows the list
# (e.g. "opensearch" while iterating); CI runs both.
ENGINES = [
    e.strip()
    for e in os.environ.get("SIDECAR_TEST_ENGINES", "opensearch,elasticsearch").split(",")
    if e.strip()
]


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def opensearch_node(engine: str) -> Iterator[DevNode | None]:
    """The node this session started for `engine`, or None when SIDECAR_TEST_OPENSEARCH_URL
    names one (then only that node is used)."""
    if os.environ.get("SIDECAR_TEST_OPENSEARCH_URL"):
        yield None
        return
    node = DevNode(engine).start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def opensearch_url(opensearch_node: DevNode | None) -> str:
    return opensearch_node.url if opensearch_node else os.environ["SIDECAR_TEST_OPENSEARCH_URL"]


@pytest.fixture(scope="session")
def client(opensearch_url: str) -> OpenSearch:
    """The product's own client (orjson codec and all), as `run` builds it."""
    return make_client(Settings(cluster_urls=[opensearch_url], request_timeout_seconds=60))


@dataclass
class Deployment:
    """One sidecar's view of the cluster: its own watched, anomaly and state indices."""

    settings: Settings
    client: OpenSearch
    trained: ModelArtifact
    prefix: str

    @property
    def logs(self) -> str:
        return f"{self.prefix}-logs-a"

    def cycle(self, *artifacts: ModelArtifact) -> CycleReport:
        """One cycle with the given models (DeepLog alone by default)."""
        detectors = [build_detector(a, self.settings.top_g) for a in artifacts or (self.trained,)]
        return cluster_cycle(self.settings, self.client, detectors, threading.Event())

    def anomalies(self) -> list[dict]:
        self.client.indices.refresh(index=self.settings.anomaly_search)
        body = {"size": 10_000, "query": {"match_all": {}}}
        hits = self.client.search(index=self.settings.anomaly_search, body=body)["hits"]["hits"]
        return [{"_id": h["_id"], "_index": h["_index"], **h["_source"]} for h in hits]

    def incidents(self) -> list[dict]:
        self.client.indices.refresh(index=self.settings.incident_search)
        body = {"size": 10_000, "query": {"match_all": {}}}
        hits = self.client.search(index=self.settings.incident_search, body=body)["hits"]["hits"]
        return [
            {"_id": h["_id"], "_index": h["_index"], "_version": h.get("_version"), **h["_source"]}
            for h in hits
        ]

    def states(self) -> dict[str, dict]:
        self.client.indices.refresh(index=self.settings.state_index)
        body = {"size": 10_000}
        hits = self.client.search(index=self.settings.state_index, body=body)["hits"]["hits"]
        # Host states only: the index also holds the template miner's state (no host).
        return {h["_source"]["host"]: h["_source"] for h in hits if "host" in h["_source"]}


def make_settings(url: str, prefix: str, model_dir: Path, **extra: object) -> Settings:
    return Settings(
        cluster_urls=[url],
        watched_indices=[f"{prefix}-logs-*"],
        anomaly_index=f"{prefix}-anomalies",
        state_index=f"{prefix}-state",
        dead_letter_index=f"{prefix}-dead-letters",
        incident_index=f"{prefix}-incidents",
        notify_index=f"{prefix}-notifications",
        model_dir=model_dir,
        read_lag_seconds=0,
        # The test data is dated 2023: let first-seen hosts start from the beginning.
        initial_lookback_seconds=20 * 365 * 86_400,
        **extra,
    )


@pytest.fixture
def deployment(
    opensearch_url: str, client: OpenSearch, trained: ModelArtifact, model_dir: Path
) -> Deployment:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = make_settings(opensearch_url, prefix, model_dir)
    install_templates(
        client,
        settings.anomaly_index,
        settings.state_index,
        settings.dead_letter_index,
        incident_index=settings.incident_index,
        notify_index=settings.notify_index,
        partitioning=settings.partitioning,
    )
    return Deployment(settings, client, trained, prefix)
