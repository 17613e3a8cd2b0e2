"""Detectors per HDFS block on real raw lines (../shared/data/hdfs-raw), through the product's own
commands exactly as a user runs them.

Each raw line becomes one seed-shaped document per block id it names (HOSTNAME = the block, no
EVENTID: the sidecar mines templates from MESSAGE), so a block is a host. Blocks are ordered by
their first line; the earliest half is the training part and only its normal blocks are trained
on; the later half, whatever the labels, is the test set. For each configuration (each model
alone, then all of them in one SIDECAR_MODELS list) it runs, in a temporary directory:

    python -m sidecar train --from-file train.jsonl --model-dir DIR
    python -m sidecar score --from-file test.jsonl --model-dir DIR --to-file anomalies.jsonl

with the product's default settings (no SIDECAR_* variable but SIDECAR_MODELS). A block is
flagged when any of its events has an annotation in anomalies.jsonl (`host` is the block,
`model.name` the detector). Per detector: blocks flagged, recall on the anomalous test blocks,
false positives and FPR on the normal ones, annotations written, and the score command's wall
seconds and test events/s (process start included); for the combination, each model inside it
and their union, and the anomalous blocks only one model catches.

Part two (benchmarks/content_injection.py) changes one line's text in each of 100 normal test
blocks (a word replaced, a path replaced or a phrase appended) and scores that injected test
file with each configuration's model directory from part one:

    python -m sidecar score --from-file test-injected.jsonl --model-dir DIR --to-file ...

reporting the injected blocks each detector catches per kind and its false positives on the
untouched normal blocks. Both tables go to stdout, the JSON results to --out and a markdown
document to --write-doc (neither with --no-write).

    ./scripts/bench.sh content                                  # deeplog, loganomaly, content
    ./scripts/bench.sh content --models deeplog,loganomaly --no-write
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import content_injection as inj
from content_report import (
    block_figures,
    document,
    markdown,
    new_templates,
    only_one_catches,
    part_counts,
)
from hdfs_raw_data import (
    LABEL_FILE,
    LOG_FILE,
    blocks_with_unseen_tokens,
    documents,
    lines_by_block,
    read_labels,
    read_lines,
    split_blocks,
    write_jsonl,
)

from sidecar.app.settings import Settings

DATA = ROOT.parent / "shared" / "data" / "hdfs-raw"
# The defaults that decide verdicts, recorded with the results (the runs set none of them).
DEFAULTS_SHOWN = (
    "template_mining",
    "verdict_rule",
    "alert_budget",
    "top_g",
    "min_probability",
    "window_size",
    "train_epochs",
    "incident_event_docs",
    "device",
)


def sidecar_env(models: list[str]) -> dict[str, str]:
    """The caller's environment without any SIDECAR_* variable, so the product's defaults hold
    whatever the shell exports, plus the model list."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env["PYTHONPATH"] = str(ROOT) + (f":{env['PYTHONPATH']}" if env.get("PYTHONPATH") else "")
    env["SIDECAR_MODELS"] = ",".join(models)
    return env


