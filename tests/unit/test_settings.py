"""Configuration: SIDECAR_* variables, validated once; a bad value names its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.app.wiring import load_settings
from sidecar.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SIDECAR_"):
            monkeypatch.delenv(name)


def test_defaults_follow_the_seed_document_shape() -> None:
    s = load_settings()
    f = s.fields
    assert (f.host, f.timestamp, f.event_id, f.severity, f.log_uuid, f.message) == (
        "HOSTNAME",
        "_zl_timestamp",
        "EVENTID",
        "SEVERITY",
        "log_uuid",
        "MESSAGE",
    )
    assert (s.window_size, s.top_g) == (10, 9)
    assert s.verify_certs is True
    assert s.models == ["deeplog", "volume", "periodic", "sessions"]


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_WATCHED_INDICES", "logs-*, winlogbeat-*")
    monkeypatch.setenv("SIDECAR_CLUSTER_URLS", "https://a:9200,https://b:9200")
    s = load_settings()
    assert s.watched_indices == ["logs-*", "winlogbeat-*"]
    assert s.cluster_urls == ["https://a:9200", "https://b:9200"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIDECAR_TOP_G", "0"),
        ("SIDECAR_WINDOW_SIZE", "ten"),
        ("SIDECAR_CLUSTER_URLS", "not a url"),
        ("SIDECAR_WATCHED_INDICES", ""),
        ("SIDECAR_WATCHED_INDICES", "bad/pattern"),
        ("SIDECAR_ANOMALY_INDEX", "Upper-Case"),
        ("SIDECAR_MODELS", "deeplog,unknownnet"),
        ("SIDECAR_CA_BUNDLE", "/nonexistent/ca.pem"),
        ("SIDECAR_VERIFY_CERTS", "maybe"),
        ("SIDECAR_INTERVAL_SECONDS", "-5"),
        ("SIDECAR_PARAMETER_CONFIDENCE", "1.5"),
        ("SIDECAR_TEMPLATE_MAX_CLUSTERS", "10"),
        ("SIDECAR_TEMPLATE_MAX_CLUSTERS", "many"),
    ],
)
def test_a_bad_value_is_reported_with_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as excinfo:
        load_settings()
    assert name in str(excinfo.value)


def test_password_without_username_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_PASSWORD", "hunter2")
    with pytest.raises(ConfigError) as excinfo:
        load_settings()
    assert "SIDECAR_USERNAME" in str(excinfo.value)
    assert "hunter2" not in str(excinfo.value)


def test_redacted_settings_hide_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_USERNAME", "sidecar")
    monkeypatch.setenv("SIDECAR_PASSWORD", "hunter2")
    monkeypatch.setenv("SIDECAR_CLUSTER_URLS", "https://user:s3cret@es.example:9200")
    shown = repr(load_settings().redacted())
    assert "hunter2" not in shown and "s3cret" not in shown
    assert "es.example:9200" in shown


def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_program_stops_with_status_2_and_one_line_naming_the_variable() -> None:
    result = _run_cli(
        "run", "--once", SIDECAR_TOP_G="-1", SIDECAR_PASSWORD="hunter2", SIDECAR_USERNAME="u"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SIDECAR_TOP_G" in lines[0]
    assert "hunter2" not in result.stderr + result.stdout


def test_a_missing_model_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    result = _run_cli(
        "score",
        "--from-file",
        str(tmp_path / "x.jsonl"),
        "--to-file",
        str(tmp_path / "out.jsonl"),
        "--model-dir",
        str(tmp_path / "none"),
    )
    assert result.returncode == 1
    assert "run `train` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_both_detectors_can_be_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_MODELS", "deeplog, LogAnomaly")
    assert load_settings().models == ["deeplog", "loganomaly"]
