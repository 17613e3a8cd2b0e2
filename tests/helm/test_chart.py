"""The Helm chart: lints strictly, renders every scenario in ci/, and what it renders is
valid Kubernetes, hardened, and complete."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from sidecar.app.settings import Settings

CHART = Path(__file__).resolve().parents[2] / "helm" / "log-anomaly-sidecar"
SCENARIOS = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
# Settings the chart provides another way than through `config`.
NOT_IN_CONFIG = {
    "username",
    "password",
    "api_key",
    "notify_authorization",
    "ca_bundle",
    "shard_count",
    "shard_index",
    "http_host",
    "http_port",
    "model_dir",
}


def render(helm: str, scenario: str, *extra: str) -> list[dict]:
    out = subprocess.run(
        [helm, "template", "t", str(CHART), "-f", str(CHART / "ci" / scenario), *extra],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def workload(docs: list[dict]) -> dict:
    (found,) = by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")
    return found


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_there_are_several_scenarios() -> None:
    assert {"default-values.yaml", "sharded-values.yaml", "full-values.yaml"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_strict_passes(helm: str, scenario: str) -> None:
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / scenario)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_manifests_are_valid_kubernetes_objects(
    helm: str, k8svalidate: str, scenario: str
) -> None:
    manifests = subprocess.run(
        [helm, "template", "t", str(CHART), "-f", str(CHART / "ci" / scenario)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = subprocess.run([k8svalidate], input=manifests, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 invalid" in result.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_are_hardened_and_probed(helm: str, scenario: str) -> None:
    docs = render(helm, scenario)
    for pod in [workload(docs)["spec"]["template"]["spec"]] + [
        j["spec"]["template"]["spec"] for j in by_kind(docs, "Job")
    ]:
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    (container,) = workload(docs)["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    (account,) = by_kind(docs, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_setting_is_rendered_and_secrets_come_only_from_secrets(
    helm: str, scenario: str
) -> None:
    docs = render(helm, scenario)
    assert not by_kind(docs, "Secret") and not by_kind(docs, "ConfigMap")
    (container,) = workload(docs)["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    expected = {f"SIDECAR_{name.upper()}" for name in Settings.model_fields} - {
        f"SIDECAR_{n.upper()}" for n in NOT_IN_CONFIG
    }
    assert expected <= set(env), expected - set(env)
    for secret in (
        "SIDECAR_PASSWORD",
        "SIDECAR_USERNAME",
        "SIDECAR_API_KEY",
        "SIDECAR_NOTIFY_AUTHORIZATION",
    ):
        if secret in env:
            assert "value" not in env[secret] and "secretKeyRef" in env[secret]["valueFrom"]


def test_credentials_and_the_ca_bundle_come_from_existing_objects(helm: str) -> None:
    docs = render(helm, "full-values.yaml")
    pod = workload(docs)["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    assert env["SIDECAR_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "sidecar-api-key",
        "key": "api_key",
    }
    assert "SIDECAR_PASSWORD" not in env
    assert env["SIDECAR_NOTIFY_AUTHORIZATION"]["valueFrom"]["secretKeyRef"] == {
        "name": "alert-receiver",
        "key": "authorization",
    }
    assert env["SIDECAR_NOTIFY_URL"]["value"] == "http://alertmanager.monitoring:9093/api/v2/alerts"
    assert env["SIDECAR_CA_BUNDLE"]["value"] == "/etc/sidecar/ca/ca.pem"
    assert {"name": "ca", "secret": {"secretName": "cluster-ca"}} in pod["volumes"]


def test_a_config_change_rolls_the_pods(helm: str) -> None:
    before = workload(render(helm, "default-values.yaml"))
    after = workload(render(helm, "default-values.yaml", "--set-string", "config.TOP_G=5"))
    key = "checksum/config"
    a, b = before["spec"]["template"]["metadata"], after["spec"]["template"]["metadata"]
    assert a["annotations"][key] != b["annotations"][key]


def test_replicas_split_hosts_as_a_statefulset(helm: str) -> None:
    docs = render(helm, "sharded-values.yaml")
    sts = workload(docs)
    assert sts["kind"] == "StatefulSet" and sts["spec"]["replicas"] == 3
    env = env_of(sts["spec"]["template"]["spec"]["containers"][0])
    assert env["SIDECAR_SHARD_COUNT"]["value"] == "3" and "SIDECAR_SHARD_INDEX" not in env
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "models"
    (service,) = by_kind(docs, "Service")
    assert service["spec"]["clusterIP"] == "None"


def test_the_optional_objects_render_when_enabled(helm: str) -> None:
    docs = render(helm, "full-values.yaml")
    (monitor,) = by_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    (rule,) = by_kind(docs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    (policy,) = by_kind(docs, "NetworkPolicy")
    egress = policy["spec"]["egress"]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in egress[0]["to"]
    assert {"port": 53, "protocol": "UDP"} in egress[1]["ports"]
    assert egress[2]["ports"] == [{"port": 9093, "protocol": "TCP"}]  # to the receiver
    assert by_kind(docs, "PersistentVolumeClaim")
    (job,) = by_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    command = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "log-anomaly-sidecar setup" in command and "dashboards --product kibana" in command


def test_the_alerting_rules_pass_their_unit_tests(
    helm: str, promtool: str, tmp_path: Path
) -> None:
    (rule,) = by_kind(render(helm, "full-values.yaml"), "PrometheusRule")
    assert {g["name"] for g in rule["spec"]["groups"]} == {
        "log-anomaly-incidents",
        "log-anomaly-sidecar-health",
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text((Path(__file__).parent / "rules" / "alerts_test.yaml").read_text())
    check = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_defaults_leave_optional_objects_out(helm: str) -> None:
    kinds = {d["kind"] for d in render(helm, "default-values.yaml")}
    assert kinds == {"ServiceAccount", "Service", "Deployment", "Job"}


def test_values_schema_refuses_credentials_in_config(helm: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("config:\n  CLUSTER_URLS: a\n  WATCHED_INDICES: b\n  PASSWORD: hunter2\n")
    result = subprocess.run(
        [helm, "template", "t", str(CHART), "-f", str(bad)], capture_output=True, text=True
    )
    assert result.returncode != 0 and "schema" in result.stderr