def sidecar(args: list[str], env: dict[str, str], log: Path) -> tuple[int, object, float]:
    """Runs `python -m sidecar ARGS`; returns the exit code, its printed JSON (None if none)
    and the wall seconds, process start included. Its log (stderr) goes to `log`."""
    started = time.perf_counter()
    with log.open("wb") as err:
        done = subprocess.run(
            [sys.executable, "-m", "sidecar", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            check=False,
        )
    seconds = time.perf_counter() - started
    try:
        printed = orjson.loads(done.stdout) if done.stdout.strip() else None
    except orjson.JSONDecodeError:
        printed = done.stdout.decode(errors="replace")[-2000:]
    return done.returncode, printed, seconds


def log_tail(log: Path, chars: int = 1500) -> str:
    return log.read_text(errors="replace")[-chars:]


def digest(model_dir: Path) -> str:
    """One hash over every file of a model directory (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(model_dir)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def miner_templates(model_dir: Path) -> tuple[list[str], set[str]]:
    """The templates `train` mined (saved beside the models) and every id that leads to one."""
    path = model_dir / "template-miner.json"
    if not path.exists():
        return [], set()
    state = orjson.loads(path.read_bytes())
    texts = []
    for cluster in state["clusters"]:
        tokens, seps = cluster["tokens"], cluster["seps"]
        if len(seps) == len(tokens) + 1:
            texts.append("".join(s + t for s, t in zip(seps, tokens, strict=False)) + seps[-1])
        else:
            texts.append(" ".join(tokens))
    ids = {str(c["id"]) for c in state["clusters"]} | set(state.get("aliases") or {})
    return sorted(texts), ids


def run_configuration(
    name: str,
    models: list[str],
    train_file: Path,
    test_file: Path,
    test: list[str],
    anomalous: dict[str, bool],
    test_events: int,
    workdir: Path,
) -> dict[str, object]:
    here = workdir / name
    model_dir = here / "models"
    here.mkdir(parents=True)
    env = sidecar_env(models)
    result: dict[str, object] = {"models": models, "ok": False}
    code, printed, seconds = sidecar(
        ["train", "--from-file", str(train_file), "--model-dir", str(model_dir)],
        env,
        here / "train.log",
    )
    trained = printed if isinstance(printed, list) else [printed]
    result["train"] = {
        "exit_code": code,
        "seconds": round(seconds, 2),
        "models": {
            t["model"]: {"keys": t.get("keys"), "training": t.get("training")}
            for t in trained
            if isinstance(t, dict)
        },
    }
    if code != 0:
        result["train"]["log_tail"] = log_tail(here / "train.log")  # type: ignore[index]
        return result
    result["model_dir_digest"] = digest(model_dir)
    templates, template_ids = miner_templates(model_dir)
    result["templates_mined"] = len(templates)
    result["templates"] = templates
    out = here / "anomalies.jsonl"
    code, printed, seconds = sidecar(
        [
            "score",
            "--from-file",
            str(test_file),
            "--model-dir",
            str(model_dir),
            "--to-file",
            str(out),
        ],
        env,
        here / "score.log",
    )
    result["score"] = {
        "exit_code": code,
        "seconds": round(seconds, 2),
        "events_per_second": round(test_events / seconds),
        "summary": printed,
    }
    if code != 0:
        result["score"]["log_tail"] = log_tail(here / "score.log")  # type: ignore[index]
        return result
    flagged: dict[str, set[str]] = {m: set() for m in models}
    written: Counter[str] = Counter()
    keys_flagged: set[str] = set()
    for line in out.read_bytes().splitlines():
        if not line.strip():
            continue
        doc = orjson.loads(line)
        model = str(doc["model"]["name"])
        flagged.setdefault(model, set()).add(str(doc["host"]))
        written[model] += 1
        keys_flagged.add(str(doc["event"]["id"]))
    detectors = {m: block_figures(flagged[m], test, anomalous, written[m]) for m in flagged}
    if len(models) > 1:
        union = set().union(*flagged.values())
        detectors[inj.UNION] = block_figures(union, test, anomalous, sum(written.values()))
    result["detectors"] = detectors
    result["flagged_anomalous"] = {
        m: sorted(b for b in blocks if anomalous.get(b)) for m, blocks in flagged.items()
    }
    result["event_ids_in_annotations"] = len(keys_flagged)
    # Ids the score run's miner gave that training never saw: templates new in the test set.
    result["event_ids_unseen_in_training"] = len(
        {k for k in keys_flagged if k.removeprefix("T-") not in template_ids}
    )
    result["ok"] = True
    return result


def score_injected(
    part_one: dict[str, object],
    injected_file: Path,
    injections: list[inj.Injection],
    test: list[str],
    anomalous: dict[str, bool],
    here: Path,
) -> dict[str, object]:
    """Part two for one configuration: its part-one model directory scores the injected file."""
    models: list[str] = part_one["models"]  # type: ignore[assignment]
    model_dir = here / "models"
    unchanged = digest(model_dir) == part_one["model_dir_digest"]
    out = here / "anomalies-injected.jsonl"
    code, printed, seconds = sidecar(
        ["score", "--from-file", str(injected_file), "--model-dir", str(model_dir)]
        + ["--to-file", str(out)],
        sidecar_env(models),
        here / "score-injected.log",
    )
    result: dict[str, object] = {
        "ok": code == 0,
        "exit_code": code,
        "seconds": round(seconds, 2),
        "model_dir_unchanged_since_train": unchanged,
        "summary": printed,
        "new_templates": new_templates({"score": {"summary": printed}}),
        "new_templates_part_one": new_templates(part_one),
    }
    if code != 0:
        result["log_tail"] = log_tail(here / "score-injected.log")
        return result
    _, template_ids = miner_templates(model_dir)
    return result | inj.analyse(out, models, injections, test, anomalous, template_ids)


def run(args: argparse.Namespace) -> dict[str, object]:
    load_start = os.getloadavg()
    started = time.perf_counter()
    data = Path(args.data)
    raw = read_lines(data / LOG_FILE)
    anomalous = read_labels(data / LABEL_FILE)
    by_block = lines_by_block(raw)
    split = split_blocks(by_block, anomalous)
    parts = {
        "training part": part_counts(split.training_part, by_block, anomalous),
        "trained on": part_counts(split.train, by_block, anomalous),
        "test": part_counts(split.test, by_block, anomalous),
    }
    for name, p in parts.items():
        print(
            f"{name}: {p['blocks']} blocks, {p['events']} events, "
            f"{p['anomalous_blocks']} anomalous blocks",
            flush=True,
        )
    test_blocks = set(split.test)
    visible = blocks_with_unseen_tokens(by_block, split.train, split.test)
    words = inj.unseen_words((data / LOG_FILE).read_text(encoding="utf-8"))
    injections = inj.choose(by_block, split.test, anomalous, words)
    replaced = inj.replacements(injections)
    visible_in_text = {
        "anomalous": sum(anomalous[b] for b in visible),
        "normal": sum(not anomalous[b] for b in visible),
        "injected": len(
            blocks_with_unseen_tokens(
                by_block, split.train, [i.block for i in injections], replaced
            )
        ),
    }
    print(f"test blocks with a token unseen in training: {visible_in_text}", flush=True)
    configurations = {m: [m] for m in args.models}
    if len(args.models) > 1:
        configurations["combined"] = list(args.models)
    runs: dict[str, dict[str, object]] = {}
    injected: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="content-bench-") as tmp:
        workdir = Path(args.keep_dir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        train_file, test_file = workdir / "train.jsonl", workdir / "test.jsonl"
        write_jsonl(train_file, documents(raw, set(split.train)))
        test_events = write_jsonl(test_file, documents(raw, test_blocks))
        injected_file = workdir / "test-injected.jsonl"
        write_jsonl(injected_file, documents(raw, test_blocks, replaced))
        for name, models in configurations.items():
            print(f"{name}: SIDECAR_MODELS={','.join(models)} ...", flush=True)
            runs[name] = run_configuration(
                name, models, train_file, test_file, split.test, anomalous, test_events, workdir
            )
            r = runs[name]
            status = "ok" if r["ok"] else "FAILED"
            print(f"  {status}: train {r['train']['seconds']} s", flush=True)  # type: ignore[index]
            if not r["ok"]:
                failed = r.get("score") or r["train"]
                print(failed.get("log_tail", ""), file=sys.stderr)  # type: ignore[union-attr]
                continue
            injected[name] = score_injected(
                r, injected_file, injections, split.test, anomalous, workdir / name
            )
            print(f"  injected test set: score {injected[name]['seconds']} s", flush=True)
    results: dict[str, object] = {
        "data": str(data),
        "settings": {
            "sidecar_env": {
                k: v for k, v in sidecar_env(args.models).items() if k.startswith("SIDECAR_")
            }
            | {"PYTHONPATH": str(ROOT)},
            "the_rest_product_defaults": {
                k: Settings.model_fields[k].default for k in DEFAULTS_SHOWN
            },
            "models_alone_and_combined": configurations,
            "split": "blocks by first line; earliest 50% = training part, its normal blocks "
            "trained on; later 50% = test",
        },
        "split": parts,
        "visible_in_text": visible_in_text,
        "runs": runs,
        "injection": {
            "seed": inj.SEED,
            "words": words,
            "counts": dict(Counter(i.kind for i in injections)),
            "model_dirs": "each configuration's part-one model directory, scored again",
            "runs": injected,
        },
    }
    combined = runs.get("combined")
    if combined and combined["ok"]:
        results["only_one_catches"] = only_one_catches(combined, split.test, anomalous)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average"] = {"start": load_start, "end": os.getloadavg()}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--models", default="deeplog,loganomaly,content")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "content.json"))
    parser.add_argument("--write-doc", default=str(ROOT / "docs" / "content-benchmark.md"))
    parser.add_argument("--no-write", action="store_true", help="write neither --out nor the doc")
    parser.add_argument(
        "--keep-dir", help="work in this (new or empty) directory and keep its files"
    )
    arguments = sys.argv[1:]
    args = parser.parse_args()
    args.models = list(dict.fromkeys(m.strip() for m in args.models.split(",") if m.strip()))
    results = run(args)
    results["arguments"] = " ".join(a for a in arguments if a != "--no-write")
    print()
    print(markdown(results))
    print("\nPart two: injected token variations on real lines (not labelled data)\n")
    print(inj.markdown(results["injection"]))  # type: ignore[arg-type]
    print(f"\n{results['seconds']} s in all; load average {results['load_average']}")
    if not args.no_write:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.out}")
        Path(args.write_doc).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write_doc).write_text(document(results), encoding="utf-8")
        print(f"wrote {args.write_doc}")
    runs = [*results["runs"].values(), *results["injection"]["runs"].values()]  # type: ignore[union-attr,index]
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
