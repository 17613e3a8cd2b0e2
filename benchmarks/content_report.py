"""The tables and the markdown document of benchmarks/content.py (docs/content-benchmark.md)."""

from __future__ import annotations

import content_injection as inj
from hdfs_raw_data import RawLine


def block_figures(
    flagged: set[str], test: list[str], anomalous: dict[str, bool], annotations: int
) -> dict[str, object]:
    bad = [b for b in test if anomalous[b]]
    good = [b for b in test if not anomalous[b]]
    caught = sum(b in flagged for b in bad)
    false_positives = sum(b in flagged for b in good)
    return {
        "blocks_flagged": len(flagged),
        "recall": f"{caught}/{len(bad)}",
        "recall_rate": round(caught / len(bad), 4) if bad else None,
        "false_positives": false_positives,
        "normal_blocks": len(good),
        "fpr": round(false_positives / len(good), 4) if good else None,
        "annotations": annotations,
    }


def only_one_catches(
    combined: dict[str, object], test: list[str], anomalous: dict[str, bool]
) -> dict[str, object]:
    """In the combined run: the anomalous blocks each model alone flagged, and those none did."""
    caught: dict[str, set[str]] = {m: set(b) for m, b in combined["flagged_anomalous"].items()}  # type: ignore[union-attr]
    only = {
        m: sorted(blocks - set().union(*(b for n, b in caught.items() if n != m)))
        for m, blocks in caught.items()
    }
    everyone = set().union(*caught.values()) if caught else set()
    missed = sorted(b for b in test if anomalous[b] and b not in everyone)
    return {"only": only, "missed_by_all": missed}


def part_counts(
    blocks: list[str], by_block: dict[str, list[RawLine]], anomalous: dict[str, bool]
) -> dict[str, int]:
    return {
        "blocks": len(blocks),
        "events": sum(len(by_block[b]) for b in blocks),
        "anomalous_blocks": sum(anomalous[b] for b in blocks),
    }


def new_templates(run: dict[str, object]) -> object:
    summary = (run.get("score") or {}).get("summary")  # type: ignore[union-attr]
    if not isinstance(summary, dict):
        return "–"
    return (summary.get("template_mining") or {}).get("new_templates", "–")


