"""Tools the chart tests need, built on first use into the cache outside the repository:
helm and promtool (from the Go module proxy) and k8svalidate (tests/helm/k8svalidate, strict
decoding into the Kubernetes and prometheus-operator API types)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

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


def _explicit_promtool() -> str | None:
    return os.environ.get("SIDECAR_TEST_PROMTOOL") or shutil.which("promtool")


def _promtool_binary() -> Path:
    return cache_dir() / f"promtool-{PROMTOOL_VERSION}" / "promtool"


# promtool's first build compiles Prometheus's dependency tree: minutes on two cores. It starts
# in the background as soon as the tests are collected, at low priority, and the tests that
# need it run last, so the build overlaps the rest of the suite instead of adding to it.
_promtool_build: subprocess.Popen[bytes] | None = None
# Its output goes to a file: a pipe nobody reads during the build would fill and stall it.
_promtool_log: IO[bytes] | None = None


def pytest_collection_modifyitems(session, config, items) -> None:  # noqa: ARG001
    global _promtool_build, _promtool_log
    needing = [item for item in items if "promtool" in getattr(item, "fixturenames", ())]
    if not needing:
        return
    items[:] = [item for item in items if item not in needing] + needing
    binary = _promtool_binary()
    if _explicit_promtool() or binary.exists() or shutil.which("go") is None:
        return
    _promtool_log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the build
    _promtool_build = subprocess.Popen(
        [
            "nice",
            "go",
            "install",
            f"github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}",
        ],
        env=_go_env(binary.parent),
        stdout=_promtool_log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def promtool() -> str:
    explicit = _explicit_promtool()
    if explicit:
        return explicit
    binary = _promtool_binary()
    building = _promtool_build is not None and _promtool_log is not None
    if building and _promtool_build.wait(timeout=2_400) != 0:  # type: ignore[union-attr]
        _promtool_log.seek(0)  # type: ignore[union-attr]
        pytest.fail(f"building promtool failed: {_promtool_log.read().decode()[-2000:]}")  # type: ignore[union-attr]
    if not binary.exists():
        if shutil.which("go") is None:
            pytest.fail("the chart tests need promtool or Go to build it (go install)")
        subprocess.run(
            ["go", "install", f"github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}"],
            env=_go_env(binary.parent),
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
