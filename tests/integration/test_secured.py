"""A secured OpenSearch: the security plugin from Maven Central, TLS on HTTP, basic auth, and the
sidecar's least-privilege role from the README. The sidecar verifies the certificate against a
CA bundle; wrong CAs and passwords stop it at start-up with a message, never moving a cursor."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthorizationException

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from devtools.node import DevNode
from devtools.security import SecurityProfile, write_ca
from sidecar.cluster.bootstrap import install_templates
from sidecar.cluster.partitions import partitions_of
from sidecar.models.artifacts import ModelArtifact
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, flagged_in_one_pass
from tests.integration.conftest import Deployment, make_settings
from tests.integration.support import assert_nothing_lost, sidecar_env, start_sidecar

pytestmark = pytest.mark.integration

PROFILE = SecurityProfile()
SIDECAR_PASSWORD = PROFILE.users["sidecar"]


@pytest.fixture(scope="module")
def secured_node(engine: str) -> Iterator[DevNode]:
    if engine != "opensearch":
        pytest.skip("the secured profile is OpenSearch's security plugin")
    node = DevNode("opensearch", security=PROFILE).start()
    try:
        yield node
    finally:
        node.stop()


def _client(node: DevNode, user: str) -> OpenSearch:
    return OpenSearch(
        [node.url],
        http_auth=(user, PROFILE.users[user]),
        ca_certs=str(node.ca_file),
        verify_certs=True,
        timeout=60,
    )


@pytest.fixture
def secured(secured_node: DevNode, trained: ModelArtifact, model_dir: Path) -> Deployment:
    """A deployment whose indices an admin (the chart's setup Job) has prepared."""
    admin = _client(secured_node, "admin")
    prefix = f"s{uuid.uuid4().hex[:10]}"
    settings = make_settings(secured_node.url, prefix, model_dir)
    install_templates(
        admin,
        settings.anomaly_index,
        settings.state_index,
        settings.dead_letter_index,
        incident_index=settings.incident_index,
        partitioning=settings.partitioning,
    )
    return Deployment(settings, admin, trained, prefix)


def _run_once(dep: Deployment, node: DevNode, model_dir: Path, **extra: str | None):
    secured_settings = {
        "SIDECAR_USERNAME": "sidecar",
        "SIDECAR_PASSWORD": SIDECAR_PASSWORD,
        "SIDECAR_CA_BUNDLE": str(node.ca_file),
        "SIDECAR_VERIFY_CERTS": "true",
        "SIDECAR_MANAGE_TEMPLATES": "false",
    }
    merged = {**secured_settings, **extra}  # a None value leaves the variable unset
    env = sidecar_env(dep, model_dir, **{k: v for k, v in merged.items() if v is not None})
    started = time.monotonic()
    process = start_sidecar(env, "run", "--once")
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err, time.monotonic() - started


def test_the_sidecar_works_with_tls_verification_and_the_least_privilege_role(
    secured: Deployment, secured_node: DevNode, model_dir: Path
) -> None:
    docs, _ = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 120, seed=41, incidents=INCIDENTS
    )
    index_documents(secured.client, secured.logs, docs)

    code, out, err, _ = _run_once(secured, secured_node, model_dir)

    assert code == 0, err[-3000:]
    assert orjson.loads(out)["events_read"] == len(docs)
    assert_nothing_lost(secured, docs, flagged_in_one_pass(secured.trained, docs))
    assert SIDECAR_PASSWORD not in out + err


def test_the_least_privilege_role_drops_its_own_partitions_past_the_retention(
    secured: Deployment, secured_node: DevNode, model_dir: Path
) -> None:
    docs, _ = documents_with_incidents(
        fleet(TRAIN_HOSTS), T0 + 10**8, 60, seed=44, incidents=INCIDENTS
    )
    index_documents(secured.client, secured.logs, docs)
    code, _out, err, _ = _run_once(secured, secured_node, model_dir)
    assert code == 0, err[-3000:]
    written = partitions_of(secured.client, secured.settings.anomaly_index)
    assert written == [f"{secured.settings.anomaly_index}-2023.11"]

    code, out, err, _ = _run_once(secured, secured_node, model_dir, SIDECAR_RETENTION_DAYS="30")

    assert code == 0, err[-3000:]
    assert written[0] in orjson.loads(out)["dropped"], err[-3000:]
    assert partitions_of(secured.client, secured.settings.anomaly_index) == []


