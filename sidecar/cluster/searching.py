"""Searching the watched indices: one search or several in one request, each answer refused
when it is partial (a partial answer would move cursors past events never returned)."""

from __future__ import annotations

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from sidecar.errors import SourceUnavailable

__all__ = ["HITS_PATH", "check_search_response", "multi_search", "search"]

_SEARCH_PARAMS = {"ignore_unavailable": "true", "allow_no_indices": "true"}
HITS_PATH = "hits.hits._index,hits.hits._id,hits.hits._source,hits.hits.sort,timed_out,_shards"


def check_search_response(response: dict) -> dict:
    """The response, unless it is partial: a partial answer would move cursors past events
    that were never returned, so timeouts and shard failures fail the cycle instead."""
    if response.get("timed_out"):
        raise SourceUnavailable("search timed out on the cluster; the cycle will be retried")
    shards = response.get("_shards") or {}
    if shards.get("failed", 0):
        reasons = [
            str((f.get("reason") or {}).get("type", "unknown")) for f in shards.get("failures", [])
        ]
        raise SourceUnavailable(
            f"search had {shards['failed']} failed shard(s) ({', '.join(reasons) or 'no reason'}); "
            f"the cycle will be retried"
        )
    # An unassigned shard (a red index) is neither failed nor successful: the answer is just
    # as partial, and the cluster says so only through the totals.
    answered = shards.get("successful", 0) + shards.get("skipped", 0)
    if shards and answered < shards.get("total", 0):
        raise SourceUnavailable(
            f"search reached {answered} of {shards['total']} shards (unassigned shards); "
            f"the cycle will be retried"
        )
    return response


def search(client: OpenSearch, index: str, body: dict[str, object], filter_path: str) -> dict:
    try:
        response = client.search(
            index=index, body=body, params={**_SEARCH_PARAMS, "filter_path": filter_path}
        )
    except (OSConnectionError, ConnectionTimeout) as exc:
        raise SourceUnavailable(f"cluster unreachable while searching: {exc}") from exc
    except TransportError as exc:
        raise SourceUnavailable(f"search failed ({exc.status_code}): {exc.error}") from exc
    return check_search_response(response)


def multi_search(
    client: OpenSearch, index: str, bodies: list[dict], filter_path: str
) -> list[dict]:
    """Several searches in one request (`_msearch`); each answer checked as `search` checks
    one, and an answer missing or refused fails them all."""
    lines: list[dict[str, object]] = []
    for body in bodies:
        lines += [{"index": index, "ignore_unavailable": True, "allow_no_indices": True}, body]
    paths = ",".join(f"responses.{p}" for p in [*filter_path.split(","), "error", "status"])
    try:
        response = client.msearch(body=lines, params={"filter_path": paths})
    except (OSConnectionError, ConnectionTimeout) as exc:
        raise SourceUnavailable(f"cluster unreachable while searching: {exc}") from exc
    except TransportError as exc:
        raise SourceUnavailable(f"search failed ({exc.status_code}): {exc.error}") from exc
    answers = response.get("responses") or []
    if len(answers) != len(bodies):
        raise SourceUnavailable(
            f"multi-search answered {len(answers)} of {len(bodies)} searches; "
            "the cycle will be retried"
        )
    for answer in answers:
        if "error" in answer:
            error = answer["error"]
            kind = error.get("type", error) if isinstance(error, dict) else error
            raise SourceUnavailable(f"search failed ({answer.get('status')}): {kind}")
        check_search_response(answer)
    return answers
