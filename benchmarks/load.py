"""Load test for the reliability report: cycles complete, memory stays bounded, nothing is lost.

Two scenarios on a real OpenSearch node (devtools.node), each in its own watched index with
its own anomaly and state indices, each read by ONE `python -m sidecar run --once` process
configured only through SIDECAR_* variables (SIDECAR_BATCH_EVENTS and SIDECAR_PAGE_SIZE at
their defaults):

1. fleet: --docs documents (default 1,500,000) over --hosts hosts (default 500), the seed's
   document shape, `_zl_timestamp` an epoch-ms string mapped as keyword (as dynamic mapping
   leaves it on real clusters), the same mapping as benchmarks/end_to_end.py.
2. hot host: one host with --hot-docs documents (default 120,000) logged within about one
   minute (gaps of 0-1 ms, so many events share a millisecond), i.e. inside a single
   cycle's range, next to --hot-peers ordinary hosts (default 50) with ~1,000 documents each.
   Events sharing a millisecond are read in log_uuid order, not in the order generated, so
   DeepLog flags a large share of the hot host's events: a heavy annotation-writing load too.

For each run: the wall time of the process, its peak RSS (VmHWM from /proc/<pid>/status,
polled every 0.1 s; RSS samples are kept to show whether memory plateaus) and the summary JSON
it prints. Reference points, measured in the same run: the peak RSS of the same command on an
empty watched index (the floor: interpreter, torch, model) and a bare search_after scan of the
same index and fields (end_to_end.bare_scan, run before and after the cycle; the ratio is taken
against the faster scan), so speed is reported as a ratio.

Checks, PASS/FAIL per scenario ("nothing lost"):
- events_read in the summary equals the documents indexed;
- every host has a state document whose cursor (cursor_timestamp_ms, cursor_log_uuid) equals
  the host's newest (_zl_timestamp, log_uuid) in the source (composite aggregation with a
  top_hits sorted descending on both);
- no anomaly is stored twice: per model.name, a terms aggregation on log_uuid with
  min_doc_count 2 is empty; and the anomaly index holds exactly the anomalies written;
- a second `run --once` reads 0 events and writes 0 anomalies.

    ./scripts/bench.sh load                                   # default, ~8 minutes on 2 cores
    ./scripts/bench.sh load --docs 50000 --hosts 50 --hot-docs 20000 --no-write   # smoke run

Results: benchmarks/results/load.json. Exit status 1 when a check fails or a run fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from opensearchpy import OpenSearch
from opensearchpy.helpers import streaming_bulk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from end_to_end import MAPPING, T0, bare_scan, load_index, sidecar_env

from devtools.demo.generator import HostProfile, fleet, normal_documents
from devtools.node import DevNode
from sidecar.app.settings import Settings
from sidecar.cluster.client import make_client
from sidecar.encoding.events import FieldNames, parse_event
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.nextkey.deeplog import DeepLogConfig
from sidecar.types import InputStats

LOOKBACK_S = 20 * 365 * 86_400  # reaches back past T0 (Nov 2023) from any plausible "now"
POLL_S = 0.1
HOT_HOST = "hot-host-000"
HOT_PACE_MS = (0, 1)  # 120,000 events in ~60 s: one 60 s scheduling interval
HOT_START_MS = T0 + 5 * 60_000  # in the middle of the peers' ~17 minutes


def _mib(kb: int) -> float:
    return round(kb / 1024, 1)


# -- the sidecar process ----------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS in kB; empty once the process is gone (a zombie has no memory lines)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            lines = fh.readlines()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    out = {}
    for line in lines:
        if line.startswith(("VmHWM:", "VmRSS:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def run_once(url: str, prefix: str, model_dir: Path, workdir: Path) -> dict[str, object]:
    """One `python -m sidecar run --once`: wall time, peak RSS, RSS samples, its summary."""
    env = sidecar_env(
        url, prefix, model_dir, LOOKBACK_S, SIDECAR_HTTP_PORT="0", SIDECAR_LOG_FORMAT="json"
    )
    out_path = workdir / f"{prefix}-{time.monotonic_ns()}.stdout"
    err_path = out_path.with_suffix(".stderr")
    command = [sys.executable, "-m", "sidecar", "run", "--once"]
    hwm_kb = 0
    samples: list[tuple[float, float]] = []  # (seconds since start, VmRSS MiB), one per second
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=err)
        next_sample = 0.0
        while proc.poll() is None:
            status = _proc_status(proc.pid)
            hwm_kb = max(hwm_kb, status.get("VmHWM", 0))
            elapsed = time.perf_counter() - started
            if status and elapsed >= next_sample:
                samples.append((round(elapsed, 1), _mib(status.get("VmRSS", 0))))
                next_sample += 1.0
            time.sleep(POLL_S)
        wall = time.perf_counter() - started
    stdout = out_path.read_text()
    stderr = err_path.read_text()
    summary: dict[str, object] | None = None
    if proc.returncode == 0:
        try:
            summary = orjson.loads(stdout)
        except orjson.JSONDecodeError:
            summary = None
    if summary is None:
        print(
            f"  run --once on {prefix} FAILED (exit {proc.returncode}); stderr tail:\n"
            + "\n".join(stderr.splitlines()[-15:]),
            flush=True,
        )
    return {
        "command": " ".join(["python", *command[1:]]),
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mib": _mib(hwm_kb),
        "rss_samples_mib": samples,
        "summary": summary,
        "stderr_tail": stderr.splitlines()[-5:],
    }


def _anomalies(summary: dict | None) -> int:
    return sum((summary or {}).get("anomalies_written", {}).values())


def _rss_at(samples: list, fraction: float) -> float | None:
    if not samples:
        return None
    cut = samples[-1][0] * fraction
    return max((rss for t, rss in samples if t <= cut), default=None)


# -- data -------------------------------------------------------------------------------------


def _bulk(client: OpenSearch, index: str, docs) -> int:
    count = 0
    for ok, _item in streaming_bulk(
        client,
        ({"_index": index, "_source": doc} for doc in docs),
        chunk_size=5_000,
        max_retries=3,
        raise_on_error=True,
    ):
        count += ok
    return count


def load_hot_index(
    client: OpenSearch, index: str, hot_docs: int, peers: int, seed: int, facts: dict
) -> int:
    """One hot host with hot_docs documents in ~hot_docs/2 ms, next to peers ordinary hosts."""
    client.indices.create(index=index, body=MAPPING)
    count = _bulk(client, index, normal_documents(fleet(peers), T0, 1_000, seed))
    hot = [HostProfile(HOT_HOST, "workstation")]
    docs = normal_documents(hot, HOT_START_MS, hot_docs, seed, pace_ms=HOT_PACE_MS)
    stamps = [int(str(d["_zl_timestamp"])) for d in docs]
    facts.update(
        {
            "host": HOT_HOST,
            "documents": len(docs),
            "span_seconds": round((max(stamps) - min(stamps)) / 1000, 1),
            "documents_sharing_a_millisecond": len(docs) - len(set(stamps)),
        }
    )
    count += _bulk(client, index, docs)
    client.indices.put_settings(index=index, body={"index.refresh_interval": "1s"})
    client.indices.refresh(index=index)
    return count


def train(model_dir: Path, epochs: int) -> dict[str, object]:
    """A small DeepLog on generated normal history; a load test, not a quality test."""
    stats = InputStats()
    docs = normal_documents(fleet(50), T0 - 86_400_000, 400, seed=1)
    streams = group_by_host(
        e for d in docs if (e := parse_event(d, FieldNames(), stats)) is not None
    )
    started = time.perf_counter()
    artifact = train_model(
        "deeplog", streams, DeepLogConfig(epochs=epochs, batch_size=512), model_dir, {}
    )
    return {
        "model": artifact.name,
        "version": artifact.version,
        "training_events": len(docs),
        "epochs": epochs,
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- checks -----------------------------------------------------------------------------------


def newest_per_host(client: OpenSearch, index: str) -> dict[str, tuple[int, str]]:
    """Each host's newest (timestamp, log_uuid) in the source, by the reader's own order."""
    newest: dict[str, tuple[int, str]] = {}
    after = None
    while True:
        composite: dict[str, object] = {
            "size": 200,
            "sources": [{"host": {"terms": {"field": "HOSTNAME"}}}],
        }
        if after is not None:
            composite["after"] = after
        body = {
            "size": 0,
            "aggs": {
                "hosts": {
                    "composite": composite,
                    "aggs": {
                        "newest": {
                            "top_hits": {
                                "size": 1,
                                "sort": [
                                    {"_zl_timestamp": {"order": "desc"}},
                                    {"log_uuid": {"order": "desc"}},
                                ],
                                "_source": False,
                            }
                        }
                    },
                }
            },
        }
        agg = client.search(index=index, body=body)["aggregations"]["hosts"]
        for bucket in agg["buckets"]:
            ts, uuid = bucket["newest"]["hits"]["hits"][0]["sort"]
            newest[bucket["key"]["host"]] = (int(ts), str(uuid))
        after = agg.get("after_key")
        if not agg["buckets"] or after is None:
            return newest


def cursors(client: OpenSearch, index: str) -> dict[str, tuple[int | None, str | None]]:
    client.indices.refresh(index=index)
    found: dict[str, tuple[int | None, str | None]] = {}
    search_after = None
    while True:
        body: dict[str, object] = {
            "size": 1_000,
            "sort": [{"host": "asc"}],
            "_source": ["host", "cursor_timestamp_ms", "cursor_log_uuid"],
        }
        if search_after is not None:
            body["search_after"] = search_after
        hits = client.search(index=index, body=body)["hits"]["hits"]
        for hit in hits:
            src = hit["_source"]
            found[src["host"]] = (src.get("cursor_timestamp_ms"), src.get("cursor_log_uuid"))
        if len(hits) < 1_000:
            return found
        search_after = hits[-1]["sort"]


def duplicate_anomalies(client: OpenSearch, index: str) -> tuple[dict[str, list], int]:
    """Per model: log_uuids stored more than once (single shard: terms by count is exact)."""
    client.indices.refresh(index=index)
    total = client.count(index=index)["count"]
    models = client.search(
        index=index,
        body={"size": 0, "aggs": {"m": {"terms": {"field": "model.name", "size": 100}}}},
    )["aggregations"]["m"]["buckets"]
    dupes: dict[str, list] = {}
    for model in models:
        body = {
            "size": 0,
            "query": {"term": {"model.name": model["key"]}},
            "aggs": {
                "d": {"terms": {"field": "log_uuid", "min_doc_count": 2, "size": 10}},
            },
        }
        buckets = client.search(index=index, body=body)["aggregations"]["d"]["buckets"]
        dupes[model["key"]] = [(b["key"], b["doc_count"]) for b in buckets]
    return dupes, total


def check(checks: list[dict], name: str, ok: bool, detail: str) -> None:
    checks.append({"check": name, "pass": bool(ok), "detail": detail})
    print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)


def verify(client: OpenSearch, prefix: str, indexed: int, first: dict, second: dict) -> list[dict]:
    checks: list[dict] = []
    summary = first["summary"] or {}
    events_read = summary.get("events_read")
    check(
        checks,
        "events_read == documents indexed",
        events_read == indexed,
        f"events_read {events_read} vs indexed {indexed:,} (exit {first['returncode']})",
    )

    newest = newest_per_host(client, f"{prefix}-logs")
    state = cursors(client, f"{prefix}-state")
    missing = sorted(set(newest) - set(state))
    extra = sorted(set(state) - set(newest))
    wrong = []
    behind = 0
    for host, (ts, uuid) in newest.items():
        if host in state and state[host] != (ts, uuid):
            wrong.append((host, state[host], (ts, uuid)))
            if state[host][0] is None or (state[host][0], state[host][1] or "") < (ts, uuid):
                behind += 1
    detail = (
        f"{len(newest)} hosts in source, {len(state)} state documents, "
        f"{len(missing)} without state, {len(extra)} unknown, {len(wrong)} cursors differ "
        f"({behind} behind)"
    )
    if missing:
        detail += f"; e.g. no state for {missing[:3]}"
    if wrong:
        host, got, want = wrong[0]
        detail += f"; e.g. {host}: cursor {got}, newest {want}"
    check(
        checks,
        "every host's cursor == its newest (ts, log_uuid)",
        not (missing or extra or wrong),
        detail,
    )

    dupes, stored = duplicate_anomalies(client, f"{prefix}-anomalies")
    n_dupes = sum(len(v) for v in dupes.values())
    check(
        checks,
        "no anomaly stored twice (terms log_uuid, min_doc_count 2, per model)",
        n_dupes == 0,
        f"models {sorted(dupes)}; duplicated log_uuids: "
        + (", ".join(f"{m}: {v[:3]}" for m, v in dupes.items() if v) or "none"),
    )
    written = _anomalies(summary)
    check(
        checks,
        "anomaly documents stored == anomalies written",
        stored == written and not summary.get("anomalies_already_present"),
        f"{stored:,} stored, {written:,} written, "
        f"{summary.get('anomalies_already_present')} already present",
    )

    again = second["summary"] or {}
    check(
        checks,
        "second run --once reads 0 events, writes 0 anomalies",
        second["summary"] is not None and again.get("events_read") == 0 and _anomalies(again) == 0,
        f"events_read {again.get('events_read')}, anomalies {_anomalies(again)}, "
        f"hosts_seen {again.get('hosts_seen')}, exit {second['returncode']}, {second['wall_s']}s",
    )
    return checks


# -- scenarios --------------------------------------------------------------------------------


def scenario(
    client: OpenSearch,
    url: str,
    name: str,
    prefix: str,
    load,
    hosts: int,
    model_dir: Path,
    workdir: Path,
    floor_mib: float,
    page: int,
) -> dict[str, object]:
    print(f"\n== {name} ==", flush=True)
    started = time.perf_counter()
    indexed = load()
    index_s = time.perf_counter() - started
    counted = client.count(index=f"{prefix}-logs")["count"]
    print(
        f"indexed {indexed:,} documents over {hosts} hosts in {index_s:.0f}s (count {counted:,})",
        flush=True,
    )

    scans = []
    started = time.perf_counter()
    scanned = bare_scan(client, f"{prefix}-logs", page)
    scans.append(time.perf_counter() - started)
    print(f"bare search_after scan: {scanned:,} documents in {scans[0]:.1f}s", flush=True)

    first = run_once(url, prefix, model_dir, workdir)
    summary = first["summary"] or {}
    events = summary.get("events_read") or 0
    print(
        f"run --once: {events:,} events in {first['wall_s']:.1f}s wall "
        f"(cycle {summary.get('duration_s')}s), {_anomalies(summary):,} anomalies, "
        f"peak RSS {first['peak_rss_mib']:.0f} MiB",
        flush=True,
    )

    started = time.perf_counter()
    bare_scan(client, f"{prefix}-logs", page)
    scans.append(time.perf_counter() - started)
    print(f"bare search_after scan again: {scans[1]:.1f}s", flush=True)
    scan_s = min(scans)

    second = run_once(url, prefix, model_dir, workdir)
    checks = verify(client, prefix, indexed, first, second)

    scan_rate = scanned / scan_s
    wall_rate = events / first["wall_s"] if first["wall_s"] else 0.0
    cycle_s = float(summary.get("duration_s") or 0.0)
    cycle_rate = events / cycle_s if cycle_s else 0.0
    samples = first["rss_samples_mib"]
    result = {
        "documents": indexed,
        "hosts": hosts,
        "index_seconds": round(index_s, 1),
        "wall_seconds": first["wall_s"],
        "events_per_s_wall": round(wall_rate),
        "cycle_seconds": cycle_s,
        "events_per_s_cycle": round(cycle_rate),
        "peak_rss_mib": first["peak_rss_mib"],
        "floor_rss_mib": floor_mib,
        "over_floor_mib": round(first["peak_rss_mib"] - floor_mib, 1),
        "rss_mib_at_25_50_75_100pct": [_rss_at(samples, f) for f in (0.25, 0.5, 0.75, 1.0)],
        "bare_scan_seconds": [round(s, 2) for s in scans],
        "bare_scan_docs_per_s": round(scan_rate),
        "ratio_wall_to_scan": round(wall_rate / scan_rate, 3),
        "ratio_cycle_to_scan": round(cycle_rate / scan_rate, 3),
        "summary": first["summary"],
        "returncode": first["returncode"],
        "stderr_tail": first["stderr_tail"],
        "second_run": {
            "wall_seconds": second["wall_s"],
            "peak_rss_mib": second["peak_rss_mib"],
            "summary": second["summary"],
            "returncode": second["returncode"],
            "stderr_tail": second["stderr_tail"],
        },
        "rss_samples_mib": samples,
        "checks": checks,
    }
    client.indices.delete(index=f"{prefix}-logs")
    return result


def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="load-bench-"))
    model_dir = workdir / "models"
    defaults = Settings.model_fields
    results: dict[str, object] = {
        "settings": {
            "batch_events": defaults["batch_events"].default,
            "page_size": defaults["page_size"].default,
            "read_lag_seconds": 0,
            "initial_lookback_seconds": LOOKBACK_S,
            "heap": args.heap,
            "timestamp_mapping": "keyword (epoch-ms strings)",
            "rss_poll_seconds": POLL_S,
        }
    }
    node = DevNode(heap=args.heap).start()
    try:
        client = make_client(Settings(cluster_urls=[node.url], request_timeout_seconds=300))
        version = client.info()["version"]["number"]
        results["settings"]["opensearch"] = version
        print(
            f"OpenSearch {version} at {node.url}, heap {args.heap}; "
            f"SIDECAR_BATCH_EVENTS default {defaults['batch_events'].default:,}, "
            f"SIDECAR_PAGE_SIZE default {defaults['page_size'].default:,}",
            flush=True,
        )
        results["model"] = train(model_dir, args.epochs)
        print(f"trained {results['model']}", flush=True)

        client.indices.create(index="load-floor-logs", body=MAPPING)
        floor = run_once(node.url, "load-floor", model_dir, workdir)
        floor_mib = floor["peak_rss_mib"]
        results["floor"] = {
            "wall_seconds": floor["wall_s"],
            "peak_rss_mib": floor_mib,
            "summary": floor["summary"],
        }
        print(
            f"floor: run --once on an empty index: peak RSS {floor_mib:.0f} MiB, "
            f"{floor['wall_s']:.1f}s",
            flush=True,
        )

        per_host = args.docs // args.hosts
        results["fleet"] = scenario(
            client,
            node.url,
            f"fleet: ~{args.docs:,} documents over {args.hosts} hosts",
            "load-fleet",
            lambda: load_index(client, "load-fleet-logs", args.hosts, per_host, seed=7),
            args.hosts,
            model_dir,
            workdir,
            floor_mib,
            args.page,
        )
        hot_facts: dict[str, object] = {}
        results["hot_host"] = scenario(
            client,
            node.url,
            f"hot host: {args.hot_docs:,} documents on {HOT_HOST} within "
            f"~{args.hot_docs // 2_000}s, next to {args.hot_peers} hosts x ~1,000",
            "load-hot",
            lambda: load_hot_index(
                client, "load-hot-logs", args.hot_docs, args.hot_peers, 11, hot_facts
            ),
            args.hot_peers + 1,
            model_dir,
            workdir,
            floor_mib,
            args.page,
        )
        results["hot_host"]["hot"] = hot_facts
        print(
            f"hot host: {hot_facts['documents']:,} documents over {hot_facts['span_seconds']}s, "
            f"{hot_facts['documents_sharing_a_millisecond']:,} share a millisecond with an "
            "earlier one",
            flush=True,
        )
    finally:
        node.stop()
    return results


def print_table(results: dict[str, object]) -> None:
    rows = [("", "fleet", "hot host")]
    f, h = results["fleet"], results["hot_host"]

    def row(label: str, key: str, fmt: str = "{:,}") -> None:
        rows.append((label, fmt.format(f[key]), fmt.format(h[key])))

    row("documents", "documents")
    row("hosts", "hosts")
    row("run --once wall s", "wall_seconds", "{:.1f}")
    row("cycle s (summary)", "cycle_seconds", "{:.1f}")
    row("events/s (wall)", "events_per_s_wall")
    row("peak RSS MiB", "peak_rss_mib", "{:.0f}")
    row("floor RSS MiB", "floor_rss_mib", "{:.0f}")
    row("over floor MiB", "over_floor_mib", "{:.0f}")
    rows.append(
        (
            "RSS MiB at 25/50/75/100%",
            "/".join(f"{x:.0f}" for x in f["rss_mib_at_25_50_75_100pct"] if x is not None),
            "/".join(f"{x:.0f}" for x in h["rss_mib_at_25_50_75_100pct"] if x is not None),
        )
    )
    rows.append(
        (
            "bare scan s (before/after)",
            "/".join(f"{s:.1f}" for s in f["bare_scan_seconds"]),
            "/".join(f"{s:.1f}" for s in h["bare_scan_seconds"]),
        )
    )
    row("bare scan docs/s (best)", "bare_scan_docs_per_s")
    row("ratio wall / scan", "ratio_wall_to_scan", "{:.2f}x")
    row("ratio cycle / scan", "ratio_cycle_to_scan", "{:.2f}x")
    rows.append(
        ("anomalies written", f"{_anomalies(f['summary']):,}", f"{_anomalies(h['summary']):,}")
    )
    for i, c in enumerate(f["checks"]):
        rows.append(
            (
                c["check"][:50],
                "PASS" if c["pass"] else "FAIL",
                "PASS" if h["checks"][i]["pass"] else "FAIL",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}")
    hot = h.get("hot") or {}
    if hot:
        print(
            f"hot host {hot['host']}: {hot['documents']:,} documents over {hot['span_seconds']}s "
            f"({hot['documents_sharing_a_millisecond']:,} share a millisecond with another)"
        )
    s = results["settings"]
    print(
        f"(OpenSearch {s['opensearch']}, heap {s['heap']}, SIDECAR_BATCH_EVENTS {s['batch_events']:,}"
        f" (default), SIDECAR_PAGE_SIZE {s['page_size']:,} (default); floor = run --once on an"
        f" empty index; ratios are events/s over the faster bare scan of the same run)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_500_000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--hot-docs", type=int, default=120_000)
    parser.add_argument("--hot-peers", type=int, default=50)
    parser.add_argument("--page", type=int, default=2_000, help="bare scan page size")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load.json"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args)
    results["total_seconds"] = round(time.perf_counter() - started)
    print_table(results)
    failed = [
        f"{name}: {c['check']}"
        for name in ("fleet", "hot_host")
        for c in results[name]["checks"]
        if not c["pass"]
    ]
    print(
        f"{'ALL CHECKS PASS' if not failed else 'FAILED: ' + '; '.join(failed)} "
        f"({results['total_seconds']}s in all)"
    )
    if not args.no_write:
        Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