def test_a_wrong_ca_stops_the_sidecar_with_a_clear_message_and_no_cursor_moves(
    secured: Deployment, secured_node: DevNode, model_dir: Path, tmp_path: Path
) -> None:
    docs, _ = documents_with_incidents(fleet(2), T0 + 10**8, 20, seed=42, incidents={})
    index_documents(secured.client, secured.logs, docs)
    stranger = write_ca(tmp_path, "another-ca")

    code, _out, err, elapsed = _run_once(
        secured, secured_node, model_dir, SIDECAR_CA_BUNDLE=str(stranger)
    )

    assert code == 3, err[-2000:]
    assert "TLS verification" in err and "SIDECAR_CA_BUNDLE" in err
    assert secured.states() == {}
    assert SIDECAR_PASSWORD not in err
    print(f"\nwrong CA: exit 3 after {elapsed:.1f}s")


def test_a_wrong_password_stops_the_sidecar_with_a_clear_message_and_no_cursor_moves(
    secured: Deployment, secured_node: DevNode, model_dir: Path
) -> None:
    docs, _ = documents_with_incidents(fleet(2), T0 + 10**8, 20, seed=43, incidents={})
    index_documents(secured.client, secured.logs, docs)
    wrong = "Not-The-Passw0rd!"

    code, _out, err, elapsed = _run_once(secured, secured_node, model_dir, SIDECAR_PASSWORD=wrong)

    assert code == 3, err[-2000:]
    assert "refused the credentials (401)" in err and "SIDECAR_PASSWORD" in err
    assert secured.states() == {}
    assert wrong not in err
    print(f"\nwrong password: exit 3 after {elapsed:.1f}s")


def test_the_sidecar_role_cannot_write_outside_its_own_indices(
    secured: Deployment, secured_node: DevNode
) -> None:
    index_documents(secured.client, secured.logs, [{"HOSTNAME": "h", "log_uuid": "u"}])
    sidecar = _client(secured_node, "sidecar")

    for index in (secured.logs, "some-other-index", ".opendistro_security"):
        with pytest.raises(AuthorizationException):
            sidecar.index(index=index, body={"written_by": "sidecar"})
    with pytest.raises(AuthorizationException):
        sidecar.indices.put_index_template(name="x", body={"index_patterns": ["x-*"]})
    # ... while its own indices take writes, in bulk as the sidecar sends them.
    sidecar.bulk(
        body=[
            {"create": {"_index": f"{secured.settings.dead_letter_index}-2023.11", "_id": "probe"}},
            {"anomaly_id": "probe", "status": 400},
        ]
    )
    assert sidecar.count(index=secured.logs)["count"] == 1  # and it reads the watched ones


@pytest.mark.parametrize("where", ["password", "api_key", "url"])
def test_no_secret_ever_appears_in_the_logs_even_at_debug(
    secured: Deployment, secured_node: DevNode, model_dir: Path, where: str
) -> None:
    docs, _ = documents_with_incidents(fleet(2), T0 + 10**8, 20, seed=44, incidents={})
    index_documents(secured.client, secured.logs, docs)
    secret = {"password": SIDECAR_PASSWORD, "api_key": "c2VjcmV0LWFwaS1rZXktMTIz"}.get(
        where, SIDECAR_PASSWORD
    )
    extra: dict[str, str | None] = {"SIDECAR_LOG_LEVEL": "DEBUG"}
    if where == "api_key":
        extra |= {"SIDECAR_USERNAME": None, "SIDECAR_PASSWORD": None, "SIDECAR_API_KEY": secret}
    elif where == "url":
        port = secured_node.url.rsplit(":", 1)[1]
        extra |= {
            "SIDECAR_USERNAME": None,
            "SIDECAR_PASSWORD": None,
            "SIDECAR_CLUSTER_URLS": f"https://sidecar:{secret}@127.0.0.1:{port}",
        }

    code, out, err, _ = _run_once(secured, secured_node, model_dir, **extra)

    # The API key is not a user of this cluster (refused, exit 3); the others work.
    assert code == (3 if where == "api_key" else 0), err[-2000:]
    assert '"log_level": "DEBUG"' in err  # debug logging was really on
    assert secret not in out + err
