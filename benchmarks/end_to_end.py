"""End-to-end throughput and memory on a real OpenSearch node.

1. Throughput: a watched index of N documents (default 1,000,000) over H hosts (default 500),
   read, scored, annotated and checkpointed by one cycle, against a bare search_after scan of
   the same index reading the same fields (the reading limit). Both run in this process, one
   after the other, with the same client.
2. Memory: the peak RSS of `python -m sidecar run --once` (a separate process) on indices of
   1k, 5k and 10k hosts, next to the same command on an index with no hosts.

    ./scripts/bench.sh end_to_end [--docs 1000000] [--hosts 500] [--memory-hosts 1000,5000,10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from opensearchpy import OpenSearch
from opensearchpy.helpers import streaming_bulk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.demo.generator import fleet, normal_documents
from devtools.node import DevNode
from sidecar.app.service import cluster_cycle
from sidecar.app.settings import Settings
from sidecar.cluster.bootstrap import install_templates
from sidecar.cluster.client import make_client
from sidecar.encoding.events import FieldNames, parse_event
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.nextkey.build import build_detector
from sidecar.models.nextkey.deeplog import DeepLogConfig
from sidecar.types import InputStats

T0 = 1_700_000_000_000
MAPPING = {
    "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
    "mappings": {
        "properties": {
            "_zl_timestamp": {"type": "keyword"},
            "log_uuid": {"type": "keyword"},
            "HOSTNAME": {"type": "keyword"},
            "EVENTID": {"type": "keyword"},
            "SEVERITY": {"type": "keyword"},
            "MESSAGE": {"type": "text"},
            "LOGTYPE": {"type": "keyword"},
        }
    },
}


def load_index(client: OpenSearch, index: str, hosts: int, per_host: int, seed: int) -> int:
    """Index hosts × per_host generated documents; returns the count."""
    client.indices.create(index=index, body=MAPPING)
    profiles = fleet(hosts)

    def actions():
        for start in range(0, hosts, 50):  # generate 50 hosts at a time: bounded memory
            for doc in normal_documents(profiles[start : start + 50], T0, per_host, seed):
                yield {"_index": index, "_source": doc}

    count = 0
    for ok, _item in streaming_bulk(
        client, actions(), chunk_size=5_000, max_retries=3, raise_on_error=True
    ):
        count += ok
    client.indices.put_settings(index=index, body={"index.refresh_interval": "1s"})
    client.indices.refresh(index=index)
    return count


def sidecar_env(url: str, prefix: str, model_dir: Path, lookback_s: int, **extra: str) -> dict:
    """The environment of a `python -m sidecar` process reading `<prefix>-logs`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "SIDECAR_CLUSTER_URLS": url,
            "SIDECAR_WATCHED_INDICES": f"{prefix}-logs",
            "SIDECAR_ANOMALY_INDEX": f"{prefix}-anomalies",
            "SIDECAR_STATE_INDEX": f"{prefix}-state",
            "SIDECAR_DEAD_LETTER_INDEX": f"{prefix}-dead-letters",
            "SIDECAR_MODEL_DIR": str(model_dir),
            "SIDECAR_READ_LAG_SECONDS": "0",
            "SIDECAR_INITIAL_LOOKBACK_SECONDS": str(lookback_s),
            "SIDECAR_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def bare_scan(client: OpenSearch, index: str, page: int) -> int:
    fields = FieldNames().source_fields()
    body: dict[str, object] = {
        "size": page,
        "sort": [{"_zl_timestamp": "asc"}, {"log_uuid": "asc"}],
        "_source": {"includes": fields},
        "track_total_hits": False,
    }
    read = 0
    while True:
        hits = (
            client.search(
                index=index,
                body=body,
                params={"filter_path": "hits.hits._index,hits.hits._source,hits.hits.sort"},
            )
            .get("hits", {})
            .get("hits", [])
        )
        read += len(hits)
        if len(hits) < page:
            return read
        body["search_after"] = hits[-1]["sort"]


def settings_for(url: str, prefix: str, model_dir: Path) -> Settings:
    return Settings(
        cluster_urls=[url],
        watched_indices=[f"{prefix}-logs"],
        anomaly_index=f"{prefix}-anomalies",
        state_index=f"{prefix}-state",
        model_dir=model_dir,
        read_lag_seconds=0,
        initial_lookback_seconds=20 * 365 * 86_400,
        log_level="WARNING",
        log_format="json",
    )


