"""Faults on a real node: crashes, outages, a flaky network, refused writes and a
second sidecar. After each, "nothing lost" (support.assert_nothing_lost) must hold: every
document at or below its host's cursor, each anomaly once, the anomalies of an undisturbed run.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import orjson
import pytest

from devtools.demo.generator import documents_with_incidents, fleet
from devtools.demo.runner import index_documents
from sidecar.app.service import cluster_cycle
from sidecar.cluster.client import make_client
from sidecar.errors import SidecarError, SourceUnavailable
from sidecar.models.nextkey.build import build_detector
from sidecar.types import CycleReport
from tests.faultproxy import (
    Blackhole,
    Delay,
    FaultProxy,
    Forward,
    ForwardThenReset,
    Hold,
    Request,
    Reset,
    Respond,
    RewriteResponse,
    is_bulk_to,
)
from tests.helpers import INCIDENTS, T0, TRAIN_HOSTS, flagged_in_one_pass
from tests.integration.conftest import Deployment
from tests.integration.support import (
    assert_nothing_lost,
    assert_same_incidents,
    free_port,
    http_get,
    last_event_per_host,
    sidecar_env,
    start_sidecar,
    wait_for,
)

pytestmark = pytest.mark.integration

PROFILES = fleet(TRAIN_HOSTS)


def batch(seed: int, start_ms: int, events: int = 120, incidents=INCIDENTS) -> list[dict]:
    docs, _ = documents_with_incidents(PROFILES, start_ms, events, seed=seed, incidents=incidents)
    return docs


def cycle_through(dep: Deployment, proxy: FaultProxy, **settings: object) -> CycleReport:
    """One cycle of the deployment's sidecar talking to the node through `proxy` (the test's
    own look-ups still go straight to the node)."""
    changed = dep.settings.model_copy(update={"cluster_urls": [proxy.url], **settings})
    detectors = [build_detector(dep.trained, changed.top_g)]
    return cluster_cycle(changed, make_client(changed), detectors, threading.Event())


# -- crashes -----------------------------------------------------------------------------------


def _hold_first_anomaly_bulk(dep: Deployment):
    return lambda r: Hold() if is_bulk_to(r, dep.settings.anomaly_search) else Forward()


def _hold_second_anomaly_bulk(dep: Deployment):
    seen = []

    def rule(request: Request):
        if is_bulk_to(request, dep.settings.anomaly_search):
            seen.append(request)
            if len(seen) == 2:
                return Hold()
        return Forward()

    return rule


def _hold_first_state_save(dep: Deployment):
    return lambda r: Hold() if is_bulk_to(r, dep.settings.state_index) else Forward()


@pytest.mark.parametrize(
    "hold",
    [_hold_first_anomaly_bulk, _hold_second_anomaly_bulk, _hold_first_state_save],
    ids=["after_reading", "during_the_bulk_write", "after_the_write_before_the_checkpoint"],
)
def test_kill_9_at_a_point_of_the_cycle_then_restart_loses_nothing(
    deployment: Deployment, model_dir: Path, hold
) -> None:
    docs = batch(21, T0 + 10**8)
    index_documents(deployment.client, deployment.logs, docs)
    proxy = FaultProxy(deployment.settings.cluster_urls[0]).start()
    proxy.rule = hold(deployment)
    # Two anomalies per bulk request, so a cycle's write takes several requests.
    env = sidecar_env(deployment, model_dir, proxy.url, SIDECAR_BULK_CHUNK_DOCS="2")
    victim = start_sidecar(env, "run", "--once")
    try:
        wait_for(proxy.held.is_set, 120, "the sidecar to reach the chosen point")
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    finally:
        proxy.stop()  # the held request dies with the connection, never forwarded
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL

    restarted = start_sidecar(sidecar_env(deployment, model_dir), "run", "--once")
    out, err = restarted.communicate(timeout=300)

    assert restarted.returncode == 0, err[-3000:]
    summary = orjson.loads(out)
    assert summary["events_read"] == len(docs)  # no cursor had moved
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))
    assert_same_incidents(deployment, docs)
    print(
        f"\nkill -9 ({hold.__name__}): restart read "
        f"{summary['events_read']} events, wrote {sum(summary['anomalies_written'].values())} "
        f"anomalies, {summary['anomalies_already_present']} already present"
    )


def backoffs_logged(stderr: str) -> list[tuple[int, float]]:
    """(failures, next_cycle_in_s) of each `backing_off` event in the sidecar's JSON log lines.
    Only whole lines count: the sidecar may be writing the last one while it is read."""
    complete = stderr[: stderr.rfind("\n") + 1]
    lines = [line for line in complete.splitlines() if '"backing_off"' in line]
    return [(event["failures"], event["next_cycle_in_s"]) for event in map(orjson.loads, lines)]


def test_the_node_stopped_and_restarted_during_cycles(
    deployment: Deployment, model_dir: Path, opensearch_node
) -> None:
    if opensearch_node is None:
        pytest.skip("needs the node this session started (SIDECAR_TEST_OPENSEARCH_URL is set)")
    first = batch(22, T0 + 10**8)
    index_documents(deployment.client, deployment.logs, first)
    port = free_port()
    env = sidecar_env(
        deployment,
        model_dir,
        SIDECAR_INTERVAL_SECONDS="1",
        SIDECAR_MAX_BACKOFF_SECONDS="8",
        SIDECAR_READY_MAX_FAILED_CYCLES="1",
        SIDECAR_REQUEST_TIMEOUT_SECONDS="2",
        SIDECAR_REQUEST_MAX_RETRIES="1",
        SIDECAR_HTTP_HOST="127.0.0.1",
        SIDECAR_HTTP_PORT=str(port),
    )
    sidecar = start_sidecar(env, "run")
    outage_s = 0.0
    try:
        wait_for(lambda: len(deployment.states()) == TRAIN_HOSTS, 120, "the first cycle")
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30, "ready")
        started = time.monotonic()
        opensearch_node.halt()
        try:
            wait_for(lambda: http_get(port, "/readyz")[0] == 503, 60, "not ready")
            # Several failed cycles in a row while the node is down, their waits growing past
            # the 1 s interval (or the sidecar exited: asserted next).
            wait_for(
                lambda: len(backoffs_logged(sidecar.output()[1])) >= 3
                or sidecar.poll() is not None,
                120,
                "three failed cycles backing off",
                interval_s=0.5,
            )
            assert sidecar.poll() is None, "the sidecar exited while the node was down"
        finally:
            opensearch_node.resume()
            outage_s = time.monotonic() - started
        second = batch(23, T0 + 2 * 10**8)
        index_documents(deployment.client, deployment.logs, second)
        docs = first + second
        expected = {
            h: max((int(d["_zl_timestamp"]), d["log_uuid"]) for d in docs if d["HOSTNAME"] == h)
            for h in {d["HOSTNAME"] for d in docs}
        }
        wait_for(
            lambda: (
                {
                    h: (s["cursor_timestamp_ms"], s["cursor_log_uuid"])
                    for h, s in deployment.states().items()
                }
                == expected
            ),
            # After SIGCONT a node holding a full suite's indices can answer 503 for a while;
            # why it sometimes takes minutes here is open (issue 18).
            300,
            "the sidecar to resume and read what came after the outage",
            interval_s=1,
        )
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 60, "ready again")
    finally:
        sidecar.send_signal(signal.SIGTERM)
        _out, err = sidecar.communicate(timeout=120)
    assert sidecar.returncode == 0, err[-3000:]
    backoffs = backoffs_logged(err)
    delays = [delay for _failures, delay in backoffs]
    assert len(delays) >= 3 and max(delays) > 1.0, delays  # grew past the 1 s interval
    # Each wait lies in the upper half of its doubled, capped ceiling (never below the
    # interval). Jitter shows as waits short of their ceiling: a sidecar without it would
    # wait exactly the ceiling every time. (Rounded draws may repeat, so distinctness is not
    # the test; the seeded unit test pins the formula.)
    ceilings = [(failures, min(8.0, 2.0 ** (failures - 1))) for failures, _ in backoffs]
    for (failures, ceiling), delay in zip(ceilings, delays, strict=True):
        assert max(1.0, ceiling / 2) - 0.01 <= delay <= ceiling + 0.01, (failures, delay)
    assert any(
        delay < ceiling - 0.01
        for (failures, ceiling), delay in zip(ceilings, delays, strict=True)
        if failures >= 2
    ), backoffs
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))
    print(f"\nnode outage {outage_s:.1f}s; backoff delays {delays}")


# -- a flaky network ---------------------------------------------------------------------------


def test_connection_resets_lost_acknowledgements_and_slow_responses_lose_nothing(
    deployment: Deployment,
) -> None:
    docs = batch(24, T0 + 10**8)
    index_documents(deployment.client, deployment.logs, docs[: len(docs) // 2])
    counter = iter(range(10**9))

    def flaky(_request: Request):
        n = next(counter)
        if n % 5 == 1:
            return Reset()
        if n % 7 == 3:
            return ForwardThenReset()  # applied, but the sidecar never hears
        if n % 11 == 5:
            return Delay(2.5)  # past the request timeout
        return Forward()

    outcomes = []
    with FaultProxy(deployment.settings.cluster_urls[0]) as proxy:
        proxy.rule = flaky
        for round_ in range(40):
            if round_ == 3:
                index_documents(deployment.client, deployment.logs, docs[len(docs) // 2 :])
            try:
                report = cycle_through(
                    deployment, proxy, request_timeout_seconds=1.0, request_max_retries=2
                )
                outcomes.append("ok")
                if round_ > 3 and report.events_read == 0:
                    break
            except SidecarError as exc:
                outcomes.append(type(exc).__name__)
        actions = proxy.actions()
    assert outcomes[-1] == "ok", outcomes
    assert actions["Reset"] and actions["ForwardThenReset"] and actions["Delay"], actions
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))
    assert_same_incidents(deployment, docs)
    print(f"\nflaky network: cycles {outcomes}, proxy actions {dict(actions)}")


def test_a_node_that_never_answers_fails_the_cycle_within_the_timeout_bound(
    deployment: Deployment,
) -> None:
    with FaultProxy(deployment.settings.cluster_urls[0]) as proxy:
        proxy.rule = lambda _r: Blackhole()
        started = time.monotonic()
        with pytest.raises(SidecarError):
            cycle_through(deployment, proxy, request_timeout_seconds=1.0, request_max_retries=2)
        elapsed = time.monotonic() - started
    # One request: timeout × (retries + 1) = 3 s, plus the client's small backoffs.
    assert elapsed < 10, elapsed
    assert deployment.states() == {}
    print(f"\nsilent node: cycle failed after {elapsed:.1f}s (timeout 1 s, 2 retries)")


# -- refused and throttled writes ---------------------------------------------------------------


def test_an_anomaly_refused_with_400_goes_to_the_dead_letter_index(deployment: Deployment) -> None:
    docs = batch(25, T0 + 10**8)
    index_documents(deployment.client, deployment.logs, docs)
    settings = deployment.settings
    anomalies = settings.partitioning.index_for(settings.anomaly_index, T0 + 10**8)
    # A mapping conflict, as when someone changes the template by hand: host as a number.
    deployment.client.indices.create(
        index=anomalies, body={"mappings": {"properties": {"host": {"type": "long"}}}}
    )

    report = deployment.cycle()

    expected = flagged_in_one_pass(deployment.trained, docs)
    assert report.dead_letters == len(expected) > 0
    index = deployment.settings.dead_letter_search
    deployment.client.indices.refresh(index=index)
    letters = [
        h["_source"]
        for h in deployment.client.search(index=index, body={"size": 1000})["hits"]["hits"]
    ]
    assert {d["log_uuid"] for d in letters} == expected
    assert all(d["status"] == 400 and d["error_type"] for d in letters)
    assert all(d["document"]["log_uuid"] == d["log_uuid"] for d in letters)
    # Accounted for, so the cursors moved on: not retried forever.
    assert len(deployment.states()) == TRAIN_HOSTS
    again = deployment.cycle()
    assert again.events_read == 0 and again.dead_letters == 0


def _throttle_item(status: int, body: bytes) -> bytes:
    response = orjson.loads(body)
    response["errors"] = True
    response["items"][0]["create"]["status"] = 429
    return orjson.dumps(response)


def test_throttled_bulk_requests_and_items_are_retried_with_backoff(
    deployment: Deployment,
) -> None:
    docs = batch(26, T0 + 10**8)
    index_documents(deployment.client, deployment.logs, docs)
    bulks = []

    def throttle(request: Request):
        if not is_bulk_to(request, deployment.settings.anomaly_search):
            return Forward()
        bulks.append(request)
        if len(bulks) == 1:
            return Respond(
                429, {"error": {"type": "es_rejected_execution_exception"}, "status": 429}
            )
        if len(bulks) == 2:
            return RewriteResponse(_throttle_item)  # stored, but reported as throttled
        return Forward()

    with FaultProxy(deployment.settings.cluster_urls[0]) as proxy:
        proxy.rule = throttle
        report = cycle_through(deployment, proxy)

    assert len(bulks) == 3
    assert report.anomalies_already_present == 1  # the retried item was stored the first time
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))


# -- partial search answers ---------------------------------------------------------------------


def test_a_search_with_failed_shards_fails_the_cycle_and_moves_no_cursor(
    deployment: Deployment,
) -> None:
    docs = batch(27, T0 + 10**8)
    index_documents(deployment.client, deployment.logs, docs)
    red = f"{deployment.prefix}-logs-red"
    deployment.client.indices.create(
        index=red,
        body={
            "settings": {
                "number_of_replicas": 0,
                "index.routing.allocation.require._name": "no-such-node",
            },
            "mappings": deployment.client.indices.get_mapping(index=deployment.logs)[
                deployment.logs
            ]["mappings"],
        },
        params={"wait_for_active_shards": "0"},
    )

    # OpenSearch answers "2 shards, 1 successful, 0 failed"; Elasticsearch reports a failure.
    with pytest.raises(SourceUnavailable, match="failed shard|of 2 shards"):
        deployment.cycle()
    assert deployment.states() == {}

    deployment.client.indices.delete(index=red)
    deployment.cycle()
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))


# -- two sidecars -------------------------------------------------------------------------------


def test_two_sidecars_on_the_same_hosts_write_no_duplicates_and_never_move_a_cursor_back(
    deployment: Deployment,
) -> None:
    batches = [batch(30 + i, T0 + (i + 1) * 10**8, events=80) for i in range(3)]
    docs = [d for b in batches for d in b]
    stop = threading.Event()
    errors: list[BaseException] = []
    reports: list[CycleReport] = []
    seen: dict[str, list[tuple[int, str]]] = {}

    def sidecar() -> None:
        detectors = [build_detector(deployment.trained, deployment.settings.top_g)]
        while not stop.is_set():
            try:
                reports.append(
                    cluster_cycle(deployment.settings, deployment.client, detectors, stop)
                )
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    def watch() -> None:
        while not stop.is_set():
            for host, state in deployment.states().items():
                seen.setdefault(host, []).append(
                    (state["cursor_timestamp_ms"], state["cursor_log_uuid"])
                )
            time.sleep(0.05)  # how often cursors are sampled; nothing waits on this

    def caught_up_with(indexed: list[dict]) -> bool:
        """Every host's cursor is on its newest indexed document (and no cycle has failed)."""
        if errors:
            raise AssertionError(f"a sidecar's cycle failed: {errors!r}")
        cursors = {
            host: (s["cursor_timestamp_ms"], s["cursor_log_uuid"])
            for host, s in deployment.states().items()
        }
        return cursors == last_event_per_host(indexed)

    threads = [threading.Thread(target=f) for f in (sidecar, sidecar, watch)]
    for t in threads:
        t.start()
    indexed: list[dict] = []
    try:
        for number, b in enumerate(batches, 1):
            index_documents(deployment.client, deployment.logs, b)
            indexed.extend(b)
            # Both sidecars race over each batch before the next arrives.
            wait_for(
                lambda: caught_up_with(indexed), 120, f"both sidecars to read batch {number}"
            )
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert errors == []
    assert all(positions == sorted(positions) for positions in seen.values())
    assert_nothing_lost(deployment, docs, flagged_in_one_pass(deployment.trained, docs))
    print(
        f"\ntwo sidecars: {len(reports)} cycles, "
        f"{sum(r.state_conflicts for r in reports)} host states left to the other, "
        f"{sum(r.anomalies_already_present for r in reports)} anomalies found already written, "
        f"{sum(len(p) for p in seen.values())} cursor observations, none backwards"
    )
