"""Result partitions: a result's index follows from its own event time, retention drops only
whole partitions past it, and the settings refuse names whose partitions would be mixed up."""

from __future__ import annotations

import orjson
import pytest

from sidecar.app.wiring import load_settings
from sidecar.cluster.bootstrap import lifecycle_settings, load_template
from sidecar.cluster.partitions import Partitioning, partition_end_ms
from sidecar.cluster.policies import ilm_policy, ism_policy
from sidecar.cluster.writer import bulk_create_body
from sidecar.errors import ConfigError

DAY = 86_400_000
# 2023-11-30T23:59:59.999Z and the next millisecond, 2023-12-01T00:00:00Z.
LAST_OF_NOVEMBER = 1_701_388_799_999
FIRST_OF_DECEMBER = LAST_OF_NOVEMBER + 1


def test_a_result_goes_to_the_partition_of_its_event_time() -> None:
    monthly, daily = Partitioning("month"), Partitioning("day")

    assert monthly.index_for("log-anomalies", LAST_OF_NOVEMBER) == "log-anomalies-2023.11"
    assert monthly.index_for("log-anomalies", FIRST_OF_DECEMBER) == "log-anomalies-2023.12"
    assert daily.index_for("log-anomalies", LAST_OF_NOVEMBER) == "log-anomalies-2023.11.30"
    assert daily.index_for("log-anomalies", FIRST_OF_DECEMBER) == "log-anomalies-2023.12.01"
    assert Partitioning("none").index_for("log-anomalies", FIRST_OF_DECEMBER) == "log-anomalies"


def test_readers_search_every_partition_and_an_earlier_unpartitioned_index() -> None:
    assert Partitioning("day").search_name("log-anomalies") == "log-anomalies*"
    assert Partitioning("none").search_name("log-anomalies") == "log-anomalies"


def test_a_bulk_request_sends_each_result_to_its_own_partition() -> None:
    docs = [("a", {"@timestamp": LAST_OF_NOVEMBER}), ("b", {"@timestamp": FIRST_OF_DECEMBER})]

    lines = bulk_create_body("log-anomalies", docs, Partitioning("day")).splitlines()

    assert orjson.loads(lines[0]) == {
        "create": {"_index": "log-anomalies-2023.11.30", "_id": "a"}
    }
    assert orjson.loads(lines[2]) == {
        "create": {"_index": "log-anomalies-2023.12.01", "_id": "b"}
    }


@pytest.mark.parametrize(
    ("name", "end"),
    [
        ("log-anomalies-2023.11.30", FIRST_OF_DECEMBER),
        ("log-anomalies-2023.11", FIRST_OF_DECEMBER),
        ("log-anomalies-2023.12", FIRST_OF_DECEMBER + 31 * DAY),  # December rolls the year
        ("log-anomalies-2024.02.29", 1_709_251_200_000),  # a leap day
    ],
)
def test_a_partition_ends_where_its_day_or_month_does(name: str, end: int) -> None:
    assert partition_end_ms("log-anomalies", name) == end


@pytest.mark.parametrize(
    "name",
    [
        "log-anomalies",  # an unpartitioned index of an earlier version is never dropped
        "log-anomalies-archive",
        "log-anomalies-2023.13",
        "log-anomalies-2023.02.30",
        "log-anomalies-2023.11.30-restored",
        "other-2023.11.30",
    ],
)
def test_names_that_are_not_partitions_of_the_base_are_never_dropped(name: str) -> None:
    assert partition_end_ms("log-anomalies", name) is None


def test_only_events_older_than_the_retention_are_past_it() -> None:
    now = FIRST_OF_DECEMBER + 10 * DAY
    kept_30_days = Partitioning("day", retention_days=30)

    assert kept_30_days.expired(now - 30 * DAY - 1, now)
    assert not kept_30_days.expired(now - 30 * DAY, now)
    assert not Partitioning("day", retention_days=0).expired(0, now)


def test_the_defaults_partition_by_month_and_keep_everything() -> None:
    settings = load_settings()

    assert settings.partitioning == Partitioning("month", 0)
    assert settings.anomaly_search == "log-anomalies*"
    assert settings.incident_search == "log-anomaly-incidents*"
    assert settings.dead_letter_search == "log-anomaly-sidecar-dead-letters*"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"dead_letter_index": "log-anomalies-refused"},
            "SIDECAR_DEAD_LETTER_INDEX 'log-anomalies-refused' starts with "
            "SIDECAR_ANOMALY_INDEX 'log-anomalies'",
        ),
        ({"retention_by": "ism"}, "SIDECAR_RETENTION_BY=ism needs SIDECAR_RETENTION_DAYS"),
        (
            {"retention_by": "ilm", "retention_days": 30},
            "SIDECAR_RETENTION_BY=ilm needs SIDECAR_RESULT_PARTITION=day",
        ),
        (
            {"incident_index": "log-anomalies"},
            "SIDECAR_INCIDENT_INDEX and SIDECAR_ANOMALY_INDEX must differ",
        ),
    ],
)
def test_settings_that_would_mix_partitions_up_stop_with_one_line(
    variables: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(**variables)

    assert message in str(raised.value)


def test_unpartitioned_results_may_share_a_prefix() -> None:
    settings = load_settings(result_partition="none", dead_letter_index="log-anomalies-refused")

    assert settings.anomaly_search == "log-anomalies"


def test_partition_templates_match_the_partitions_only() -> None:
    template = load_template("anomalies", "log-anomalies", patterns=["log-anomalies-*"])

    assert template["index_patterns"] == ["log-anomalies-*"]
    assert template["template"]["mappings"]["dynamic"] == "strict"


def test_the_ism_policy_deletes_partitions_a_day_after_the_retention() -> None:
    """Checked against the shape OpenSearch documents for ISM policies; the plugin is not in
    the test nodes."""
    policy = ism_policy(["log-anomalies-*"], 30)["policy"]

    keep, delete = policy["states"]  # type: ignore[index]
    assert policy["default_state"] == keep["name"] == "keep"  # type: ignore[index]
    assert keep["transitions"] == [
        {"state_name": "delete", "conditions": {"min_index_age": "31d"}}
    ]
    assert delete == {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
    assert policy["ism_template"] == [  # type: ignore[index]
        {"index_patterns": ["log-anomalies-*"], "priority": 100}
    ]


def test_the_ilm_policy_ages_partitions_by_the_date_in_their_name() -> None:
    """Checked against Elasticsearch's documented lifecycle policy and index settings; ILM is
    not in the test nodes."""
    phases = ilm_policy(30)["policy"]["phases"]  # type: ignore[index]

    assert phases["delete"] == {"min_age": "31d", "actions": {"delete": {}}}
    assert set(phases) == {"hot", "delete"}
    assert lifecycle_settings("log-anomalies-retention") == {
        "index.lifecycle.name": "log-anomalies-retention",
        "index.lifecycle.parse_origination_date": True,
    }
    assert lifecycle_settings(None) == {}