def peak_rss_of_run_once(url: str, prefix: str, model_dir: Path) -> tuple[float, dict]:
    """Peak RSS (MiB) of a separate `python -m sidecar run --once` process, and its summary."""
    script = (
        "import runpy, sys\n"
        "sys.argv = ['sidecar', 'run', '--once']\n"
        "try:\n    runpy.run_module('sidecar', run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would
        # report this (large) benchmark process's peak instead of its own.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('PEAK_RSS_KB', hwm)\n"
    )
    env = sidecar_env(url, prefix, model_dir, 20 * 365 * 86_400, SIDECAR_TORCH_THREADS="2")
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=1_800,
        check=True,
    )
    lines = result.stdout.splitlines()
    rss_kb = int(next(line for line in lines if line.startswith("PEAK_RSS_KB")).split()[1])
    summary = orjson.loads("\n".join(line for line in lines if not line.startswith("PEAK_RSS_KB")))
    return rss_kb / 1024, summary


def run(args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, object] = {}
    workdir = Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    node = DevNode(heap=args.heap).start()
    try:
        client = make_client(Settings(cluster_urls=[node.url], request_timeout_seconds=300))
        stats = InputStats()
        train_docs = normal_documents(fleet(args.hosts), T0, 200, seed=1)
        streams = group_by_host(
            e for d in train_docs if (e := parse_event(d, FieldNames(), stats)) is not None
        )
        artifact = train_model(
            "deeplog", streams, DeepLogConfig(epochs=10, batch_size=512), workdir / "models", {}
        )
        print(
            f"OpenSearch {client.info()['version']['number']} at {node.url}, heap {args.heap}",
            flush=True,
        )

        per_host = args.docs // args.hosts
        started = time.perf_counter()
        indexed = load_index(client, "tput-logs", args.hosts, per_host, seed=7)
        index_s = time.perf_counter() - started
        print(
            f"indexed {indexed:,} documents over {args.hosts} hosts in {index_s:.0f}s", flush=True
        )

        started = time.perf_counter()
        scanned = bare_scan(client, "tput-logs", args.page)
        scan_s = time.perf_counter() - started
        print(
            f"bare search_after scan: {scanned:,} documents in {scan_s:.1f}s = "
            f"{scanned / scan_s:,.0f} docs/s",
            flush=True,
        )

        settings = settings_for(node.url, "tput", workdir / "models")
        install_templates(
            client,
            settings.anomaly_index,
            settings.state_index,
            settings.dead_letter_index,
            partitioning=settings.partitioning,
        )
        detector = build_detector(artifact, settings.top_g)
        started = time.perf_counter()
        report = cluster_cycle(settings, client, [detector], threading.Event())
        cycle_s = time.perf_counter() - started
        ratio = (report.events_read / cycle_s) / (scanned / scan_s)
        print(
            f"sidecar cycle: {report.events_read:,} events read and scored, "
            f"{sum(report.anomalies_written.values()):,} anomalies, {report.hosts_seen} hosts "
            f"checkpointed in {cycle_s:.1f}s = {report.events_read / cycle_s:,.0f} events/s "
            f"= {ratio:.2f}x the bare scan",
            flush=True,
        )
        results["throughput"] = {
            "documents": indexed,
            "hosts": args.hosts,
            "index_seconds": round(index_s, 1),
            "scan_seconds": round(scan_s, 2),
            "scan_docs_per_s": round(scanned / scan_s),
            "cycle_seconds": round(cycle_s, 2),
            "cycle_events_per_s": round(report.events_read / cycle_s),
            "ratio_to_scan": round(ratio, 3),
            "anomalies": sum(report.anomalies_written.values()),
            "page_size": args.page,
        }
        client.indices.delete(index="tput-logs")

        memory = []
        artifact_dir = workdir / "models"
        for hosts in [0, *args.memory_hosts]:
            prefix = f"mem{hosts}"
            if hosts:
                load_index(client, f"{prefix}-logs", hosts, args.memory_events_per_host, seed=9)
            else:
                client.indices.create(index=f"{prefix}-logs", body=MAPPING)
            rss, summary = peak_rss_of_run_once(node.url, prefix, artifact_dir)
            memory.append(
                {"hosts": hosts, "events": summary["events_read"], "peak_rss_mib": round(rss, 1)}
            )
            print(
                f"run --once on {hosts:>6,} hosts ({summary['events_read']:,} events): "
                f"peak RSS {rss:,.0f} MiB",
                flush=True,
            )
            client.indices.delete(index=f"{prefix}-logs")
        results["memory"] = memory
    finally:
        node.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--page", type=int, default=2_000)
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--memory-hosts", default="1000,5000,10000")
    parser.add_argument("--memory-events-per-host", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "end_to_end.json"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    args.memory_hosts = [int(x) for x in args.memory_hosts.split(",") if x]
    results = run(args)
    if not args.no_write:
        Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
