"""Fleet benchmark: incident recall and false alarms on a labelled Windows-security-like fleet,
measured through the product's own commands, as a user would run them.

    ./scripts/bench.sh fleet [--seed N] [--preset small|issue16] [--models deeplog,...]
                             [--json] [--no-write]

1. benchmarks/fleet_data.py writes train.jsonl (the history) and test.jsonl (the test period
   with injected, labelled incidents) to a temporary directory.
2. Each model is trained once with `python -m sidecar train --from-file train.jsonl
   --model-dir DIR` (SIDECAR_MODELS=<model>), into one model directory.
3. Each model set is scored with `python -m sidecar score --from-file test.jsonl --to-file
   anomalies.jsonl --model-dir DIR` (SIDECAR_MODELS=<set>): every model alone, the
   combination of them all, and the product's default set (SIDECAR_MODELS unset). When `score`
   has an `--incidents-file` option, its incident documents are evaluated; otherwise one host's
   anomaly documents at most 10 minutes apart form a "proxy incident".
4. Metrics per model set: incident recall by kind and overall, false incidents per host-day
   of the test period, annotations (anomaly documents) per 10,000 normal test events, and the
   seconds the train and score commands took.

Other SIDECAR_* variables in the environment reach the commands unchanged (e.g. a budget or a
threshold setting to try); SIDECAR_MODELS and SIDECAR_MODEL_DIR are set here. See
docs/fleet-benchmark.md.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fleet_data import (
    INCIDENT_KINDS,
    MINUTE,
    FleetData,
    InjectedIncident,
    add_arguments,
    config_from_args,
    write_fleet,
)

RESULTS = ROOT / "benchmarks" / "results" / "fleet.json"
# The checkout whose `python -m sidecar` is measured: this one unless --sidecar-root names
# another (e.g. a worktree of an older commit, for a "before" figure).
PRODUCT = {"root": ROOT}
# How `train` is launched: the product's command, or (`--training-rule sweep`, the "before"
# figures of issue 16) the same command with the training loop the product had before it.
TRAIN_LAUNCHER = {"product": ["-m", "sidecar"], "sweep": ["-m", "benchmarks.sweep_training"]}
PROXY_GAP_MS = 10 * MINUTE
SPAN_KINDS = ("host_quiet", "beacon")  # found by time overlap too, not only by log_uuid
TARGETS = {
    "recall": 0.95,
    "recall_each_kind": 0.8,
    "false_incidents_per_host_day": 0.2,
    "annotations_per_10k_normal": 20.0,
}
KIND_SHORT = {
    "brute_force": "brute",
    "unseen_event": "unseen",
    "wrong_order": "order",
    "beacon": "beacon",
    "host_quiet": "quiet",
    "event_storm": "storm",
}


# -- running the product ---------------------------------------------------------------------


def _env(models: list[str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PRODUCT["root"]) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.pop("SIDECAR_MODEL_DIR", None)
    if models is None:
        env.pop("SIDECAR_MODELS", None)  # the product's default set
    else:
        env["SIDECAR_MODELS"] = ",".join(models)
    env.setdefault("SIDECAR_LOG_FORMAT", "json")
    return env


def _sidecar(
    args: list[str], models: list[str] | None, log_path: Path, launcher: str = "product"
) -> tuple[str, float, float]:
    """Runs `python -m sidecar ARGS`; returns (stdout, seconds, peak RSS in MiB). stderr goes
    to log_path, stdout to a file beside it (a pipe nobody reads while it runs could fill)."""
    command = [sys.executable, *TRAIN_LAUNCHER[launcher], *args]
    out_path = log_path.with_suffix(".out")
    started = time.perf_counter()
    with log_path.open("wb") as log, out_path.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=PRODUCT["root"], env=_env(models), stdout=out, stderr=log
        )
        _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    process.returncode = returncode
    if returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} failed with exit {returncode}:\n{tail}")
    return out_path.read_text(errors="replace"), seconds, usage.ru_maxrss / 1024


def score_has_incidents_file() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", "score", "--help"],
        cwd=PRODUCT["root"],
        env=_env(None),
        capture_output=True,
        check=False,
    ).stdout.decode(errors="replace")
    return "--incidents-file" in out


def default_models() -> list[str]:
    """SIDECAR_MODELS when unset, as the product reads it."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sidecar.app.settings import Settings; print(','.join(Settings().models))",
        ],
        cwd=PRODUCT["root"],
        env=_env(None),
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [m for m in out.strip().split(",") if m]


