"""Bad input on a real node: every kind is counted (and sampled) and the cycle goes on.

Each test indexes an ordinary fleet's events plus the bad document(s), runs one cycle, and
checks three things: the bad input is counted under its own reason, the good events are all
read, and nothing raised.
"""

from __future__ import annotations

import uuid

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.models.nextkey.detector import REASON_UNSEEN_KEY
from tests.helpers import T0, TRAIN_HOSTS, flagged_in_one_pass
from tests.integration.conftest import Deployment
from tests.integration.support import assert_nothing_lost, last_event_per_host

pytestmark = pytest.mark.integration

START = T0 + 10**8
MISSING = object()


def good_docs(seed: int = 11, events: int = 40) -> list[dict]:
    docs, _ = documents_with_incidents(fleet(TRAIN_HOSTS), START, events, seed=seed, incidents={})
    return docs


def bad_doc(**fields: object) -> dict:
    """An event of host-002 in the middle of the good range, with `fields` overridden."""
    doc: dict[str, object] = {
        "_zl_timestamp": str(START + 5_000),
        "log_uuid": uuid.uuid4().hex,
        "HOSTNAME": "host-002",
        "EVENTID": "4624",
        "SEVERITY": "success",
        "MESSAGE": "An account was successfully logged on.",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not MISSING}


def index_raw(dep: Deployment, index: str, ndjson_docs: list[str]) -> None:
    """Bulk-index documents given as JSON text (for bytes no Python dict can produce)."""
    lines = []
    for doc in ndjson_docs:
        lines += [orjson.dumps({"index": {"_index": index}}).decode(), doc]
    response = dep.client.bulk(body="\n".join(lines) + "\n", params={"refresh": "true"})
    assert not response["errors"], response


@pytest.mark.parametrize("value", [MISSING, None], ids=["missing", "null"])
def test_a_missing_or_null_timestamp_is_counted_and_not_read(
    deployment: Deployment, value: object
) -> None:
    docs = good_docs()
    odd = bad_doc(_zl_timestamp=value)
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.unreadable == {"missing_timestamp": 1}
    assert odd["log_uuid"] in report.input.samples["missing_timestamp"]
    assert report.events_read == len(docs)


def test_an_empty_timestamp_is_counted_and_not_read(deployment: Deployment) -> None:
    docs = good_docs()
    index_documents(deployment.client, deployment.logs, [*docs, bad_doc(_zl_timestamp="")])

    report = deployment.cycle()

    assert report.unreadable == {"timestamp_not_epoch_ms": 1}
    assert report.events_read == len(docs)


def test_a_timestamp_array_is_read_at_its_earliest_value(deployment: Deployment) -> None:
    docs = good_docs()
    odd = bad_doc(_zl_timestamp=[str(START + 5_000), str(START + 9_000)])
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.input.repaired["timestamp_array"] == 1
    assert report.events_read == len(docs) + 1


