"""Documents from real clusters: wrong types are repaired where the meaning is clear, anything
else is rejected with a counted reason."""

from __future__ import annotations

from sidecar.encoding.events import MAX_MESSAGE_CHARS, FieldNames, parse_event, parse_timestamp_ms
from sidecar.types import InputStats

SEED = {
    "_zl_timestamp": "1696149046000",
    "log_uuid": "80ad7c",
    "SEVERITY": "success",
    "HOSTNAME": "gokul-l3c",
    "EVENTID": "4690",
    "MESSAGE": "An attempt was made to duplicate a handle to an object.",
}


def parse(doc: dict, stats: InputStats | None = None):
    return parse_event(doc, FieldNames(), stats or InputStats())


def test_the_seed_document_parses() -> None:
    e = parse(SEED)
    assert (e.host, e.timestamp_ms, e.log_uuid, e.event_id, e.severity) == (
        "gokul-l3c",
        1696149046000,
        "80ad7c",
        "4690",
        "success",
    )


def test_timestamps_as_string_number_or_iso_date_agree() -> None:
    assert parse_timestamp_ms("1696149046000") == 1696149046000
    assert parse_timestamp_ms(1696149046000) == 1696149046000
    assert parse_timestamp_ms(1696149046000.0) == 1696149046000
    assert parse_timestamp_ms("2023-10-01T08:30:46Z") == 1696149046000
    assert parse_timestamp_ms("2023-10-01T10:30:46+02:00") == 1696149046000
    for bad in (None, "", "yesterday", [1], {"a": 1}, True, float("nan")):
        assert parse_timestamp_ms(bad) is None


def test_numeric_event_ids_become_strings() -> None:
    e = parse({**SEED, "EVENTID": 4690})
    assert e.event_id == "4690"


def test_missing_event_id_and_severity_are_kept_and_counted() -> None:
    stats = InputStats()
    doc = {k: v for k, v in SEED.items() if k not in ("EVENTID", "SEVERITY")}
    e = parse(doc, stats)
    assert (e.event_id, e.severity) == ("", "")
    assert stats.repaired == {"missing_event_id": 1, "missing_severity": 1}


def test_documents_without_timestamp_or_log_uuid_are_rejected_and_counted() -> None:
    stats = InputStats()
    assert parse({**SEED, "_zl_timestamp": "soon"}, stats) is None
    assert parse({k: v for k, v in SEED.items() if k != "log_uuid"}, stats) is None
    assert parse({k: v for k, v in SEED.items() if k != "_zl_timestamp"}, stats) is None
    assert stats.rejected == {"bad_timestamp": 1, "missing_log_uuid": 1, "missing_timestamp": 1}
    assert set(stats.samples) == {"bad_timestamp", "missing_log_uuid", "missing_timestamp"}


def test_huge_and_non_string_messages_are_bounded() -> None:
    stats = InputStats()
    assert len(parse({**SEED, "MESSAGE": "x" * 1_000_000}, stats).message) == MAX_MESSAGE_CHARS
    assert parse({**SEED, "MESSAGE": {"nested": 1}}, stats).message == "{'nested': 1}"
    assert stats.repaired == {"message_truncated": 1, "message_not_string": 1}
