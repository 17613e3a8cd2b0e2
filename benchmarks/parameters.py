"""The parameter model (DeepLog's timing and parameter values) on real logs: false alarms on
normal held-out events, and what it catches when a value or a silence is injected.

For each LogHub 2k sample in `../shared/data/loghub/` (one host per file; EVENTID = the
reference EventId, SEVERITY = the Level column where there is one, MESSAGE = Content), the
model is trained on the first 70% of the lines in time order and scores the other 30%:
- in one pass, with the last h training events as the host's tail (as `run` would after
  training), and in cycles of 100 events each continuing from the previous cycle's tail (key
  histories then start afresh more often: the cycle-boundary cost);
- at confidences 0.99, 0.995 and 0.999 (the one-sided tail probabilities are 1%, 0.5%, 0.1%).
These logs are taken as normal, so every flag counts as a false alarm. Then, for up to 200
held-out events of modelled keys (the probes), each event alone after its h predecessors:
unchanged (the baseline), with its first parameter value ×100 (or 1000 where it was 0), and
after an hour of silence; the share flagged is the detection rate of each injection.

    ./scripts/bench.sh parameters
"""

from __future__ import annotations

import csv
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.parameter.detector import ParameterDetector
from sidecar.models.parameter.features import (
    features_of,
    history_matrix,
    layout_of,
    previous_of_same_key,
)
from sidecar.models.parameter.fit import FittedParameters, fit_parameter_model, held_out_mask
from sidecar.models.parameter.model import TIMING, ParameterConfig, normalise, score_vectors, z_for
from sidecar.models.parameter.slots import number_slots
from sidecar.types import HostSequence, LogEvent

DATA = ROOT.parent / "shared" / "data" / "loghub"
TRAIN_SHARE = 0.7
CYCLE_EVENTS = 100
CONFIDENCES = (0.99, 0.995, 0.999)
PROBES = 200
HOUR_MS = 3_600_000


def _timestamp_ms(name: str, row: dict[str, str]) -> int:
    """The line's time; the samples give no year where they give a month name (2016 is used)."""
    if name == "HDFS":
        moment = datetime.strptime(row["Date"] + row["Time"], "%y%m%d%H%M%S")
    elif name == "Windows":
        moment = datetime.strptime(f"{row['Date']} {row['Time']}", "%Y-%m-%d %H:%M:%S")
    else:
        month, day = (row["Date"], row["Day"]) if name == "OpenSSH" else (row["Month"], row["Date"])
        moment = datetime.strptime(f"2016 {month} {day} {row['Time']}", "%Y %b %d %H:%M:%S")
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def read_log(path: Path) -> list[LogEvent]:
    name = path.name.split("_")[0]
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    events = [
        LogEvent(
            host=name,
            timestamp_ms=_timestamp_ms(name, row),
            log_uuid=f"{int(row['LineId']):06d}",
            event_id=row["EventId"],
            severity=row.get("Level", ""),
            message=row["Content"],
        )
        for row in rows
    ]
    events.sort(key=lambda e: (e.timestamp_ms, e.log_uuid))  # the order the sidecar reads
    return events


def _flags(detector: ParameterDetector, sequences: list[HostSequence]) -> dict[str, object]:
    detector.skipped.clear()
    started = time.perf_counter()
    batch = detector.detect(sequences)
    seconds = time.perf_counter() - started
    return {
        "scored": batch.scored,
        "flagged": len(batch.detections),
        "rate": round(len(batch.detections) / max(batch.scored, 1), 4),
        "by_parameter": dict(
            Counter(
                "timing" if d.parameters.deviating == TIMING else "value"  # type: ignore[union-attr]
                for d in batch.detections
            )
        ),
        "skipped": dict(detector.skipped),
        "seconds": round(seconds, 4),
    }