def test_epoch_seconds_are_read_as_seconds_and_keep_the_cursor_in_place(
    deployment: Deployment,
) -> None:
    docs = good_docs()
    odd = bad_doc(_zl_timestamp=str((START + 5_000) // 1000))
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.input.repaired["timestamp_epoch_seconds"] == 1
    assert report.events_read == len(docs) + 1
    cursor = deployment.states()["host-002"]
    assert (cursor["cursor_timestamp_ms"], cursor["cursor_log_uuid"]) == last_event_per_host(docs)[
        "host-002"
    ]
    assert deployment.cycle().events_read == 0


def test_an_iso_timestamp_in_a_keyword_field_is_counted_and_not_read(
    deployment: Deployment,
) -> None:
    docs = good_docs()
    odd = bad_doc(_zl_timestamp="2023-11-14T23:13:25+01:00")
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.unreadable == {"timestamp_not_epoch_ms": 1}
    assert "2023-11-14T23:13:25+01:00" in report.input.samples["timestamp_not_epoch_ms"]
    assert report.events_read == len(docs)


def test_an_iso_timestamp_with_an_offset_in_a_date_field_is_read_in_utc(
    deployment: Deployment,
) -> None:
    index = f"{deployment.prefix}-logs-dated"
    deployment.client.indices.create(
        index=index, body={"mappings": {"properties": {"_zl_timestamp": {"type": "date"}}}}
    )
    # 23:13:25+01:00 is 22:13:25 UTC = 1700000005000 ms.
    odd = bad_doc(_zl_timestamp="2023-11-14T23:13:25+01:00", HOSTNAME="host-dated")
    index_documents(deployment.client, index, [odd])

    deployment.cycle()

    state = deployment.states()["host-dated"]
    assert (state["cursor_timestamp_ms"], state["cursor_log_uuid"]) == (
        1_700_000_005_000,
        odd["log_uuid"],
    )


def test_a_far_future_timestamp_is_counted_and_does_not_move_the_cursor(
    deployment: Deployment,
) -> None:
    docs = good_docs()
    odd = bad_doc(_zl_timestamp="1999999999000")  # 2033
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.unreadable == {"timestamp_in_future": 1}
    assert report.events_read == len(docs)
    cursors = {
        h: (s["cursor_timestamp_ms"], s["cursor_log_uuid"]) for h, s in deployment.states().items()
    }
    assert cursors == last_event_per_host(docs)
    assert deployment.cycle().events_read == 0


def test_a_missing_log_uuid_is_scored_under_the_document_s_address(
    deployment: Deployment,
) -> None:
    docs = good_docs()
    odd = bad_doc(log_uuid=MISSING, EVENTID="9999")
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.input.repaired["missing_log_uuid"] == 1
    assert report.events_read == len(docs) + 1
    [flagged] = [a for a in deployment.anomalies() if a["event"]["id"] == "9999"]
    assert flagged["log_uuid"].startswith(f"{deployment.logs}/")
    assert deployment.cycle().events_read == 0


def test_a_duplicated_log_uuid_is_read_twice_and_annotated_once(deployment: Deployment) -> None:
    docs = good_docs()
    twin = uuid.uuid4().hex
    odd = [
        bad_doc(log_uuid=twin, EVENTID="9999", _zl_timestamp=str(START + 5_000)),
        bad_doc(log_uuid=twin, EVENTID="9999", _zl_timestamp=str(START + 5_001)),
    ]
    index_documents(deployment.client, deployment.logs, [*docs, *odd])

    report = deployment.cycle()

    assert report.input.repaired["duplicate_log_uuid"] == 1
    assert report.events_read == len(docs) + 2
    assert [a["log_uuid"] for a in deployment.anomalies()].count(twin) == 1


def test_a_10kb_log_uuid_is_scored_under_its_hash(deployment: Deployment) -> None:
    docs = good_docs()
    odd = bad_doc(log_uuid="u" * 10_240, EVENTID="9999")
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.input.repaired["log_uuid_unusable"] == 1
    assert report.events_read == len(docs) + 1
    [flagged] = [a for a in deployment.anomalies() if a["event"]["id"] == "9999"]
    assert flagged["log_uuid"].startswith("sha256:")
    assert deployment.cycle().events_read == 0


def test_a_missing_hostname_is_counted_and_not_read(deployment: Deployment) -> None:
    docs = good_docs()
    index_documents(deployment.client, deployment.logs, [*docs, bad_doc(HOSTNAME=MISSING)])

    report = deployment.cycle()

    assert report.unreadable == {"missing_host": 1}
    assert report.events_read == len(docs)


def test_hostnames_differing_only_by_case_are_one_host(deployment: Deployment) -> None:
    docs = good_docs()
    shouted = [
        {**d, "HOSTNAME": "HOST-004"} if d["HOSTNAME"] == "host-004" and i % 2 else d
        for i, d in enumerate(docs)
    ]
    index_documents(deployment.client, deployment.logs, shouted)

    report = deployment.cycle()

    assert report.input.repaired["host_case_folded"] >= 1
    assert "HOST-004" not in deployment.states()
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))


def test_unicode_and_path_characters_in_hostnames_are_ordinary_hosts(
    deployment: Deployment,
) -> None:
    odd_name = "srv/../../etc/passwd ü主机\\x%2f?#"
    docs = [{**d, "HOSTNAME": odd_name} if d["HOSTNAME"] == "host-005" else d for d in good_docs()]
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle()

    assert report.events_read == len(docs)
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))
    assert deployment.cycle().events_read == 0


def test_a_missing_message_is_read(deployment: Deployment) -> None:
    docs = [{k: v for k, v in d.items() if k != "MESSAGE"} for d in good_docs()]
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle()

    assert report.events_read == len(docs) and not report.input.rejected


def test_a_message_that_is_an_object_is_read_as_text(deployment: Deployment) -> None:
    # Another index: the first index maps MESSAGE as text and would refuse an object.
    index = f"{deployment.prefix}-logs-structured"
    odd = bad_doc(MESSAGE={"text": "logged on", "code": 7}, EVENTID="9999")
    index_documents(deployment.client, index, [odd])
    docs = good_docs()
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle()

    assert report.input.repaired["message_not_string"] == 1
    assert report.events_read == len(docs) + 1
    [flagged] = [a for a in deployment.anomalies() if a["event"]["id"] == "9999"]
    assert "logged on" in flagged["event"]["message"]


