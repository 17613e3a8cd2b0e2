"""Notifications: each incident of the chosen band, once, to a real local HTTP receiver that
can fail and recover (the cluster side of the outbox is tested on real nodes in
tests/integration/test_incident_cycles.py)."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from sidecar.app.notifier import Notifier, NotifierConfig
from sidecar.app.settings import describe_validation_error
from sidecar.pipeline.notices import min_grade_of, notice_body, summary
from tests.receiver import receiver

T = 1_700_000_000_000


def incident(n: int, grade: float, host: str = "web-1", updated: int = T) -> dict:
    return {
        "incident_id": f"inc-{n:04d}",
        "host": host,
        "grade": grade,
        "confidence": 0.9,
        "first_event_at": T - 60_000,
        "last_event_at": T - 1_000,
        "detected_at": T,
        "updated_at": updated + n,
        "models": ["deeplog", "loganomaly"],
        "reasons": ["count_anomaly", "improbable"],
        "keys": ["4625/failure", "4624/success"],
        "event_count": 31,
    }


class MemoryNotices:
    """The NoticeStore port over a list, as the cluster adapter behaves."""

    def __init__(self, incidents: list[dict]) -> None:
        self.incidents = incidents
        self.records: dict[str, dict] = {}

    def pending(
        self, since_ms: int, min_grade: float, owns: Callable[[str], bool]
    ) -> Iterator[dict]:
        for doc in sorted(self.incidents, key=lambda d: (d["updated_at"], d["incident_id"])):
            if (
                doc["updated_at"] >= since_ms
                and doc["grade"] >= min_grade
                and owns(doc["host"])
                and doc["incident_id"] not in self.records
            ):
                yield doc

    def mark(self, incident: dict, record: dict) -> bool:
        if incident["incident_id"] in self.records:
            return False
        self.records[incident["incident_id"]] = record
        return True


class RecordingStop(threading.Event):
    """A stop event whose waits return at once and are recorded (the backoff, without sleeping)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0.0))
        return self.is_set()


def notifier(store: MemoryNotices, url: str, **config) -> Notifier:
    return Notifier(
        store, NotifierConfig(url=url, **config), now_ms=lambda: T, rng=random.Random(7)
    )


def test_each_incident_of_the_band_is_sent_once_as_an_alertmanager_alert() -> None:
    store = MemoryNotices([incident(1, 80.0), incident(2, 60.0), incident(3, 95.0, "db-2")])
    with receiver() as rx:
        sender = notifier(store, rx.url)
        assert sender.round(RecordingStop()) == 2
        assert sender.round(RecordingStop()) == 0  # a second round sends nothing again
    assert [r.body[0]["labels"]["incident_id"] for r in rx.received] == ["inc-0001", "inc-0003"]
    alert = rx.received[1].body[0]
    assert rx.received[1].path == "/api/v2/alerts"
    assert alert["labels"] == {
        "alertname": "LogAnomalyIncident",
        "incident_id": "inc-0003",
        "host": "db-2",
        "severity": "critical",
    }
    assert alert["startsAt"] == "2023-11-14T22:13:20.000+00:00"
    assert alert["annotations"]["summary"] == (
        "critical incident on db-2: 31 events, grade 95, count_anomaly, improbable "
        "(deeplog, loganomaly)"
    )
    assert rx.received[1].headers["idempotency-key"] == "inc-0003"
    assert sorted(store.records) == ["inc-0001", "inc-0003"]
    assert store.records["inc-0003"]["status"] == 200
    assert store.records["inc-0003"]["attempts"] == 1


def test_a_failing_receiver_is_retried_with_backoff_and_later_incidents_wait() -> None:
    store = MemoryNotices([incident(1, 80.0), incident(2, 85.0)])
    stop = RecordingStop()
    with receiver(statuses=[503, 500, 429]) as rx, capture_logs() as logs:
        assert notifier(store, rx.url).round(stop) == 2
    ids = [r.body[0]["labels"]["incident_id"] for r in rx.received]
    assert ids == ["inc-0001"] * 4 + ["inc-0002"]
    assert [r.status for r in rx.received] == [503, 500, 429, 200, 200]
    # Doubling waits, each in the upper half of its ceiling (jitter).
    assert len(stop.waits) == 3
    for wait, ceiling in zip(stop.waits, [1.0, 2.0, 4.0], strict=True):
        assert ceiling / 2 <= wait <= ceiling
    assert store.records["inc-0001"]["attempts"] == 4
    assert [e["status"] for e in logs if e["event"] == "notification_failed"] == [503, 500, 429]


