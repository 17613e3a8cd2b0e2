"""Scoring throughput: the product's batched, deduplicated path against a naive per-window loop.

The content detector (SIDECAR_MODELS=...,content) is measured on the fleet workload, whose
events carry messages: batched (every event of a template and text shape scored once) against
the same detector called once per event; the share of distinct rows is printed beside it.

The naive loop is how the reference implementations score: one forward pass per window,
batch 1, then "is the observed key among the top g". Both run the same trained model in the
same process on the same events, one after the other, so the ratio holds on a noisy machine;
the flagged events must be identical (asserted).

Workloads: the HDFS dev sessions (../shared/data/hdfs) and a generated stream of 500+ hosts
(devtools.demo.generator). Models are trained briefly (speed, not quality, is measured here).

    ./scripts/bench.sh scoring [--hosts 500] [--naive-events N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdfs_data import DEFAULT_DATA, load_sessions, load_templates, session_events

from devtools.demo.generator import documents_with_incidents, fleet, normal_documents
from sidecar.encoding.events import FieldNames, parse_event
from sidecar.encoding.vocabulary import UNKNOWN
from sidecar.encoding.windows import windows_with_targets
from sidecar.lifecycle.training import group_by_host, train_model
from sidecar.models.catalog import DetectorOptions, kind_of
from sidecar.models.content.detector import ContentDetector
from sidecar.models.nextkey.build import build_detector
from sidecar.models.nextkey.core import count_bursts
from sidecar.models.nextkey.detector import NextKeyDetector
from sidecar.types import HostSequence, InputStats, LogEvent

SEED = 42
MODELS = ("deeplog", "loganomaly")


def naive_flags(detector: NextKeyDetector, streams: dict[str, list[LogEvent]]) -> set[str]:
    """log_uuids flagged by scoring each window alone (batch 1), as reference code does."""
    flagged: set[str] = set()
    h, g = detector.window_size, detector.top_g
    with torch.inference_mode():
        for stream in streams.values():
            keys, _ = detector.encode(stream)
            windows, targets = windows_with_targets(np.empty(0, dtype=np.int64), keys, h)
            for i in range(len(targets)):
                target = int(targets[i])
                if target == UNKNOWN:
                    flagged.add(stream[i].log_uuid)
                    continue
                logits = detector.model(torch.from_numpy(windows[i : i + 1]))[0].float()
                logits[:2] = float("-inf")  # padding and unknown are never predictions
                probs = torch.softmax(logits, dim=0)
                rank = int((probs > probs[target]).sum()) + 1
                burst = detector.count_limits is not None and bool(
                    count_bursts(windows[i : i + 1], targets[i : i + 1], detector.count_limits)[0]
                )
                if rank > g or burst or float(probs[target]) < detector.min_probability:
                    flagged.add(stream[i].log_uuid)
    return flagged


def batched_flags(detector: NextKeyDetector, streams: dict[str, list[LogEvent]]) -> set[str]:
    batch = detector.detect([HostSequence(h, (), s) for h, s in streams.items()])
    return {d.event.log_uuid for d in batch.detections}


def naive_content_flags(detector: ContentDetector, streams: dict[str, list[LogEvent]]) -> set[str]:
    """log_uuids flagged by calling the detector once per event."""
    flagged: set[str] = set()
    for host, stream in streams.items():
        for event in stream:
            batch = detector.detect([HostSequence(host, (), [event])])
            flagged.update(d.event.log_uuid for d in batch.detections)
    return flagged


def content_row(
    train: dict[str, list[LogEvent]], score: dict[str, list[LogEvent]], workdir: Path, naive: int
) -> dict[str, object]:
    config = kind_of("content").config_type(seed=SEED)
    artifact = train_model("content", train, config, workdir, {})
    build = lambda: kind_of("content").detector(artifact, DetectorOptions())  # noqa: E731
    subset = first_events(score, naive)
    slow, slow_s = timed(naive_content_flags, build(), subset)
    batched_flags(build(), first_events(score, 1_000))
    runs = []
    for _ in range(3):
        detector = build()
        runs.append((*timed(batched_flags, detector, score), detector))
    (fast, _, detector), fast_s = runs[0], min(t for _, t, _ in runs)
    in_subset = {e.log_uuid for stream in subset.values() for e in stream}
    assert fast & in_subset == slow, "content: batched and per-event verdicts differ"
    events = events_of(score)
    return {
        "events": events,
        "naive_events": events_of(subset),
        "naive_events_per_s": round(events_of(subset) / slow_s),
        "batched_events_per_s_all": round(events / fast_s),
        "speedup": round((events / fast_s) / (events_of(subset) / slow_s), 1),
        "distinct_rows": detector.distinct_rows,
        "distinct_share": round(detector.distinct_rows / max(detector.judged_events, 1), 4),
        "flagged_all": len(fast),
        "verdicts_identical_on_naive_events": True,
    }


def first_events(streams: dict[str, list[LogEvent]], limit: int) -> dict[str, list[LogEvent]]:
    """Whole streams, in order, until `limit` events: the naive loop's share of the workload."""
    taken: dict[str, list[LogEvent]] = {}
    count = 0
    for host, stream in streams.items():
        if count >= limit:
            break
        taken[host] = stream
        count += len(stream)
    return taken


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def events_of(streams: dict[str, list[LogEvent]]) -> int:
    return sum(len(s) for s in streams.values())


