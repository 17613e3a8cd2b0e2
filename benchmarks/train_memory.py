"""Peak memory of `python -m sidecar train` reading its range from a real node (issue 16).

On a real OpenSearch node (devtools.node) it indexes generated normal history in the seed's
document shape (devtools.demo.generator, --per-host events a host, as many hosts as a size
needs) and, at each --sizes total, runs the product's own command as a user would:

    SIDECAR_* ... python -m sidecar train --start <before the data> --end <after it>

with the default model set and settings (only the cluster, index and model directory are
set). For each run: wall seconds, peak RSS (VmHWM from /proc, polled every 0.1 s), the peak
size of the training spill under its own TMPDIR, events and hosts read, and each model's
epochs. With --baseline REF the same command of another commit (a git worktree of REF) runs
on the same data in the same run, so "before" and "after" share the node and the machine.

    ./scripts/bench.sh train_memory                                 # 1 M and 5 M events
    ./scripts/bench.sh train_memory --baseline 3249ca0              # and that commit's figures
    ./scripts/bench.sh train_memory --sizes 50000,100000 --no-write # a smoke run

Results: benchmarks/results/train_memory.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from opensearchpy.helpers import streaming_bulk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from end_to_end import MAPPING, T0, sidecar_env
from load import POLL_S, _mib, _proc_status

from devtools.demo.generator import fleet, normal_documents
from devtools.node import DevNode
from sidecar.app.settings import Settings
from sidecar.cluster.client import make_client

RESULTS = ROOT / "benchmarks" / "results" / "train_memory.json"
PREFIX = "trainmem"
HOSTS_PER_CHUNK = 50  # generated at a time: the benchmark's own memory stays small


def index_hosts(client, first: int, last: int, per_host: int, seed: int) -> int:
    """Hosts first..last-1 of a fleet of `last`, per_host documents each."""
    profiles = fleet(last)[first:last]

    def actions():
        for start in range(0, len(profiles), HOSTS_PER_CHUNK):
            chunk = profiles[start : start + HOSTS_PER_CHUNK]
            for doc in normal_documents(chunk, T0, per_host, seed + first + start):
                yield {"_index": f"{PREFIX}-logs", "_source": doc}

    count = 0
    for ok, _ in streaming_bulk(client, actions(), chunk_size=5_000, max_retries=3):
        count += ok
    client.indices.refresh(index=f"{PREFIX}-logs")
    return count


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed while walked
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def train_once(url: str, tree: Path, workdir: Path, label: str) -> dict[str, object]:
    """`python -m sidecar train` of the source tree `tree` over the whole index."""
    spill = workdir / f"tmp-{label}"
    spill.mkdir(parents=True, exist_ok=True)
    env = sidecar_env(url, PREFIX, workdir / f"models-{label}", 3600, SIDECAR_LOG_LEVEL="INFO")
    env.update({"PYTHONPATH": str(tree), "TMPDIR": str(spill), "SIDECAR_LOG_FORMAT": "json"})

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

    command = [
        sys.executable,
        "-m",
        "sidecar",
        "train",
        "--start",
        iso(T0 - 86_400_000),
        "--end",
        iso(T0 + 30 * 86_400_000),
    ]
    out_path, err_path = workdir / f"{label}.stdout", workdir / f"{label}.stderr"
    hwm_kb = spill_peak = 0
    next_du = 0.0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=tree, stdout=out, stderr=err)
        while proc.poll() is None:
            hwm_kb = max(hwm_kb, _proc_status(proc.pid).get("VmHWM", 0))
            if time.perf_counter() - started >= next_du:
                spill_peak = max(spill_peak, _tree_size(spill))
                next_du += 1.0
            time.sleep(POLL_S)
        wall = time.perf_counter() - started
    stderr = err_path.read_text()
    row: dict[str, object] = {
        "tree": label,
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_mib": _mib(hwm_kb),
        "spill_peak_mib": round(spill_peak / 2**20, 1),
    }
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("event") == "training_data_read":
            row["events"], row["hosts"] = record.get("events"), record.get("hosts")
        if record.get("event") == "training_finished":
            row.setdefault("models", {})[record["model"]] = {  # type: ignore[index]
                "epochs": record.get("epochs"),
                "stopped": record.get("stopped"),
                "seconds": record.get("seconds"),
            }
    if proc.returncode != 0:
        row["stderr_tail"] = stderr.splitlines()[-8:]
        print(f"  {label}: train FAILED (exit {proc.returncode})", flush=True)
    return row


def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="train-memory-"))
    trees = [("this tree", ROOT)]
    if args.baseline:
        base = workdir / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.baseline],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        trees.append((f"baseline {args.baseline}", base))
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: dict[str, object] = {
        "per_host": args.per_host,
        "models": Settings.model_fields["models"].default_factory(),  # type: ignore[misc]
        "runs": [],
    }
    node = DevNode(heap=args.heap).start()
    try:
        client = make_client(Settings(cluster_urls=[node.url], request_timeout_seconds=300))
        client.indices.create(index=f"{PREFIX}-logs", body=MAPPING)
        hosts = indexed = 0
        for size in sizes:
            target = max(1, size // args.per_host)
            started = time.perf_counter()
            indexed += index_hosts(client, hosts, target, args.per_host, args.seed)
            hosts = target
            print(
                f"indexed {indexed:,} documents over {hosts} hosts "
                f"({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
            for label, tree in trees:
                row = train_once(node.url, tree, workdir, f"{size}-{label.split()[0]}")
                row.update({"size": size, "indexed": indexed, "tree": label})
                results["runs"].append(row)  # type: ignore[union-attr]
                print(
                    f"  {label}: {row.get('events', 0):,} events, {row.get('hosts', 0)} "
                    f"hosts, {row['wall_s']} s, peak RSS {row['peak_rss_mib']:,} MiB, "
                    f"spill {row['spill_peak_mib']:,} MiB",
                    flush=True,
                )
    finally:
        node.stop()
        if args.baseline:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(workdir / "baseline")],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
    return results


def table(results: dict[str, object]) -> str:
    lines = [
        "| events indexed | tree | events read | hosts | train s | peak RSS MiB | spill MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["runs"]:  # type: ignore[union-attr]
        lines.append(
            f"| {row['indexed']:,} | {row['tree']} | {row.get('events', 0):,} | "
            f"{row.get('hosts', '')} | {row['wall_s']} | {row['peak_rss_mib']:,} | "
            f"{row['spill_peak_mib']:,} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,5000000", help="total documents, ascending")
    parser.add_argument("--per-host", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default="", help="a git ref measured the same way")
    parser.add_argument("--heap", default="2g")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = run(args)
    print(table(results))
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["returncode"] == 0 for r in results["runs"]) else 1  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
