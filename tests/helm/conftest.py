"""Tools the chart tests need, built on first use into the cache outside the repository:
helm and promtool (from the Go module proxy) and k8svalidate (tests/helm/k8svalidate, strict
decoding into the Kubernetes and prometheus-operator API types)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.node import cache_dir

HELM_VERSION = "v3.16.4"
# Prometheus v3's Go module version: its go.mod has no replace directives, so `go install`
# builds promtool from the module proxy (older ones refuse).
PROMTOOL_VERSION = "v0.316.0"
VALIDATOR_SRC = Path(__file__).parent / "k8svalidate"


def _go_env(bin_dir: Path) -> dict[str, str]:
    return {**os.environ, "GOBIN": str(bin_dir), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}


@pytest.fixture(scope="session")
def helm() -> str:
    explicit = os.environ.get("SIDECAR_TEST_HELM") or shutil.which("helm")
    if explicit:
        return explicit
    bin_dir = cache_dir() / f"helm-{HELM_VERSION}"
    binary = bin_dir / "helm"
    if not binary.exists():
        if shutil.which("go") is None:
            pytest.fail("the chart tests need helm or Go to build it (go install)")
        subprocess.run(
            ["go", "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
            env=_go_env(bin_dir),
            check=True,
            timeout=1_200,
        )
    return str(binary)


@pytest.fixture(scope="session")
def promtool() -> str:
    explicit = os.environ.get("SIDECAR_TEST_PROMTOOL") or shutil.which("promtool")
    if explicit:
        return explicit
    bin_dir = cache_dir() / f"promtool-{PROMTOOL_VERSION}"
    binary = bin_dir / "promtool"
    if not binary.exists():
        if shutil.which("go") is None:
            pytest.fail("the chart tests need promtool or Go to build it (go install)")
        subprocess.run(
            ["go", "install", f"github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}"],
            env=_go_env(bin_dir),
            check=True,
            timeout=2_400,
        )
    return str(binary)


@pytest.fixture(scope="session")
def k8svalidate() -> str:
    digest = hashlib.sha256(
        b"".join((VALIDATOR_SRC / name).read_bytes() for name in ("go.mod", "go.sum", "main.go"))
    ).hexdigest()[:16]
    binary = cache_dir() / "bin" / f"k8svalidate-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "build", "-o", str(binary), "."],
            cwd=VALIDATOR_SRC,
            env=_go_env(binary.parent),
            check=True,
            timeout=1_200,
        )
    return str(binary)