def workloads(args: argparse.Namespace):
    data = Path(args.data)
    templates = load_templates(data)
    hdfs_train = session_events("train", load_sessions(data / "train_normal.txt"), templates, True)
    hdfs_dev = {
        **session_events("normal", load_sessions(data / "dev_normal.txt"), templates, True),
        **session_events("abnormal", load_sessions(data / "dev_abnormal.txt"), templates, True),
    }
    profiles = fleet(args.hosts)
    stats, names = InputStats(), FieldNames()

    def streams(docs):
        return group_by_host(e for d in docs if (e := parse_event(d, names, stats)) is not None)

    fleet_train = streams(normal_documents(profiles, 1_700_000_000_000, 300, seed=1))
    incidents = {p.name: "brute_force" for p in profiles[3::50]}
    live, _ = documents_with_incidents(
        profiles, 1_800_000_000_000, 200, seed=2, incidents=incidents
    )
    return {
        "hdfs_dev": (hdfs_train, hdfs_dev),
        f"fleet_{args.hosts}_hosts": (fleet_train, streams(live)),
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    results: dict[str, object] = {"threads": torch.get_num_threads(), "workloads": {}}
    workdir = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    for name, (train, score) in workloads(args).items():
        per_model: dict[str, object] = {}
        for model in filter(None, args.models.split(",")):
            config = replace(
                kind_of(model).config_type(), epochs=args.epochs, batch_size=512, seed=SEED
            )
            artifact = train_model(model, train, config, workdir / name, {})
            detector = build_detector(artifact)
            subset = first_events(score, args.naive_events) if args.naive_events else score

            naive, naive_s = timed(naive_flags, detector, subset)
            # The batched path is timed after one warm-up call, best of three runs (the naive
            # loop, one long run, needs no warm-up to speak of).
            batched_flags(detector, first_events(score, 1_000))
            runs = [timed(batched_flags, detector, subset) for _ in range(3)]
            fast_subset, fast_subset_s = runs[0][0], min(t for _, t in runs)
            assert fast_subset == naive, f"{model} on {name}: batched and naive verdicts differ"
            fast_all, fast_all_s = (
                (fast_subset, fast_subset_s)
                if subset is score
                else timed(batched_flags, detector, score)
            )
            subset_events, all_events = events_of(subset), events_of(score)
            row = {
                "events": all_events,
                "naive_events": subset_events,
                "naive_events_per_s": round(subset_events / naive_s),
                "batched_events_per_s_same_events": round(subset_events / fast_subset_s),
                "batched_events_per_s_all": round(all_events / fast_all_s),
                "speedup_same_events": round(naive_s / fast_subset_s, 1),
                "flagged_same_events": len(naive),
                "flagged_all": len(fast_all),
                "verdicts_identical": True,
            }
            per_model[model] = row
            print(
                f"{name:>18} {model:<10} naive {row['naive_events_per_s']:>8,} ev/s | batched "
                f"{row['batched_events_per_s_same_events']:>9,} ev/s on the same "
                f"{subset_events:,} events = {row['speedup_same_events']}x, identical "
                f"verdicts ({len(naive)} flagged) | batched on all {all_events:,}: "
                f"{row['batched_events_per_s_all']:,} ev/s",
                flush=True,
            )
        if name.startswith("fleet"):
            row = content_row(train, score, workdir / f"{name}-content", args.content_naive_events)
            per_model["content"] = row
            print(
                f"{name:>18} {'content':<10} per event {row['naive_events_per_s']:>8,} ev/s on "
                f"{row['naive_events']:,} events | batched {row['batched_events_per_s_all']:,} "
                f"ev/s on {row['events']:,} = {row['speedup']}x, identical verdicts | distinct "
                f"(template, shape) rows {row['distinct_rows']:,} = {row['distinct_share']:.1%} "
                f"of events | flagged {row['flagged_all']}",
                flush=True,
            )
        results["workloads"][name] = per_model  # type: ignore[index]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--models", default=",".join(MODELS), help="next-key models to measure")
    parser.add_argument(
        "--naive-events",
        type=int,
        default=0,
        help="score only the first N events naively (default: all)",
    )
    parser.add_argument(
        "--content-naive-events",
        type=int,
        default=5_000,
        help="events the content detector scores one call each (the rest only batched)",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring.json"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if not args.no_write:
        Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
