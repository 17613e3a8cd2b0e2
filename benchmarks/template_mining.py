"""Accuracy and speed of the sidecar's template miner on LogHub's 2k samples.

For each `*_2k.log_structured.csv` in the data folder (default `../shared/data/loghub/`), every
Content line is mined in order, with one default configuration for all samples. Reported:

- GA, grouping accuracy (Zhu et al., ICSE-SEIP'19, as logpai/logparser computes it): a line is
  correct when the lines of its template are exactly the lines of its reference EventId. Lines
  are assigned to templates as the miner holds them after the sample (as Drain and Brain are
  evaluated); "online" is the GA of the ids handed out as each line arrived (before later
  lines taught the miner that a place varies).
- PA, parsing accuracy: the line's template text equals its reference template once wildcards
  are normalised (a token holding `<*>` is `<*>`; a run of `<*>` with only punctuation or
  spaces between is one `<*>`: how many tokens a value spans is a tokenising choice).
- Drain's and Brain's published GA beside (logpai/logparser READMEs, tuned per data set).
- Reference events that differ only in values our masks take out (numbers, hex, ...): listed
  as probable reference errors, not matched.

Then a stream of 200,000 lines drawn from all samples, every reference `<*>` value replaced by
a fresh one of the same shape (digits by digits, letters by letters: a new number, hex value,
IP, path or identifier), mined by ours and by drain3 (default configuration) on one core, with
lines/s and clusters, and the load average.

    ./scripts/bench.sh template_mining [--data DIR] [--json] [--stream-lines N]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import string
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sidecar.templates.drain import TemplateMiner
from sidecar.templates.masking import DELIMITERS, mask

DATA = ROOT.parent / "shared" / "data" / "loghub"
OUT = ROOT / "benchmarks" / "results" / "template_mining.json"
# logpai/logparser, Drain and Brain READMEs (Loghub_2k, grouping accuracy), as quoted in
# ../shared/data/README.md.
PUBLISHED = {
    "Android": (0.911, 0.9605),
    "Apache": (1.0, 1.0),
    "HDFS": (0.9975, 0.9975),
    "HPC": (0.887, 0.945),
    "HealthApp": (0.78, 1.0),
    "Linux": (0.69, 0.996),
    "Mac": (0.7865, 0.942),
    "OpenSSH": (0.7875, 1.0),
    "OpenStack": (0.7325, 1.0),
    "Proxifier": (0.5265, 1.0),
    "Spark": (0.92, 0.9975),
    "Windows": (0.997, 0.997),
    "Zookeeper": (0.9665, 0.9875),
}
_W = "\x01"  # a wildcard while normalising
_TOKEN = re.compile(rf"[^{DELIMITERS}]*{_W}[^{DELIMITERS}]*")
_RUN = re.compile(rf"{_W}(?:[{DELIMITERS}]*{_W})+")


def grouping_accuracy(truth: list[str], mined: list[str]) -> float:
    by_truth: dict[str, set[int]] = defaultdict(set)
    by_mined: dict[str, set[int]] = defaultdict(set)
    for line, (t, m) in enumerate(zip(truth, mined, strict=True)):
        by_truth[t].add(line)
        by_mined[m].add(line)
    reference = {frozenset(lines) for lines in by_truth.values()}
    correct = sum(len(lines) for lines in by_mined.values() if frozenset(lines) in reference)
    return correct / len(truth)


def normalised(template: str) -> str:
    text = _TOKEN.sub(_W, template.replace("<*>", _W))
    return " ".join(_RUN.sub(_W, text).split())


def suspect_references(rows: list[dict]) -> list[str]:
    """Reference events whose templates are one once our masks have run over them: the
    reference splits one statement on a value (a number, an interface name with a digit)."""
    by_masked: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_masked[normalised(mask(row["EventTemplate"]).replace("\x00", "<*>"))].add(
            f"{row['EventId']}: {row['EventTemplate'][:70]}"
        )
    return [" | ".join(sorted(events)) for events in by_masked.values() if len(events) > 1]


def read(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def evaluate(name: str, rows: list[dict]) -> dict:
    miner = TemplateMiner()
    started = time.perf_counter()
    online = [miner.add(row["Content"]).id for row in rows]
    seconds = time.perf_counter() - started
    final = [miner.match(row["Content"]) for row in rows]
    truth = [row["EventId"] for row in rows]
    parsed = sum(
        c is not None and normalised(c.template) == normalised(row["EventTemplate"])
        for c, row in zip(final, rows, strict=True)
    )
    # A restart and two replicas (each mined every other line, then merged the other's saved
    # state): every line must get the same id from each.
    reloaded = TemplateMiner.from_json(miner.to_json())
    stable = all(
        (a := reloaded.match(row["Content"])) is not None and c is not None and a.id == c.id
        for c, row in zip(final, rows, strict=True)
    )
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
    drain, brain = PUBLISHED.get(name, (None, None))
    return {
        "lines": len(rows),
        "reference_events": len(set(truth)),
        "clusters": len(miner.clusters),
        "ga": round(grouping_accuracy(truth, [c.id if c else "" for c in final]), 4),
        "ga_online": round(grouping_accuracy(truth, online), 4),
        "pa": round(parsed / len(rows), 4),
        "drain_published": drain,
        "brain_published": brain,
        "lines_per_s": round(len(rows) / seconds),
        "ids_stable_after_reload": stable,
        "merged_replicas_agree": agree,
        "suspect_references": suspect_references(rows),
    }


_CALENDAR = [
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
]


def _fresh(value: str, rng: random.Random) -> str:
    """A new value of the same class: a path gets new names and numbers; a value with digits
    (a number, hex value, IP, identifier such as `blk_42` or `1.2 KB`) new digits (and new
    hex letters in a hex value), its other letters kept; a word (a user name) new letters; a
    weekday or month name another one. Lengths and punctuation are kept."""
    words = value.split(" ")
    if len(words) > 1 and any(w in names for w in words for names in _CALENDAR):
        return " ".join(
            next((rng.choice(n) for n in _CALENDAR if w in n), None) or _fresh(w, rng)
            for w in words
        )
    path = "/" in value or "\\" in value
    digits = any(c.isdigit() for c in value)
    hexlike = digits and bool(re.fullmatch(r"(0x)?[0-9a-fA-F]+", value))
    out = []
    for i, c in enumerate(value):
        if c.isdigit():
            out.append(rng.choice(string.digits[1:] if i == 0 else string.digits))
        elif i == 1 and value.startswith("0x"):
            out.append(c)
        elif hexlike and c in "abcdefABCDEF":
            out.append(rng.choice("abcdef"))
        elif c.isalpha() and (path or not digits):
            letter = rng.choice(string.ascii_lowercase)
            out.append(letter.upper() if c.isupper() else letter)
        else:
            out.append(c)
    return "".join(out)


def perturbed_stream(samples: dict[str, list[dict]], lines: int, seed: int = 15) -> list[str]:
    """`lines` lines drawn at random from all samples, every reference `<*>` value fresh."""
    rng = random.Random(seed)
    patterns: dict[str, re.Pattern[str] | None] = {}
    pool = [row for rows in samples.values() for row in rows]
    out = []
    for _ in range(lines):
        row = rng.choice(pool)
        template = row["EventTemplate"]
        if template not in patterns:
            parts = [re.escape(p) for p in template.split("<*>")]
            try:
                patterns[template] = re.compile("(.*?)".join(parts), re.S)
            except re.error:
                patterns[template] = None
        pattern = patterns[template]
        found = pattern.fullmatch(row["Content"]) if pattern else None
        if found is None:  # the reference does not match its own line: kept as it is
            out.append(row["Content"])
            continue
        pieces, last = [], 0
        for index in range(1, (pattern.groups if pattern else 0) + 1):
            start, end = found.span(index)
            pieces += [row["Content"][last:start], _fresh(found.group(index), rng)]
            last = end
        out.append("".join(pieces) + row["Content"][last:])
    return out


def stream_figures(lines: list[str]) -> dict:
    figures: dict[str, object] = {"lines": len(lines), "load_average_before": os.getloadavg()}
    miner = TemplateMiner()
    started = time.perf_counter()
    for line in lines:
        miner.add(line)
    seconds = time.perf_counter() - started
    figures["ours"] = {
        "lines_per_s": round(len(lines) / seconds),
        "clusters": len(miner.clusters),
        "variants": len(miner.variants),
        "state_bytes": len(miner.to_json()),
    }
    try:
        import logging

        from drain3 import TemplateMiner as Drain3  # type: ignore[import-not-found]

        logging.getLogger("drain3").setLevel(logging.ERROR)
        drain3 = Drain3()
        started = time.perf_counter()
        for line in lines:
            drain3.add_log_message(line)
        seconds = time.perf_counter() - started
        figures["drain3"] = {
            "lines_per_s": round(len(lines) / seconds),
            "clusters": len(drain3.drain.clusters),
        }
    except ImportError:
        figures["drain3"] = None
        print("note: drain3 is not installed here (pip install drain3 into the venv to compare)")
    figures["load_average_after"] = os.getloadavg()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of *_2k.log_structured.csv")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--stream-lines", type=int, default=200_000)
    args = parser.parse_args()
    samples = {
        p.name.split("_")[0]: read(p) for p in sorted(args.data.glob("*_2k.log_structured.csv"))
    }
    if not samples:
        print(f"no *_2k.log_structured.csv in {args.data}", file=sys.stderr)
        return 2
    results = {name: evaluate(name, rows) for name, rows in samples.items()}
    stream = stream_figures(perturbed_stream(samples, args.stream_lines))
    report = {"samples": results, "stream": stream}
    OUT.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    print_table(results, stream)
    print(f"wrote {OUT}")
    return 0


def print_table(results: dict[str, dict], stream: dict) -> None:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    print(
        f"{'data set':<10} {'GA':>7} {'online':>7} {'PA':>7} {'Drain':>7} {'Brain':>7} "
        f"{'lines/s':>8} {'clusters':>8} {'events':>7}  reload/replicas"
    )
    for name, r in results.items():
        print(
            f"{name:<10} {r['ga']:>7.4f} {r['ga_online']:>7.4f} {r['pa']:>7.4f} "
            f"{fmt(r['drain_published']):>7} {fmt(r['brain_published']):>7} "
            f"{r['lines_per_s']:>8} {r['clusters']:>8} {r['reference_events']:>7}  "
            f"{r['ids_stable_after_reload']}/{r['merged_replicas_agree']}"
        )
    for key in ("ga", "ga_online", "pa", "drain_published", "brain_published"):
        known = [r[key] for r in results.values() if r[key] is not None]
        print(f"mean {key}: {sum(known) / len(known):.4f} over {len(known)}", end="; ")
    print()
    for name, r in results.items():
        for suspect in r["suspect_references"]:
            print(f"probable reference error ({name}, one statement split on a value): {suspect}")
    ours, drain3 = stream["ours"], stream["drain3"]
    print(
        f"perturbed stream, {stream['lines']} lines: ours {ours['lines_per_s']} lines/s, "
        f"{ours['clusters']} clusters ({ours['variants']} variants, {ours['state_bytes']} "
        "bytes of state)"
        + (
            f"; drain3 {drain3['lines_per_s']} lines/s, {drain3['clusters']} clusters"
            if drain3
            else "; drain3 not installed"
        )
        + f"; load average before {stream['load_average_before']}, "
        f"after {stream['load_average_after']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
