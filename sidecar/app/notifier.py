"""The notifier: each incident worth it, once, to Alertmanager or a JSON webhook.

It runs in a thread of its own beside the scheduled cycles and never holds one up: cycles
write incidents (before their checkpoint), the notifier reads them back from the incident
index (the outbox, sidecar/cluster/notifications.py), posts each one and records that it did.
Delivery is at least once: a crash between a receiver's 2xx and the record sends that incident
again after the restart, with the same incident id for the receiver to deduplicate on.

A receiver that fails (connection refused, timeout, 5xx, 408, 429) is retried with jittered
exponential backoff; the incidents after the failing one wait, so they arrive in order once it
recovers. A receiver that refuses an incident for good (any other 4xx) gets it recorded with
the status and counted, so one malformed incident does not block every later one. Each
replica notifies the incidents of the hosts it owns (SHARD_*), so two replicas never send the
same incident; the record makes a shard change harmless too.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import structlog

from sidecar.app.settings import url_without_userinfo
from sidecar.pipeline.notices import min_grade_of, notice_body, notice_headers
from sidecar.ports import NoticeStore

__all__ = ["NotifierConfig", "Notifier", "Delivery", "http_post", "RETRYABLE_STATUS"]

log = structlog.get_logger("sidecar.notifier")

RETRYABLE_STATUS = frozenset({408, 429})
# Incidents updated shortly before the newest one seen are read again next round: a document
# written before the previous round's search may become searchable only after it (refresh).
_REREAD_MS = 60_000


@dataclass(frozen=True, slots=True)
class Delivery:
    status: int | None  # the HTTP status; None when no response came (refused, timed out)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status in RETRYABLE_STATUS


def http_post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Delivery:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return Delivery(response.status)
    except urllib.error.HTTPError as exc:
        return Delivery(exc.code, str(exc.reason)[:200])
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return Delivery(None, f"{type(exc).__name__}: {exc}"[:200])


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    url: str
    fmt: str = "alertmanager"
    min_band: str = "high"
    interval_s: float = 15.0
    timeout_s: float = 10.0
    lookback_s: float = 86_400.0
    authorization: str | None = None
    link: str = ""  # "{incident_id}" is replaced
    attempts: int = 5  # per incident and round, before the round gives up and waits
    first_backoff_s: float = 1.0
    max_backoff_s: float = 60.0


class Notifier:
    def __init__(
        self,
        store: NoticeStore,
        config: NotifierConfig,
        owns: Callable[[str], bool] = lambda _h: True,
        metrics=None,  # SidecarMetrics, or None
        post: Callable[[str, bytes, dict[str, str], float], Delivery] = http_post,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.owns = owns
        self.metrics = metrics
        self.post = post
        self.now_ms = now_ms
        self.rng = rng or random.Random()
        self.min_grade = min_grade_of(config.min_band)
        self.since_ms = now_ms() - int(config.lookback_s * 1000)

    def run(self, stop: threading.Event) -> None:
        log.info("notifier_started", format=self.config.fmt, min_band=self.config.min_band)
        while not stop.is_set():
            try:
                self.round(stop)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad round
                log.warning("notify_round_failed", kind=type(exc).__name__, error=str(exc)[:300])
                self._count("error")
            stop.wait(self.config.interval_s)

    def round(self, stop: threading.Event) -> int:
        """Sends what is pending; returns how many incidents the receiver accepted."""
        sent = 0
        newest = self.since_ms
        for incident in self.store.pending(self.since_ms, self.min_grade, self.owns):
            if stop.is_set():
                return sent
            updated = int(incident.get("updated_at") or self.since_ms)
            delivery, attempts = self._deliver(incident, stop)
            if not delivery.ok and delivery.retryable:
                # Everything after it waits, so it is read again from here next round.
                self.since_ms = max(self.since_ms, updated - _REREAD_MS)
                return sent
            outcome = "sent" if delivery.ok else "rejected"
            if outcome == "rejected":
                log.error(
                    "notification_rejected",
                    incident_id=incident.get("incident_id"),
                    status=delivery.status,
                    error=delivery.error,
                )
            else:
                sent += 1
                log.info(
                    "notification_sent",
                    incident_id=incident.get("incident_id"),
                    host=incident.get("host"),
                    grade=incident.get("grade"),
                    attempts=attempts,
                )
            self.store.mark(incident, self._record(incident, delivery, attempts))
            self._count(outcome)
            newest = max(newest, updated)
        self.since_ms = max(self.since_ms, newest - _REREAD_MS)
        return sent

    def _deliver(self, incident: dict, stop: threading.Event) -> tuple[Delivery, int]:
        body = orjson.dumps(notice_body(incident, self.config.fmt, self._link(incident)))
        headers = notice_headers(incident)
        if self.config.authorization:
            headers["Authorization"] = self.config.authorization
        delay = self.config.first_backoff_s
        attempt = 0
        while True:
            attempt += 1
            delivery = self.post(self.config.url, body, headers, self.config.timeout_s)
            if delivery.ok or not delivery.retryable:
                return delivery, attempt
            self._count("failed")
            log.warning(
                "notification_failed",
                incident_id=incident.get("incident_id"),
                status=delivery.status,
                error=delivery.error,
                attempt=attempt,
            )
            if attempt >= self.config.attempts:
                return delivery, attempt
            # Full jitter in the upper half, so replicas and retries do not march in step.
            if stop.wait(delay * (0.5 + 0.5 * self.rng.random())):
                return delivery, attempt
            delay = min(self.config.max_backoff_s, delay * 2)

    def _link(self, incident: dict) -> str | None:
        if not self.config.link:
            return None
        return self.config.link.replace("{incident_id}", str(incident.get("incident_id")))

    def _record(self, incident: dict, delivery: Delivery, attempts: int) -> dict:
        return {
            "incident_id": incident.get("incident_id"),
            "host": incident.get("host"),
            "grade": incident.get("grade"),
            "format": self.config.fmt,
            "target": _without_query(self.config.url),
            "attempts": attempts,
            "status": delivery.status,
            "notified_at": self.now_ms(),
        }

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(outcome).inc()


def _without_query(url: str) -> str:
    """The receiver as recorded: no query string or user info (tokens live there)."""
    return url_without_userinfo(url.split("?", 1)[0])
