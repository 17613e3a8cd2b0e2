"""A partial search answer must fail the cycle: cursors would otherwise skip what it left out."""

from __future__ import annotations

import pytest

from sidecar.cluster.searching import check_search_response
from sidecar.errors import SourceUnavailable


def test_a_complete_answer_passes() -> None:
    response = {"timed_out": False, "_shards": {"total": 3, "successful": 2, "skipped": 1}}
    assert check_search_response(response) is response


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"timed_out": True, "_shards": {"total": 1, "successful": 1}}, "timed out"),
        (
            {
                "_shards": {
                    "total": 2,
                    "successful": 1,
                    "failed": 1,
                    "failures": [{"reason": {"type": "query_shard_exception"}}],
                }
            },
            "1 failed shard.*query_shard_exception",
        ),
        ({"_shards": {"total": 2, "successful": 1, "skipped": 0, "failed": 0}}, "1 of 2 shards"),
    ],
    ids=["timed_out", "failed_shard", "unassigned_shard"],
)
def test_a_partial_answer_fails(response: dict, message: str) -> None:
    with pytest.raises(SourceUnavailable, match=message):
        check_search_response(response)