@dataclass(slots=True)
class Trained:
    model: str
    seconds: float
    epochs: int | None = None
    distinct_windows: int | None = None
    version: str | None = None
    fit_seconds: float | None = None  # the training loop alone, as the manifest records it
    peak_rss_mib: float | None = None


def train(
    model: str,
    data: FleetData,
    model_dir: Path,
    work: Path,
    epochs: int | None = None,
    rule: str = "product",
) -> Trained:
    extra = ["--epochs", str(epochs)] if epochs is not None else []
    stdout, seconds, rss = _sidecar(
        ["train", "--from-file", str(data.train_path), "--model-dir", str(model_dir), *extra],
        [model],
        work / f"train-{model}.log",
        rule,
    )
    trained = Trained(model, seconds, peak_rss_mib=round(rss, 1))
    try:
        result = json.loads(stdout)
        training = (result.get("training") or {}) if isinstance(result, dict) else {}
        summary = training.get("summary", training) if isinstance(training, dict) else {}
        trained.version = result.get("version")
        trained.epochs = summary.get("epochs_run")
        trained.distinct_windows = summary.get("distinct_windows")
        trained.fit_seconds = summary.get("seconds")
    except (ValueError, AttributeError):
        pass
    return trained


# -- incidents -------------------------------------------------------------------------------


