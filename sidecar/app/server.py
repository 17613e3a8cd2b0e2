"""/healthz, /readyz and /metrics on a small threaded HTTP server beside the scheduler.

- /healthz: the process is alive and serving (liveness).
- /readyz: models loaded, the cluster answers a ping, and the last cycles have not failed more
  than `max_failed_cycles` times in a row (readiness). The body says which check failed.
- /metrics: Prometheus text format.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.app.metrics import SidecarMetrics

__all__ = ["Health", "HealthServer"]


@dataclass
class Health:
    """What readiness depends on; updated by the cycle loop, read by probe requests."""

    max_failed_cycles: int = 3
    models_loaded: bool = False
    consecutive_failures: int = 0
    last_error: str | None = None
    ping: Callable[[], bool] = lambda: False
    ping_cache_s: float = 5.0
    _ping_at: float = field(default=-1e9, repr=False)
    _ping_ok: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cycle_succeeded(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.last_error = None

    def cycle_failed(self, error: str) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self.last_error = error

    def cluster_reachable(self) -> bool:
        # Probes arrive every few seconds; one ping per ping_cache_s is plenty.
        now = time.monotonic()
        if now - self._ping_at > self.ping_cache_s:
            try:
                self._ping_ok = bool(self.ping())
            except Exception:  # noqa: BLE001 - any failure to ping means "not reachable"
                self._ping_ok = False
            self._ping_at = now
        return self._ping_ok

    def readiness(self) -> tuple[bool, dict[str, object]]:
        checks = {
            "models_loaded": self.models_loaded,
            "cluster_reachable": self.cluster_reachable(),
            "recent_cycles_ok": self.consecutive_failures <= self.max_failed_cycles,
        }
        body: dict[str, object] = {
            "ready": all(checks.values()),
            "checks": checks,
            "consecutive_failures": self.consecutive_failures,
        }
        if self.last_error:
            body["last_error"] = self.last_error
        return all(checks.values()), body


class HealthServer:
    def __init__(self, host: str, port: int, health: Health, metrics: SidecarMetrics) -> None:
        handler = _handler(health, metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(health: Health, metrics: SidecarMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"alive":true}', "application/json")
            elif path == "/readyz":
                ready, body = health.readiness()
                self._send(200 if ready else 503, orjson.dumps(body), "application/json")
            elif path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # probes every few seconds would drown the structured log

    return Handler