def _in_cycles(
    held_out: dict[str, list[LogEvent]], tails: dict[str, tuple[LogEvent, ...]], h: int
) -> list[list[HostSequence]]:
    """Each host's held-out events in successive cycles, each continuing from the tail the
    previous one left."""
    tails = dict(tails)
    cycles = []
    for start in range(0, max(len(v) for v in held_out.values()), CYCLE_EVENTS):
        cycle = []
        for host, events in held_out.items():
            chunk = events[start : start + CYCLE_EVENTS]
            if chunk:
                cycle.append(HostSequence(host, tails[host], chunk))
                tails[host] = (*tails[host], *(e.as_context() for e in chunk))[-h:]
        cycles.append(cycle)
    return cycles


def _ablation(
    fitted: FittedParameters,
    vocabulary: Vocabulary,
    config: ParameterConfig,
    train: dict[str, list[LogEvent]],
    sequences: list[HostSequence],
) -> dict[str, float]:
    """Held-out false-alarm rates at the configured confidence of the threshold rule's parts:
    DeepLog's Gaussian on the raw MSE, the Gaussian on its cube root, then with timing counted
    one way, then as shipped (also the empirical quantile and min_error)."""
    net = fitted.net

    def scored(runs: list, rows: np.ndarray | None, early: bool, min_error: float):
        layout = layout_of(runs, vocabulary)
        features = features_of(layout, fitted.slots, net.dims)
        normalised = normalise(features, layout.keys, net)
        usable = features.observed & net.active.numpy()[layout.keys]
        history = history_matrix(normalised, previous_of_same_key(layout, net.history))
        scores = score_vectors(
            net,
            normalised,
            usable,
            history,
            layout.keys,
            config.confidence,
            min_error,
            rows=rows,
            early_counts=early,
        )
        return layout.keys, scores

    keys, fit = scored(list(train.values()), None, True, 0.0)
    held = held_out_mask(keys, config.holdout_every) & fit.judged
    size = vocabulary.size
    raw_mu, raw_sd, cb_mu, cb_sd = (np.full(size, np.nan) for _ in range(4))
    for k in range(size):
        errors = fit.error[held & (keys == k)]
        if len(errors) >= 5:
            raw_mu[k], raw_sd[k] = errors.mean(), errors.std(ddof=1)
            roots = np.cbrt(errors)
            cb_mu[k], cb_sd[k] = roots.mean(), roots.std(ddof=1)
    runs = [(*seq.context, *seq.events) for seq in sequences]
    new = np.concatenate(
        [np.r_[np.zeros(len(q.context), bool), np.ones(len(q.events), bool)] for q in sequences]
    )
    keys, two_way = scored(runs, new, True, 0.0)
    _, shipped = scored(runs, new, False, config.min_error)
    judged = two_way.judged & ~np.isnan(raw_mu[keys])
    z = z_for(config.confidence)
    raw_threshold = (raw_mu + z * raw_sd)[keys]
    cube_threshold = np.clip(cb_mu + z * cb_sd, 0, None)[keys] ** 3
    rules = {
        "deeplog_gaussian_on_mse": two_way.error > raw_threshold,
        "gaussian_on_cube_root": two_way.error > cube_threshold,
        "plus_timing_one_way": shipped.error > cube_threshold,
        "shipped": shipped.flagged,
    }
    return {name: round(float(flags[judged].mean()), 4) for name, flags in rules.items()}


def _with_value_times_100(event: LogEvent, slot: str) -> LogEvent | None:
    """The event with the number at `slot` multiplied by 100 (0 becomes 1000)."""
    values = [v for s, v in number_slots(event.message) if s == slot]
    if not values or event.message is None:
        return None
    old = values[0]
    new = old * 100 if old else 1000.0
    text = f"{old:g}" if old != int(old) else str(int(old))
    replaced = f"{new:g}" if new != int(new) else str(int(new))
    for candidate in (f" {text}", f"={text}", f":{text}", text):
        if candidate in event.message:
            head = candidate[: len(candidate) - len(text)]
            return replace(event, message=event.message.replace(candidate, head + replaced, 1))
    return None