def test_a_1mb_message_is_cut_to_a_bounded_excerpt(deployment: Deployment) -> None:
    docs = good_docs()
    odd = bad_doc(MESSAGE="x" * 1_048_576, EVENTID="9999")
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    report = deployment.cycle()

    assert report.input.repaired["message_truncated"] == 1
    [flagged] = [a for a in deployment.anomalies() if a["event"]["id"] == "9999"]
    assert len(flagged["event"]["message"]) <= deployment.settings.message_excerpt_chars


def test_control_characters_and_lone_surrogates_in_a_message_are_replaced(
    deployment: Deployment,
) -> None:
    docs = good_docs()
    index_documents(deployment.client, deployment.logs, docs)
    odd = orjson.dumps(bad_doc(EVENTID="9999", MESSAGE="PLACEHOLDER")).decode()
    # A lone surrogate is valid JSON text; the cluster stores it, strict decoders refuse it.
    raw = odd.replace("PLACEHOLDER", "bell\\u0007 nul\\u0000 esc\\u001b half\\ud800 end")
    index_raw(deployment, deployment.logs, [raw])

    report = deployment.cycle()

    assert report.input.repaired["message_invalid_characters"] == 1
    assert report.events_read == len(docs) + 1
    [flagged] = [a for a in deployment.anomalies() if a["event"]["id"] == "9999"]
    assert flagged["event"]["message"] == "bell\ufffd nul\ufffd esc\ufffd half\ufffd end"


def test_invalid_utf8_never_reaches_the_index_and_the_cycle_goes_on(
    deployment: Deployment,
) -> None:
    docs = good_docs()
    index_documents(deployment.client, deployment.logs, docs)
    odd = orjson.dumps(bad_doc(EVENTID="9999", MESSAGE="PLACEHOLDER"))
    # Raw bytes that are not UTF-8 (a Latin-1 e-acute, a lone continuation byte) in the body.
    raw = odd.replace(b"PLACEHOLDER", b"caf\xe9 \x80 end")
    body = orjson.dumps({"index": {"_index": deployment.logs}}) + b"\n" + raw + b"\n"
    response = deployment.client.transport.perform_request(
        "POST",
        "/_bulk",
        body=body,
        params={"refresh": "true"},
        headers={"content-type": "application/json"},
    )

    report = deployment.cycle()

    # The node refuses such a document when it is indexed, so the sidecar never sees it
    # (what the cluster does store, lone surrogates, is covered above).
    [item] = response["items"]
    assert item["index"]["status"] == 400
    assert "UTF" in orjson.dumps(item["index"]["error"]).decode().upper()
    assert report.events_read == len(docs) and not report.input.rejected


def test_an_unknown_eventid_is_flagged_as_an_unseen_key(deployment: Deployment) -> None:
    docs = good_docs()
    odd = bad_doc(EVENTID="31337")
    index_documents(deployment.client, deployment.logs, [*docs, odd])

    deployment.cycle()

    [flagged] = [a for a in deployment.anomalies() if a["log_uuid"] == odd["log_uuid"]]
    assert flagged["reason"] == REASON_UNSEEN_KEY


def test_conflicting_field_types_across_watched_indices_are_read_together(
    deployment: Deployment,
) -> None:
    docs = good_docs(events=80)
    middle = sorted(int(d["_zl_timestamp"]) for d in docs)[len(docs) // 2]
    dated = f"{deployment.prefix}-logs-b"
    # The day the index template changed: the new index maps the timestamp as a date (and
    # gets numbers), the old one has the dynamic keyword. Every host spans both.
    deployment.client.indices.create(
        index=dated,
        body={
            "mappings": {
                "properties": {
                    "_zl_timestamp": {"type": "date", "format": "epoch_millis"},
                    "HOSTNAME": {"type": "keyword"},
                    "log_uuid": {"type": "keyword"},
                }
            }
        },
    )
    old = [d for d in docs if int(d["_zl_timestamp"]) < middle]
    new = [{**d, "_zl_timestamp": int(d["_zl_timestamp"])} for d in docs if d not in old]
    index_documents(deployment.client, deployment.logs, old)
    index_documents(deployment.client, dated, new)

    report = deployment.cycle()

    assert report.events_read == len(docs)
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))


def test_an_index_whose_timestamp_cannot_be_sorted_is_skipped_and_counted(
    deployment: Deployment,
) -> None:
    unsortable = f"{deployment.prefix}-logs-text"
    deployment.client.indices.create(
        index=unsortable,
        body={"mappings": {"properties": {"_zl_timestamp": {"type": "text"}}}},
    )
    index_documents(deployment.client, unsortable, [bad_doc()])
    docs = good_docs()
    index_documents(deployment.client, deployment.logs, docs)

    report = deployment.cycle()

    assert report.input.rejected["index_unreadable"] == 1
    assert unsortable in report.input.samples["index_unreadable"]
    assert report.events_read == len(docs)