def markdown(results: dict[str, object]) -> str:
    parts = results["split"]
    lines = [
        "| part | blocks | events | anomalous blocks |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {name} | {p['blocks']:,} | {p['events']:,} | {p['anomalous_blocks']} |"
        for name, p in parts.items()  # type: ignore[union-attr]
    ]
    lines += [
        "",
        "| run | detector | blocks flagged | recall | false positives (FPR) | annotations | "
        "train s (fit s) | score s | test events/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run, r in results["runs"].items():  # type: ignore[union-attr]
        train_s = r["train"]["seconds"]
        if not r["ok"]:
            failed = "score" if "score" in r else "train"
            lines.append(
                f"| {run} | {failed} failed (exit {r[failed]['exit_code']}) | | | | | {train_s} | | |"
            )
            continue
        score = r["score"]
        for detector, d in r["detectors"].items():
            rate = f"{d['recall_rate']:.1%}" if d["recall_rate"] is not None else "–"
            fpr = f"{d['fpr']:.1%}" if d["fpr"] is not None else "–"
            fit = (r["train"]["models"].get(detector) or {}).get("training") or {}
            fit_s = f" ({fit['seconds']:.1f})" if "seconds" in fit else ""
            lines.append(
                f"| {run} | {detector} | {d['blocks_flagged']} | {d['recall']} = {rate} | "
                f"{d['false_positives']} ({fpr}) | {d['annotations']} | {train_s}{fit_s} | "
                f"{score['seconds']} | {score['events_per_second']:,} |"
            )
    runs = results["runs"].items()  # type: ignore[union-attr]
    lines += [
        "",
        "Train s and score s: each command's wall time, process start (some 3 s of imports) "
        "included; fit s: the model's own training time as `train` reports it. Test events/s: "
        "test events over score s. Templates mined in training: "
        + ", ".join(f"{run} {r.get('templates_mined', '–')}" for run, r in runs)
        + "; new templates met while scoring: "
        + ", ".join(f"{run} {new_templates(r)}" for run, r in runs)
        + ".",
    ]
    catches = results.get("only_one_catches")
    if catches:
        lines += ["", "In the combined run, anomalous test blocks only one model flags:", ""]
        for model, blocks in catches["only"].items():  # type: ignore[index]
            shown = ", ".join(blocks) if blocks else "none"
            lines.append(f"- {model}: {len(blocks)} ({shown})")
        missed = catches["missed_by_all"]  # type: ignore[index]
        lines.append(f"- flagged by none: {len(missed)} of {parts['test']['anomalous_blocks']}")  # type: ignore[index]
    return "\n".join(lines)


def _examples(injection: dict[str, object], per_kind: int = 3) -> list[str]:
    out: list[str] = []
    runs = [r for r in injection["runs"].values() if r.get("injected")]  # type: ignore[union-attr]
    if not runs:
        return out
    for kind in inj.KINDS:
        shown = [i for i in runs[0]["injected"] if i["kind"] == kind][:per_kind]
        for i in shown:
            out.append(f"- {kind}, line {i['line']}, block {i['block']}:")
            out.append(f"  `{i['original']}` →  ")
            out.append(f"  `{i['injected']}`")
    return out


def document(results: dict[str, object]) -> str:
    """Both tables with what they rest on: the split, what the labels can show in these lines,
    how the injection is made, the load and the commands."""
    parts = results["split"]
    visible = results["visible_in_text"]
    injection = results["injection"]
    models = results["settings"]["models_alone_and_combined"]  # type: ignore[index]
    load = results["load_average"]
    words = injection["words"]  # type: ignore[index]
    skipped = [w for w in inj.WORDS if w not in words]
    test = parts["test"]  # type: ignore[index]
    unchanged = all(
        r.get("model_dir_unchanged_since_train")
        for r in injection["runs"].values()  # type: ignore[union-attr,index]
    )
    commands = [
        f"./scripts/bench.sh content {results['arguments']}".rstrip(),
        "",
        "# what it runs per configuration, in a temporary directory:",
    ]
    for name, ms in models.items():  # type: ignore[union-attr]
        env = f"SIDECAR_MODELS={','.join(ms)}"
        commands += [
            f"# {name}",
            f"{env} python -m sidecar train --from-file train.jsonl --model-dir {name}/models",
            f"{env} python -m sidecar score --from-file test.jsonl --model-dir {name}/models "
            f"--to-file {name}/anomalies.jsonl",
            f"{env} python -m sidecar score --from-file test-injected.jsonl "
            f"--model-dir {name}/models --to-file {name}/anomalies-injected.jsonl",
        ]
    text = [
        "# Content detector benchmark: HDFS raw lines, per block",
        "",
        "Generated by `benchmarks/content.py`; do not edit by hand.",
        "",
        "What each detector flags on real HDFS lines (`../shared/data/hdfs-raw`, the first "
        "20,000 lines of the Loghub HDFS log with its block labels), run through the product's "
        "own `train` and `score` commands with the product's defaults (no `SIDECAR_*` variable "
        "but `SIDECAR_MODELS`). Each raw line becomes one document per block id it names "
        "(HOSTNAME = the block, no EVENTID: the sidecar mines templates from MESSAGE), so a "
        "block is a host. A block counts as flagged when any of its events is annotated.",
        "",
        "## Split",
        "",
        "Blocks in order of their first line: the earliest half is the training part, and only "
        "its normal blocks are trained on; the later half, whatever the labels, is the test set.",
        "",
        *markdown(results).split("\n\n")[0].split("\n"),
        "",
        "## Part one: the labelled anomalies",
        "",
        "The labels are per block, for the whole HDFS log; these 20,000 lines hold only the "
        "start of each block's life. Of the "
        f"{test['anomalous_blocks']} anomalous test blocks, {visible['anomalous']} have a line "  # type: ignore[index]
        "with a token (block ids and digit runs folded) that no training line has; of the "
        f"{test['blocks'] - test['anomalous_blocks']} normal test blocks, {visible['normal']}. "  # type: ignore[index]
        "Where that count is 0, whatever makes those blocks anomalous lies outside these lines "
        "as far as their text goes, and a content detector has nothing to see in them; the "
        "figures below are the honest result on the labels all the same.",
        "",
        *markdown(results).split("\n\n", 1)[1].split("\n"),
        "",
        "## Part two: injected token variations on real lines",
        "",
        f"Not labelled data: with seed {injection['seed']}, "  # type: ignore[index]
        f"{sum(injection['counts'].values())} distinct normal test blocks are drawn and one "  # type: ignore[index]
        "line of each block's document is changed (the same raw line in another block's "
        "document is left alone; every other block is untouched):",
        "",
        f"- {inj.WORD_REPLACED} ({inj.PER_KIND} blocks): on a line drawn from those with one, an "
        "alphabetic word of 3+ letters of the message content (not the component before the "
        "first `: `, not a block id) becomes an error/state word;",
        f"- of the other {inj.PER_KIND}: {inj.PATH_REPLACED} when the drawn line has a path "
        "token (a token with a `/` and a letter; the `/10.250.19.102:54106` endpoints are "
        "addresses, not paths), which becomes `/tmp/.x<n>/payload`; otherwise "
        f"{inj.WORD_APPENDED}: ` with status <word>` is appended to the message.",
        "",
        f"Words used: {', '.join(words)}"  # type: ignore[arg-type]
        + (f" (left out because the raw file holds them: {', '.join(skipped)})" if skipped else "")
        + f". Injected blocks with a token no training line has: {visible['injected']} of "  # type: ignore[index]
        f"{sum(injection['counts'].values())}.",  # type: ignore[union-attr]
        "",
        "Each configuration's model directory from part one is reused: the injected test file "
        "is scored with the same `--model-dir`, as a user would score a new file ("
        "`score` keeps nothing it learns; each directory's files were hashed after `train` and "
        f"again before this score: unchanged {unchanged}). False "
        "positives are counted on the normal test blocks that got no injection. An injected "
        "word can make the template miner start a new template; the sequence models then see "
        "an unseen key (`unseen_key`), while the content model skips events whose key it has "
        "never seen, so it can only catch injections that stay in a known template. 'New "
        "template' below means an annotation on the injected line carries an event id that "
        "training did not mine; lines nobody annotated cannot be told from the output. The "
        "variants can also change the key of a template's normal messages: the list of "
        "annotations on untouched normal blocks below says how many carry an event id "
        "training never mined and from which line on; when that count is large and starts "
        "before the first injected line, the score-time miner has re-keyed a known template "
        "for the whole file, and DeepLog flags its untouched messages as unseen keys. That is "
        "what a user would get, so it stays in the false positives. The 'on the injected "
        "line' column counts only annotations on the changed line itself.",
        "",
        *inj.markdown(injection).split("\n"),  # type: ignore[arg-type]
        "",
        "Examples:",
        "",
        *_examples(injection),  # type: ignore[arg-type]
        "",
        "## Run",
        "",
        f"{results['seconds']} s in all; load average (1, 5, 15 min) at the start "
        f"{tuple(round(x, 2) for x in load['start'])}, at the end "  # type: ignore[index]
        f"{tuple(round(x, 2) for x in load['end'])}.",  # type: ignore[index]
        "",
        "```",
        *commands,
        "```",
        "",
    ]
    return "\n".join(text)