def _probe(
    detector: ParameterDetector, probes: list[tuple[LogEvent, tuple[LogEvent, ...]]]
) -> dict[str, object]:
    """Each probed event alone after its h predecessors: as is, with a value ×100, after an
    hour of silence."""
    slots = detector.slots
    baseline, value, silence = [], [], []
    for j, (event, before) in enumerate(probes):
        key = detector.vocabulary.id_of(event.event_id, event.severity)
        baseline.append(HostSequence(f"p{j}", before, [event]))
        silence.append(
            HostSequence(
                f"p{j}", before, [replace(event, timestamp_ms=event.timestamp_ms + HOUR_MS)]
            )
        )
        if slots[key]:
            changed = _with_value_times_100(event, slots[key][0])
            if changed is not None:
                value.append(HostSequence(f"p{j}", before, [changed]))

    def share(sequences: list[HostSequence], wanted: str | None = None) -> dict[str, object]:
        if not sequences:
            return {"probes": 0}
        batch = detector.detect(sequences)
        hits = [
            d
            for d in batch.detections
            if wanted is None or d.parameters.deviating == wanted  # type: ignore[union-attr]
        ]
        return {
            "probes": len(sequences),
            "flagged": len(hits),
            "rate": round(len(hits) / len(sequences), 4),
        }

    return {
        "unchanged": share(baseline),
        "value_x100": share(value),
        "value_x100_named_value_1": share(value, "value_1"),
        "hour_of_silence": share(silence),
        "hour_of_silence_named_timing": share(silence, TIMING),
    }


def run_dataset(
    train: dict[str, list[LogEvent]], held_out: dict[str, list[LogEvent]], config: ParameterConfig
) -> dict[str, object]:
    vocabulary = Vocabulary.fit(e for stream in train.values() for e in stream)
    started = time.perf_counter()
    fitted = fit_parameter_model(train, vocabulary, config)
    train_seconds = time.perf_counter() - started
    h = config.window_size
    tails = {host: tuple(e.as_context() for e in train[host][-h:]) for host in held_out}
    one_pass = [HostSequence(host, tails[host], events) for host, events in held_out.items()]
    result: dict[str, object] = {
        "hosts": len(train),
        "train_events": sum(len(v) for v in train.values()),
        "held_out_events": sum(len(v) for v in held_out.values()),
        "keys": vocabulary.known,
        **fitted.stats,
        "slots": {vocabulary.label_of(k): s for k, s in enumerate(fitted.slots) if s},
        "train_seconds": round(train_seconds, 3),
    }

    def detector(confidence: float) -> ParameterDetector:
        return ParameterDetector(
            "parameters",
            "bench",
            vocabulary,
            fitted.net,
            fitted.slots,
            h,
            confidence,
            config.min_error,
        )

    passes: dict[str, object] = {}
    for confidence in CONFIDENCES:
        one = _flags(detector(confidence), one_pass)
        cycles = [_flags(detector(confidence), c) for c in _in_cycles(held_out, tails, h)]
        flagged = sum(int(c["flagged"]) for c in cycles)  # type: ignore[call-overload]
        scored = sum(int(c["scored"]) for c in cycles)  # type: ignore[call-overload]
        passes[str(confidence)] = {
            "one_pass": one,
            "cycles_of_100": {
                "scored": scored,
                "flagged": flagged,
                "rate": round(flagged / max(1, scored), 4),
            },
        }
    result["held_out"] = passes
    result["threshold_rule_ablation"] = _ablation(fitted, vocabulary, config, train, one_pass)
    modelled = fitted.net.modelled.numpy()
    candidates = []
    for host, events in held_out.items():
        whole = train[host] + events
        keys = vocabulary.encode(events)
        offset = len(train[host])
        candidates += [
            (events[i], tuple(whole[offset + i - h : offset + i]))
            for i in range(len(events))
            if modelled[keys[i]]
        ]
    rng = random.Random(20261122)
    probes = [
        candidates[i]
        for i in sorted(rng.sample(range(len(candidates)), min(PROBES, len(candidates))))
    ]
    result["injected"] = _probe(detector(config.confidence), probes)
    return result