@dataclass(slots=True)
class Reported:
    host: str
    first_ms: int
    last_ms: int
    log_uuids: set[str] = field(default_factory=set)
    documents: int = 0


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open("rb") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _ms(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    return None


def _find(doc: dict, paths: tuple[str, ...]) -> object:
    for path in paths:
        value: object = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return value
    return None


def proxy_incidents(anomalies: list[dict]) -> list[Reported]:
    """One host's anomaly documents whose @timestamps are at most 10 minutes apart."""
    by_host: dict[str, list[dict]] = defaultdict(list)
    for doc in anomalies:
        by_host[str(doc["host"]).lower()].append(doc)
    incidents: list[Reported] = []
    for host, docs in sorted(by_host.items()):
        docs.sort(key=lambda d: _ms(d["@timestamp"]) or 0)
        current: Reported | None = None
        for doc in docs:
            t = _ms(doc["@timestamp"]) or 0
            if current is None or t - current.last_ms > PROXY_GAP_MS:
                current = Reported(host, t, t)
                incidents.append(current)
            current.last_ms = t
            current.log_uuids.add(str(doc["log_uuid"]))
            current.documents += 1
    return incidents


def product_incidents(documents: list[dict]) -> list[Reported]:
    """The product's incident documents (`score --incidents-file`), read leniently: the host,
    the first and last event times and the member log_uuids under the names they may have."""
    incidents: list[Reported] = []
    for doc in documents:
        host = _find(doc, ("host", "host.name", "hostname"))
        if isinstance(host, dict):
            host = host.get("name")
        first = _ms(
            _find(
                doc,
                (
                    "first_event_ms",
                    "first_ms",
                    "first_event_at",
                    "first_event",
                    "first",
                    "start_ms",
                    "start",
                    "events.first",
                    "time.first",
                    "@timestamp",
                ),
            )
        )
        last = _ms(
            _find(
                doc,
                (
                    "last_event_ms",
                    "last_ms",
                    "last_event_at",
                    "last_event",
                    "last",
                    "end_ms",
                    "end",
                    "events.last",
                    "time.last",
                ),
            )
        )
        uuids = _find(
            doc,
            (
                "log_uuids",
                "member_log_uuids",
                "members.log_uuids",
                "events.log_uuids",
                "member_log_uuid",
            ),
        )
        if host is None or first is None:
            raise SystemExit(f"cannot read host/first event time of incident document {doc!r:.300}")
        incidents.append(
            Reported(
                str(host).lower(),
                first,
                last if last is not None else first,
                {str(u) for u in uuids} if isinstance(uuids, list) else set(),
                documents=int(_find(doc, ("event_count", "events.count", "count")) or 0),
            )
        )
    return incidents


# -- metrics ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Evaluation:
    found: dict[int, bool]
    recall: float
    recall_by_log_uuid: float
    recall_by_kind: dict[str, dict[str, float]]
    recall_by_variant: dict[str, dict[str, int]]
    reported_incidents: int
    false_incidents: int
    false_incidents_per_host_day: float
    anomaly_documents: int
    annotations_normal: int
    annotations_per_10k_normal: float
    flagged_normal_events_per_10k: float
    documents_per_incident_kind: dict[str, int]


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 <= b1 and b0 <= a1


def evaluate(data: FleetData, anomalies: list[dict], reported: list[Reported]) -> Evaluation:
    injected = {u: i for i in data.incidents for u in i.log_uuids}
    by_host: dict[str, list[Reported]] = defaultdict(list)
    for r in reported:
        by_host[r.host].append(r)
    found: dict[int, bool] = {}
    strict: dict[int, bool] = {}  # by log_uuid only, whatever the kind
    for incident in data.incidents:
        mine = by_host.get(incident.host, [])
        strict[incident.id] = any(r.log_uuids.intersection(incident.log_uuids) for r in mine)
        found[incident.id] = strict[incident.id] or (
            incident.kind in SPAN_KINDS
            and any(
                _overlaps(r.first_ms, r.last_ms, incident.start_ms, incident.end_ms) for r in mine
            )
        )
    spans: dict[str, list[InjectedIncident]] = defaultdict(list)
    for incident in data.incidents:
        spans[incident.host].append(incident)
    false = 0
    for r in reported:
        if r.log_uuids.intersection(injected):
            continue
        if any(_overlaps(r.first_ms, r.last_ms, i.start_ms, i.end_ms) for i in spans[r.host]):
            continue
        false += 1
    by_kind: dict[str, dict[str, float]] = {}
    by_variant: dict[str, dict[str, int]] = defaultdict(lambda: {"found": 0, "total": 0})
    for kind in INCIDENT_KINDS:
        ids = [i for i in data.incidents if i.kind == kind]
        hits = sum(found[i.id] for i in ids)
        by_kind[kind] = {
            "found": hits,
            "total": len(ids),
            "recall": hits / len(ids) if ids else 0.0,
            "found_by_log_uuid": sum(strict[i.id] for i in ids),
        }
        for i in ids:
            entry = by_variant[f"{kind}/{i.variant}"]
            entry["total"] += 1
            entry["found"] += int(found[i.id])
    normal_docs = [d for d in anomalies if str(d["log_uuid"]) not in injected]
    kinds_docs = Counter(
        injected[str(d["log_uuid"])].kind for d in anomalies if str(d["log_uuid"]) in injected
    )
    host_days = len(data.hosts) * data.config.test_hours / 24
    per10k = 10_000 / max(1, data.normal_test_events)
    return Evaluation(
        found=found,
        recall=sum(found.values()) / max(1, len(found)),
        recall_by_log_uuid=sum(strict.values()) / max(1, len(strict)),
        recall_by_kind=by_kind,
        recall_by_variant=dict(sorted(by_variant.items())),
        reported_incidents=len(reported),
        false_incidents=false,
        false_incidents_per_host_day=false / host_days,
        anomaly_documents=len(anomalies),
        annotations_normal=len(normal_docs),
        annotations_per_10k_normal=len(normal_docs) * per10k,
        flagged_normal_events_per_10k=len({str(d["log_uuid"]) for d in normal_docs}) * per10k,
        documents_per_incident_kind=dict(kinds_docs),
    )


@dataclass(slots=True)
class SetResult:
    label: str
    models: list[str]
    train_seconds: float
    score_seconds: float
    incidents_source: str
    evaluation: Evaluation
    score_summary: dict = field(default_factory=dict)


def score(
    label: str,
    models: list[str] | None,
    resolved: list[str],
    data: FleetData,
    model_dir: Path,
    work: Path,
    trained: dict[str, Trained],
    incidents_option: bool,
) -> SetResult:
    out = work / f"anomalies-{label}.jsonl"
    args = ["score", "--from-file", str(data.test_path), "--to-file", str(out)]
    incidents_path = work / f"incidents-{label}.jsonl"
    if incidents_option:
        args += ["--incidents-file", str(incidents_path)]
    stdout, seconds, _rss = _sidecar(
        [*args, "--model-dir", str(model_dir)], models, work / f"score-{label}.log"
    )
    try:
        summary = json.loads(stdout)
    except ValueError:
        summary = {}
    anomalies = _read_jsonl(out)
    if incidents_option:
        reported, source = product_incidents(_read_jsonl(incidents_path)), "product"
    else:
        reported, source = proxy_incidents(anomalies), "proxy"
    return SetResult(
        label=label,
        models=resolved,
        train_seconds=sum(trained[m].seconds for m in resolved),
        score_seconds=seconds,
        incidents_source=source,
        evaluation=evaluate(data, anomalies, reported),
        score_summary=summary if isinstance(summary, dict) else {},
    )


# -- report ----------------------------------------------------------------------------------


def _kind_cell(entry: dict[str, float]) -> str:
    return f"{int(entry['found'])}/{int(entry['total'])}"


def table(results: list[SetResult], data: FleetData, source: str, meta: dict) -> str:
    config = data.config
    n = Counter(i.kind for i in data.incidents)
    lines = [
        f"fleet benchmark: preset {meta['preset']}, seed {config.seed}; {len(data.hosts)} hosts, "
        f"{config.days} days of history ({data.train_events:,} events, {len(data.training_keys)} keys), "
        f"test {config.test_hours} h ({data.test_events:,} events, {data.normal_test_events:,} normal, "
        f"{len(data.incidents)} incidents: {', '.join(f'{n[k]} {k}' for k in INCIDENT_KINDS)})",
        "incidents: "
        + (
            "the product's incident documents (score --incidents-file)"
            if source == "product"
            else "proxy incidents (one host's anomaly documents <= 10 min apart; "
            "score has no --incidents-file)"
        ),
    ]
    kinds = "".join(f"{KIND_SHORT[k]:>8}" for k in INCIDENT_KINDS)
    head = f"{'model set':<30}{'recall':>7}{kinds}{'false/host-day':>16}{'annot/10k':>11}{'reported':>10}{'train s':>9}{'score s':>9}"
    lines += [head, "-" * len(head)]
    for r in results:
        e = r.evaluation
        cells = "".join(f"{_kind_cell(e.recall_by_kind[k]):>8}" for k in INCIDENT_KINDS)
        lines.append(
            f"{r.label:<30}{e.recall:>7.2f}{cells}{e.false_incidents_per_host_day:>16.2f}"
            f"{e.annotations_per_10k_normal:>11.1f}{e.reported_incidents:>10}"
            f"{r.train_seconds:>9.0f}{r.score_seconds:>9.0f}"
        )
    target_cells = "".join(f"{'>=0.8':>8}" for _ in INCIDENT_KINDS)
    lines.append(f"{'target (issue 17)':<30}{'>=0.95':>7}{target_cells}{'<=0.2':>16}{'<=20':>11}")
    lines.append(
        "recall: injected incidents found (a reported incident on the host holds one of its "
        "log_uuids; beacon and host_quiet also by time overlap); false: reported incidents with "
        "no injected event and no overlap with an injected span, per host-day of the test "
        "period; annot/10k: anomaly documents on normal events per 10,000 normal events."
    )
    lines.append(
        "beacon and host_quiet found by log_uuid alone (a beacon event, or the first event after "
        "the silence, inside a reported incident):"
    )
    for r in results:
        k = r.evaluation.recall_by_kind
        lines.append(
            f"  {r.label}: beacon {int(k['beacon']['found_by_log_uuid'])}/{int(k['beacon']['total'])}, "
            f"host_quiet {int(k['host_quiet']['found_by_log_uuid'])}/{int(k['host_quiet']['total'])}; "
            f"overall recall {r.evaluation.recall_by_log_uuid:.2f}"
        )
    misses = []
    for r in results:
        missed = [
            f"{name} {v['found']}/{v['total']}"
            for name, v in r.evaluation.recall_by_variant.items()
            if v["found"] < v["total"]
        ]
        if missed:
            misses.append(f"  {r.label}: " + ", ".join(missed))
    if misses:
        lines.append("found/total by variant where something was missed:")
        lines += misses
    return "\n".join(lines)


def write_results(key: str, run: dict) -> None:
    """Adds or replaces one run in the results file, keeping the others (locked: two runs may
    finish at once)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        try:
            existing = json.loads(handle.read() or "{}")
        except ValueError:
            existing = {}
        runs = existing.get("runs", {}) if isinstance(existing, dict) else {}
        runs[key] = run
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"runs": dict(sorted(runs.items()))}, indent=1) + "\n")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PRODUCT["root"],
            capture_output=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sidecar"],
            cwd=PRODUCT["root"],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.decode().strip() + ("+dirty" if dirty.stdout.strip() else "")


def _active_manifest(model_dir: Path, model: str) -> dict:
    version = (model_dir / model / "LATEST").read_text().strip()
    try:
        return json.loads((model_dir / model / version / "manifest.json").read_text())
    except (OSError, ValueError):
        return {"version": version}


def _label(models: list[str]) -> str:
    return "+".join(models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument(
        "--models",
        default="deeplog,loganomaly",
        help="models to train and score alone; their combination and the default set are scored too",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON, not a table"
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"do not update {RESULTS.relative_to(ROOT)}"
    )
    parser.add_argument(
        "--label", default="current", help="names this run in the results file (e.g. before, after)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="passed to `sidecar train --epochs` (default: the product's own, SIDECAR_TRAIN_EPOCHS)",
    )
    parser.add_argument(
        "--training-rule",
        choices=sorted(TRAIN_LAUNCHER),
        default="product",
        help="product: train as shipped; sweep: the loop before issue 16 (every distinct window "
        "each epoch, stop on the training loss, patience 10), for labelled before figures",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep DIR of an earlier run of the same data: score the models already "
        "trained there instead of training them again (train s shows as nan)",
    )
    parser.add_argument(
        "--no-default-set",
        action="store_true",
        help="score only --models (alone and together), not also the product's default set",
    )
    parser.add_argument(
        "--sidecar-root",
        type=Path,
        help="measure the product in this checkout (e.g. a worktree of an older commit)",
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the data, models and outputs in this directory"
    )
    args = parser.parse_args(argv)
    if args.sidecar_root is not None:
        PRODUCT["root"] = args.sidecar_root.resolve()
    config = config_from_args(args)
    singles = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    say = (
        (lambda *a: print(*a, file=sys.stderr, flush=True))
        if args.json
        else (lambda *a: print(*a, flush=True))
    )
    try:
        data = write_fleet(config, work / "data")
        say(
            f"generated {data.train_events:,} training and {data.test_events:,} test events "
            f"in {data.seconds:.0f} s ({work / 'data'})"
        )
        incidents_option = score_has_incidents_file()
        defaults = default_models()
        sets: list[tuple[str, list[str] | None, list[str]]] = [(m, [m], [m]) for m in singles]
        if len(singles) > 1:
            sets.append((_label(singles), singles, singles))
        labels = {tuple(s[2]) for s in sets}
        if tuple(defaults) in labels:
            alias = next(s for s in sets if tuple(s[2]) == tuple(defaults))
            sets = [(f"{s[0]} (= default)" if s is alias else s[0], s[1], s[2]) for s in sets]
        elif not args.no_default_set:
            sets.append((f"default ({_label(defaults)})", None, defaults))
        model_dir = work / "models"
        trained: dict[str, Trained] = {}
        for model in dict.fromkeys(m for s in sets for m in s[2]):
            if args.reuse and (model_dir / model / "LATEST").exists():
                manifest = _active_manifest(model_dir, model)
                summary = manifest.get("training") or {}
                trained[model] = Trained(
                    model,
                    float("nan"),
                    summary.get("epochs_run"),
                    summary.get("distinct_windows"),
                    manifest.get("version"),
                )
                say(f"reusing {model} {manifest.get('version')} from {model_dir} (not trained)")
                continue
            say(f"training {model} ...")
            trained[model] = train(model, data, model_dir, work, args.epochs, args.training_rule)
            t = trained[model]
            say(
                f"  {model}: {t.seconds:.0f} s in all, {t.fit_seconds} s training loop, "
                f"{t.epochs} epochs, {t.distinct_windows} distinct windows, "
                f"peak RSS {t.peak_rss_mib} MiB"
            )
        results: list[SetResult] = []
        for label, models, resolved in sets:
            say(f"scoring {label} ...")
            result = score(
                label.split(" ")[0] if models is not None else "default",
                models,
                resolved,
                data,
                model_dir,
                work,
                trained,
                incidents_option,
            )
            result.label = label
            results.append(result)
        source = results[0].incidents_source if results else "proxy"
        meta = {
            "preset": args.preset,
            "label": args.label,
            "seed": config.seed,
            "commit": _git_commit(),
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            "incidents": source,
            "train_epochs_option": args.epochs,
            "training_rule": args.training_rule,
            "reused_models": bool(args.reuse),
            "seconds_total": None,
        }
        meta["seconds_total"] = round(time.perf_counter() - started, 1)
        report = {
            **meta,
            "data": data.summary(),
            "trained": {m: asdict(t) for m, t in trained.items()},
            "targets": TARGETS,
            "sets": [
                {
                    "label": r.label,
                    "models": r.models,
                    "train_seconds": round(r.train_seconds, 1),
                    "score_seconds": round(r.score_seconds, 1),
                    "incidents_source": r.incidents_source,
                    **{
                        k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in asdict(r.evaluation).items()
                        if k != "found"
                    },
                    "missed": [
                        {
                            "kind": i.kind,
                            "variant": i.variant,
                            "host": i.host,
                            "description": i.description,
                        }
                        for i in data.incidents
                        if not r.evaluation.found[i.id]
                    ],
                }
                for r in results
            ],
        }
        text = table(results, data, source, meta)
        if args.json:
            print(json.dumps(report, indent=1))
        else:
            print()
            print(text)
            print(f"\ntotal {meta['seconds_total']:.0f} s")
        if not args.no_write:
            write_results(
                f"{args.preset}/seed-{config.seed}/{args.label}",
                {**report, "table": text.split("\n")},
            )
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
