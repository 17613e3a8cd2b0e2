"""What the integration tests check again and again: "nothing lost", probes, the sidecar as a
separate process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

from tests.helpers import one_pass
from tests.integration.conftest import Deployment

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric(text: str, name: str) -> float:
    """The value of one sample in Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in metrics")


def last_event_per_host(docs) -> dict[str, tuple[int, str]]:
    last: dict[str, tuple[int, str]] = {}
    for d in docs:
        key = (int(d["_zl_timestamp"]), d["log_uuid"])
        last[d["HOSTNAME"]] = max(last.get(d["HOSTNAME"], key), key)
    return last


def duplicated_anomalies(dep: Deployment) -> list[dict]:
    """Buckets of a terms aggregation over anomaly log_uuids per model with min_doc_count 2."""
    dep.client.indices.refresh(index=dep.settings.anomaly_search)
    body = {
        "size": 0,
        "aggs": {
            "models": {
                "terms": {"field": "model.name"},
                "aggs": {"ids": {"terms": {"field": "log_uuid", "min_doc_count": 2}}},
            }
        },
    }
    response = dep.client.search(index=dep.settings.anomaly_search, body=body)
    return [b for m in response["aggregations"]["models"]["buckets"] for b in m["ids"]["buckets"]]


def incident_summaries(incidents) -> dict[str, tuple]:
    """What must not depend on cycle cuts, faults or redos: each incident's members and shape
    (not when it was detected or last rewritten)."""
    return {
        doc["incident_id"]: (
            doc["host"],
            doc["first_event_at"],
            doc["last_event_at"],
            doc["event_count"],
            doc["detection_count"],
            doc["anomaly_documents"],
            tuple(doc["log_uuids"]),
            doc["grade"],
        )
        for doc in incidents
    }


def assert_same_incidents(dep: Deployment, docs: list[dict]) -> None:
    """The incident index holds what one undisturbed pass over `docs` forms, each once."""
    expected = one_pass(dep.trained, docs)[1].values()
    stored = dep.incidents()
    assert len({d["incident_id"] for d in stored}) == len(stored)
    assert incident_summaries(stored) == incident_summaries(expected)


def assert_nothing_lost(dep: Deployment, docs: list[dict], undisturbed: set[str]) -> None:
    """Every document at or below its host's cursor (the cursor is on each host's newest
    document), every anomaly stored once, and the same anomalies as an undisturbed run."""
    cursors = {
        host: (s["cursor_timestamp_ms"], s["cursor_log_uuid"]) for host, s in dep.states().items()
    }
    assert cursors == last_event_per_host(docs)
    assert duplicated_anomalies(dep) == []
    assert {a["log_uuid"] for a in dep.anomalies()} == undisturbed


def sidecar_env(dep: Deployment, model_dir: Path, url: str | None = None, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "SIDECAR_CLUSTER_URLS": url or dep.settings.cluster_urls[0],
            "SIDECAR_WATCHED_INDICES": f"{dep.prefix}-logs-*",
            "SIDECAR_ANOMALY_INDEX": dep.settings.anomaly_index,
            "SIDECAR_STATE_INDEX": dep.settings.state_index,
            "SIDECAR_DEAD_LETTER_INDEX": dep.settings.dead_letter_index,
            "SIDECAR_INCIDENT_INDEX": dep.settings.incident_index,
            "SIDECAR_MODEL_DIR": str(model_dir),
            "SIDECAR_READ_LAG_SECONDS": "0",
            "SIDECAR_INITIAL_LOOKBACK_SECONDS": str(20 * 365 * 86_400),
            "SIDECAR_LOG_FORMAT": "json",
            "SIDECAR_HTTP_PORT": "0",
            # The reference runs these tests compare with (tests.helpers.one_pass) use the
            # papers' top-g rule; the shipped calibrated rule has tests of its own
            # (test_incident_cycles.py).
            "SIDECAR_VERDICT_RULE": "top_g",
            # The `trained` fixture is DeepLog alone.
            "SIDECAR_MODELS": "deeplog",
        }
    )
    env.update(extra)
    return env


class SidecarProcess(subprocess.Popen):
    """The sidecar as a child process whose output goes to files, not pipes.

    Nobody reads a pipe while the test waits on the cluster, so a sidecar that logs a few
    tracebacks (a node outage does) filled the 64 KiB pipe buffer and blocked in its next log
    call: it looked like a sidecar that never resumed (issue 18)."""

    def __init__(self, args: list[str], env: dict) -> None:
        self._folder = tempfile.mkdtemp(prefix="sidecar-output-")
        weakref.finalize(self, shutil.rmtree, self._folder, True)
        self._paths = (Path(self._folder) / "stdout", Path(self._folder) / "stderr")
        # Appending, so reading the files while it runs never moves where it writes.
        with self._paths[0].open("ab") as out, self._paths[1].open("ab") as err:
            super().__init__(args, env=env, stdout=out, stderr=err, text=True)

    def communicate(self, input=None, timeout=None):  # noqa: A002 - Popen's signature
        self.wait(timeout)
        return self.output()

    def output(self) -> tuple[str, str]:
        """What it printed so far: stdout and stderr."""
        return (
            self._paths[0].read_text(encoding="utf-8", errors="replace"),
            self._paths[1].read_text(encoding="utf-8", errors="replace"),
        )


def start_sidecar(env: dict, *args: str) -> SidecarProcess:
    return SidecarProcess([sys.executable, "-m", "sidecar", *args], env)


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
