"""Grouping accuracy of the sidecar's template miner on LogHub's 2k samples.

For each `../shared/data/loghub/*_2k.log_structured.csv`, every Content line is mined in order;
a line counts as correct when the set of lines in its mined cluster is exactly the set of
lines sharing its reference EventId (the "parsing accuracy" of Zhu et al., ICSE-SEIP'19, as
LogPAI's logparser computes it). Drain's published figures on the same samples are printed
beside ours (logpai/logparser, Drain README, with per-dataset masks, similarity and depth; ours uses one
default configuration for all four).

    ./scripts/bench.sh template_mining
"""

from __future__ import annotations

import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sidecar.encoding.drain import TemplateMiner

DATA = ROOT.parent / "shared" / "data" / "loghub"
# logpai/logparser, logparser/Drain/README.md (Loghub_2k, accuracy column).
DRAIN_PUBLISHED = {"HDFS": 0.9975, "Windows": 0.997, "Linux": 0.69, "OpenSSH": 0.7875}


def grouping_accuracy(truth: list[str], mined: list[int]) -> float:
    by_truth: dict[str, set[int]] = defaultdict(set)
    by_mined: dict[int, set[int]] = defaultdict(set)
    for line, (t, m) in enumerate(zip(truth, mined, strict=True)):
        by_truth[t].add(line)
        by_mined[m].add(line)
    correct = sum(len(lines) for lines in by_mined.values() if lines in by_truth.values())
    return correct / len(truth)


def main() -> int:
    results = {}
    print(
        f"{'dataset':<10} {'lines':>6} {'templates':>9} {'mined':>6} {'accuracy':>9} {'Drain':>7}"
    )
    for path in sorted(DATA.glob("*_2k.log_structured.csv")):
        name = path.name.split("_")[0]
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        miner = TemplateMiner()
        started = time.perf_counter()
        mined = [miner.add(row["Content"]).id for row in rows]
        seconds = time.perf_counter() - started
        truth = [row["EventId"] for row in rows]
        accuracy = grouping_accuracy(truth, mined)
        # A restart: the reloaded miner must give every line the id the running one gives.
        reloaded = TemplateMiner.from_json(miner.to_json())
        stable = all(
            (a := miner.match(row["Content"])) is not None
            and (b := reloaded.match(row["Content"])) is not None
            and a.id == b.id
            and a.template == b.template
            for row in rows
        )
        # Two replicas, each mining every other line, then merging the other's saved state:
        # both must label every line alike.
        replicas = [TemplateMiner(), TemplateMiner()]
        for i, row in enumerate(rows):
            replicas[i % 2].add(row["Content"])
        states = [r.to_json() for r in replicas]
        replicas[0].merge(TemplateMiner.from_json(states[1]))
        replicas[1].merge(TemplateMiner.from_json(states[0]))
        agree = all(
            (a := replicas[0].match(row["Content"])) is not None
            and (b := replicas[1].match(row["Content"])) is not None
            and a.id == b.id
            for row in rows
        )
        results[name] = {
            "lines": len(rows),
            "reference_templates": len(set(truth)),
            "mined_templates": len(miner.clusters),
            "accuracy": round(accuracy, 4),
            "drain_published": DRAIN_PUBLISHED.get(name),
            "ids_stable_after_reload": stable,
            "merged_replicas_agree": agree,
            "lines_per_s": round(len(rows) / seconds),
        }
        published = DRAIN_PUBLISHED.get(name)
        print(
            f"{name:<10} {len(rows):>6} {len(set(truth)):>9} {len(miner.clusters):>6} "
            f"{accuracy:>9.4f} {published if published is not None else '-':>7}"
            f"   ids stable after reload: {stable}, merged replicas agree: {agree}"
        )
    out = ROOT / "benchmarks" / "results" / "template_mining.json"
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