def synthetic(seed: int, events: int) -> dict[str, list[LogEvent]]:
    """Four hosts logging keys A, B, C every 2 s ± 0.2 s; A's duration ~ N(120, 10) ms, C's
    count ~ N(5000, 200): the regular case the model's assumptions fit."""
    streams = {}
    for host in ("app-0", "app-1", "app-2", "app-3"):
        rng = random.Random(f"{seed}:{host}")
        clock, stream = 1_700_000_000_000, []
        for i in range(events):
            clock += max(1, round(rng.gauss(2_000, 200)))
            key = rng.choices("ABC", [3, 2, 2])[0]
            message = {
                "A": f"Request served, took {round(rng.gauss(120, 10))} ms",
                "B": "User session refreshed",
                "C": f"Cache holds {round(rng.gauss(5000, 200))} entries",
            }[key]
            stream.append(LogEvent(host, clock, f"{host}-{seed}-{i:05d}", key, "info", message))
        streams[host] = stream
    return streams


def datasets() -> dict[str, tuple[dict[str, list[LogEvent]], dict[str, list[LogEvent]]]]:
    """name -> (training streams, held-out streams)."""
    chosen = {"synthetic": (synthetic(1, 1_500), synthetic(7, 2_500))}
    for path in sorted(DATA.glob("*_2k.log_structured.csv")):
        events = read_log(path)
        cut = int(len(events) * TRAIN_SHARE)
        host = events[0].host
        chosen[path.name.split("_")[0]] = ({host: events[:cut]}, {host: events[cut:]})
    return chosen


def main() -> int:
    config = ParameterConfig()
    results: dict[str, object] = {"config": config.to_json(), "datasets": {}}
    for name, (train, held_out) in datasets().items():
        result = run_dataset(train, held_out, config)
        results["datasets"][name] = result  # type: ignore[index]
        print(
            f"{name}: trained on {result['train_events']} events in {result['train_seconds']}s, "
            f"{result['modelled_keys']} of {result['keys']} keys modelled, "
            f"held-out flag rate at training {result['held_out_flag_rate']}"
        )
        for confidence, figures in result["held_out"].items():  # type: ignore[union-attr]
            one, cycles = figures["one_pass"], figures["cycles_of_100"]
            print(
                f"  confidence {confidence}: held out {one['flagged']}/{one['scored']} flagged "
                f"({one['rate']:.2%}) {one['by_parameter']}, skipped {one['skipped']}; "
                f"in cycles of {CYCLE_EVENTS}: {cycles['flagged']}/{cycles['scored']} "
                f"({cycles['rate']:.2%})"
            )
        print(
            f"  threshold rule, flag rate at {config.confidence}: {result['threshold_rule_ablation']}"
        )
        probes = result["injected"]
        print(
            "  probes at 0.995: unchanged {u}, value x100 {v} (named value_1: {vn}), "
            "hour of silence {s} (named timing: {sn})".format(
                u=_rate(probes["unchanged"]),  # type: ignore[index]
                v=_rate(probes["value_x100"]),  # type: ignore[index]
                vn=_rate(probes["value_x100_named_value_1"]),  # type: ignore[index]
                s=_rate(probes["hour_of_silence"]),  # type: ignore[index]
                sn=_rate(probes["hour_of_silence_named_timing"]),  # type: ignore[index]
            )
        )
    out = ROOT / "benchmarks" / "results" / "parameters.json"
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"wrote {out}")
    return 0


def _rate(figures: dict[str, object]) -> str:
    if not figures.get("probes"):
        return "-"
    return f"{figures['flagged']}/{figures['probes']} ({figures['rate']:.1%})"


if __name__ == "__main__":
    raise SystemExit(main())