def test_a_receiver_down_for_a_whole_round_gets_everything_in_order_once_it_is_back() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    store = MemoryNotices([incident(1, 80.0), incident(2, 85.0)])
    sender = notifier(store, dead, attempts=3)
    with capture_logs() as logs:
        assert sender.round(RecordingStop()) == 0
    assert store.records == {}
    failures = [e for e in logs if e["event"] == "notification_failed"]
    assert len(failures) == 3 and failures[0]["status"] is None
    assert "Connection refused" in failures[0]["error"]
    with receiver("/hook") as rx:
        sender.config = NotifierConfig(url=rx.url)
        assert sender.round(RecordingStop()) == 2
    assert [r.body[0]["labels"]["incident_id"] for r in rx.received] == ["inc-0001", "inc-0002"]


def test_a_refusal_for_good_is_recorded_and_does_not_hold_up_the_rest() -> None:
    store = MemoryNotices([incident(1, 80.0), incident(2, 85.0)])
    with receiver(statuses=[400]) as rx, capture_logs() as logs:
        assert notifier(store, rx.url).round(RecordingStop()) == 1
    assert [r.status for r in rx.received] == [400, 200]
    assert store.records["inc-0001"]["status"] == 400
    (rejected,) = [e for e in logs if e["event"] == "notification_rejected"]
    assert rejected["incident_id"] == "inc-0001" and rejected["status"] == 400


def test_the_webhook_format_carries_the_incident_and_the_authorization() -> None:
    store = MemoryNotices([incident(1, 77.5)])
    with receiver("/hooks/sidecar") as rx:
        sender = notifier(
            store,
            rx.url,
            fmt="webhook",
            authorization="Bearer s3cret",
            link="https://dash.example/app/incidents/{incident_id}",
        )
        assert sender.round(RecordingStop()) == 1
    (got,) = rx.received
    assert got.headers["authorization"] == "Bearer s3cret"
    assert got.headers["idempotency-key"] == "inc-0001"
    assert got.body == {
        "incident_id": "inc-0001",
        "host": "web-1",
        "grade": 77.5,
        "band": "high",
        "confidence": 0.9,
        "first_event_at": "2023-11-14T22:12:20.000+00:00",
        "last_event_at": "2023-11-14T22:13:19.000+00:00",
        "detected_at": "2023-11-14T22:13:20.000+00:00",
        "models": ["deeplog", "loganomaly"],
        "reasons": ["count_anomaly", "improbable"],
        "keys": ["4625/failure", "4624/success"],
        "event_count": 31,
        "summary": summary(incident(1, 77.5)),
        "link": "https://dash.example/app/incidents/inc-0001",
    }
    # The record names the receiver without anything a token could hide in.
    assert store.records["inc-0001"]["target"] == rx.url


def test_each_replica_notifies_only_the_hosts_it_owns() -> None:
    store = MemoryNotices([incident(1, 80.0, "web-1"), incident(2, 80.0, "web-2")])
    with receiver() as rx:
        sender = Notifier(
            store, NotifierConfig(url=rx.url), owns=lambda h: h == "web-2", now_ms=lambda: T
        )
        assert sender.round(RecordingStop()) == 1
    assert [r.body[0]["labels"]["host"] for r in rx.received] == ["web-2"]


def test_bands_and_formats_are_checked() -> None:
    assert [min_grade_of(b) for b in ("medium", "high", "critical")] == [50.0, 75.0, 90.0]
    with pytest.raises(ValueError, match="unknown grade band 'severe'"):
        min_grade_of("severe")
    with pytest.raises(ValueError, match="unknown notification format 'sms'"):
        notice_body(incident(1, 80.0), "sms")


def test_a_bad_notify_url_is_one_line_naming_the_variable_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from sidecar.app.settings import Settings

    monkeypatch.setenv("SIDECAR_NOTIFY_URL", "ftp://user:pw@alerts.example/hook")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = describe_validation_error(caught.value)
    assert message.startswith("SIDECAR_NOTIFY_URL: ") and "\n" not in message
    assert "pw" not in message
