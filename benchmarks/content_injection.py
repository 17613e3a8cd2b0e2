"""Part two of benchmarks/content.py: injected token variations on real lines.

The labels of the 20,000-line HDFS sample show nothing a message-content detector could see, so
this part changes the text of familiar messages on purpose and asks what each detector flags.
With a fixed seed, 100 distinct normal test blocks are drawn; in each, one line of that block's
document is changed (the same raw line in another block's document is left as it was):

- word replaced (50 blocks): one alphabetic word of 3+ letters in the message content (not the
  component before the first ": ", not a block id) becomes a word from WORDS;
- path replaced (of the other 50, those whose drawn line has a path token: one with a '/' and a
  letter, so `/10.250.19.102:54106` endpoints are addresses, not paths): the path becomes
  `/tmp/.x<n>/payload`;
- word appended (the rest): " with status <word>" is appended to the message.

A word from WORDS is used only if it occurs nowhere in the raw file (case-insensitively, as a
substring). A block counts as caught when any of its events is annotated, as in part one.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from hdfs_raw_data import BLOCK, RawLine, log_uuid

SEED = 20261203
PER_KIND = 50
WORD_REPLACED, PATH_REPLACED, WORD_APPENDED = "word replaced", "path replaced", "word appended"
KINDS = (WORD_REPLACED, PATH_REPLACED, WORD_APPENDED)
WORDS = (
    "corrupted",
    "denied",
    "timeout",
    "mismatch",
    "unreachable",
    "FAILED",
    "rejected",
    "truncated",
    "invalid",
    "expired",
    "aborted",
    "refused",
    "unknown",
    "missing",
    "locked",
    "degraded",
    "stale",
    "orphaned",
    "quarantined",
    "overflow",
)
WORD = re.compile(r"[A-Za-z]{3,}")
LETTER = re.compile(r"[A-Za-z]")
TRAILING = ".,;:"
UNION = "union"
NOT_MINED = "event id not mined in training"
NEW, KNOWN, UNTOLD = "new template", "known template", "no annotation on the line"


@dataclass(frozen=True, slots=True)
class Injection:
    block: str
    kind: str
    line: int  # 1-based line number in the raw file
    log_uuid: str
    original: str
    injected: str
    replaced_token: str  # "" when a phrase was appended
    new_token: str


def unseen_words(raw_text: str) -> list[str]:
    """WORDS that occur nowhere in the raw file, case-insensitively."""
    lower = raw_text.lower()
    return [w for w in WORDS if w.lower() not in lower]


def _split(message: str) -> tuple[str, list[str]]:
    """(component prefix with its ": ", the content's tokens split on single spaces)."""
    head, sep, content = message.partition(": ")
    return head + sep, content.split(" ")


def _words(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if WORD.fullmatch(t) and not BLOCK.search(t)]


def _paths(tokens: list[str]) -> list[int]:
    return [
        i
        for i, t in enumerate(tokens)
        if "/" in t and LETTER.search(t.rstrip(TRAILING)) and not BLOCK.search(t)
    ]


def choose(
    by_block: dict[str, list[RawLine]],
    test: list[str],
    anomalous: dict[str, bool],
    words: list[str],
    seed: int = SEED,
) -> list[Injection]:
    """PER_KIND word replacements, then PER_KIND path replacements or appended words, in 2 *
    PER_KIND distinct normal test blocks drawn with `seed` (a block without a replaceable word
    is passed over for the first kind)."""
    if not words:
        raise ValueError("every injection word occurs in the raw file")
    rng = random.Random(seed)
    normal = [b for b in test if not anomalous[b]]
    order = rng.sample(normal, len(normal))
    injections: list[Injection] = []
    for block in order:
        if len(injections) == 2 * PER_KIND:
            break
        lines = by_block[block]
        if len(injections) < PER_KIND:
            lines = [ln for ln in lines if _words(_split(ln.message)[1])]
            if not lines:
                continue
        line = rng.choice(lines)
        head, tokens = _split(line.message)
        tokens = list(tokens)
        word = rng.choice(words)
        if len(injections) < PER_KIND:
            at = rng.choice(_words(tokens))
            kind, old, new = WORD_REPLACED, tokens[at], word
            tokens[at] = new
        elif paths := _paths(tokens):
            at = rng.choice(paths)
            old = tokens[at]
            kept = old[len(old.rstrip(TRAILING)) :]
            kind, new = PATH_REPLACED, f"/tmp/.x{len(injections)}/payload"
            tokens[at] = new + kept
        else:
            kind, old, new = WORD_APPENDED, "", f"with status {word}"
            tokens.append(new)
        injected = head + " ".join(tokens)
        injections.append(
            Injection(
                block, kind, line.number, log_uuid(line, block), line.message, injected, old, new
            )
        )
    if len(injections) < 2 * PER_KIND:
        raise ValueError(f"only {len(injections)} normal test blocks could take an injection")
    return injections


def replacements(injections: list[Injection]) -> dict[tuple[int, str], str]:
    return {(i.line, i.block): i.injected for i in injections}


def _rate(count: int, of: int) -> dict[str, object]:
    return {"caught": count, "of": of, "rate": round(count / of, 4) if of else None}


def _figures(
    flagged: set[str],
    on_line: set[str],
    injections: list[Injection],
    untouched_normal: list[str],
    annotations: int,
) -> dict[str, object]:
    kinds = {
        kind: _rate(sum(i.block in flagged for i in injections if i.kind == kind), n)
        for kind, n in Counter(i.kind for i in injections).items()
    }
    false_positives = sum(b in flagged for b in untouched_normal)
    return {
        "kinds": kinds,
        "all": _rate(sum(i.block in flagged for i in injections), len(injections)),
        "on_injected_line": sum(i.log_uuid in on_line for i in injections),
        "false_positives": false_positives,
        "untouched_normal_blocks": len(untouched_normal),
        "fpr": round(false_positives / len(untouched_normal), 4) if untouched_normal else None,
        "annotations": annotations,
    }


def analyse(
    out: Path,
    models: list[str],
    injections: list[Injection],
    test: list[str],
    anomalous: dict[str, bool],
    template_ids: set[str],
) -> dict[str, object]:
    """Per detector (and their union): injected blocks caught per kind, false positives among
    the untouched normal test blocks; per injected line, who flagged it and whether the key it
    was given is a template training mined (an annotation's event.id) or a new one."""
    injected = {i.block for i in injections}
    by_uuid = {i.log_uuid: i for i in injections}
    untouched = [b for b in test if not anomalous[b] and b not in injected]
    flagged: dict[str, set[str]] = {m: set() for m in models}
    on_line: dict[str, set[str]] = {m: set() for m in models}
    written: Counter[str] = Counter()
    seen_on_line: dict[str, list[dict[str, object]]] = {}
    untouched_set = set(untouched)
    # Annotations on untouched normal blocks: why, and whether their key is one training mined.
    false: dict[str, Counter[str]] = {}
    for raw in out.read_bytes().splitlines():
        if not raw.strip():
            continue
        doc = orjson.loads(raw)
        model, uuid = str(doc["model"]["name"]), str(doc["log_uuid"])
        flagged.setdefault(model, set()).add(str(doc["host"]))
        on_line.setdefault(model, set())
        written[model] += 1
        if doc["host"] in untouched_set:
            notes = false.setdefault(model, Counter())
            notes[str(doc["reason"])] += 1
            notes[NOT_MINED] += str(doc["event"]["id"]).removeprefix("T-") not in template_ids
            line = int(uuid.split("-")[1])
            notes["earliest line"] = min(notes.get("earliest line") or line, line)
        if uuid in by_uuid:
            on_line[model].add(uuid)
            event_id = str(doc["event"]["id"])
            template = doc.get("template") or {}
            seen_on_line.setdefault(uuid, []).append(
                {
                    "model": model,
                    "reason": doc["reason"],
                    "event_id": event_id,
                    "known_template": event_id.removeprefix("T-") in template_ids,
                    "matched_to": template.get("closest_template")
                    if template.get("matched")
                    else None,
                }
            )
    detectors = {
        m: _figures(flagged[m], on_line[m], injections, untouched, written[m]) for m in flagged
    }
    if len(flagged) > 1:
        detectors[UNION] = _figures(
            set().union(*flagged.values()),
            set().union(*on_line.values()),
            injections,
            untouched,
            sum(written.values()),
        )
    lines = []
    keyed: Counter[tuple[str, str]] = Counter()
    for i in injections:
        notes = seen_on_line.get(i.log_uuid, [])
        if not notes:
            template = UNTOLD
        elif all(n["known_template"] for n in notes):
            template = KNOWN
        else:
            template = NEW
        keyed[(i.kind, template)] += 1
        lines.append(
            asdict(i)
            | {
                "flagged_by": sorted(m for m, blocks in flagged.items() if i.block in blocks),
                "annotations_on_line": notes,
                "template": template,
            }
        )
    result: dict[str, object] = {
        "detectors": detectors,
        "false_positive_annotations": {m: dict(c) for m, c in false.items()},
        "first_injected_line": min(i.line for i in injections),
        "injected": lines,
    }
    result["keyed"] = {
        kind: {t: keyed[(kind, t)] for t in (NEW, KNOWN, UNTOLD)}
        for kind in KINDS
        if any(i.kind == kind for i in injections)
    }
    if len(flagged) > 1:
        caught = {m: {i.block for i in injections if i.block in flagged[m]} for m in flagged}
        result["only_one_catches"] = {
            m: sorted(blocks - set().union(*(b for n, b in caught.items() if n != m)))
            for m, blocks in caught.items()
        }
        everyone = set().union(*caught.values())
        result["missed_by_all"] = sorted(i.block for i in injections if i.block not in everyone)
    return result


def markdown(injection: dict[str, object]) -> str:
    """The second table: injected blocks caught per kind and false positives per detector."""
    kinds = [k for k in KINDS if k in injection["counts"]]  # type: ignore[operator]
    counts = injection["counts"]
    lines = [
        "| run | detector | "
        + " | ".join(f"{k} (of {counts[k]})" for k in kinds)  # type: ignore[index]
        + " | all injected | on the injected line | FP untouched normal (FPR) | annotations |",
        "| --- | --- | " + "--- | " * len(kinds) + "--- | --- | --- | --- |",
    ]
    runs = injection["runs"]
    for run, r in runs.items():  # type: ignore[union-attr]
        if not r.get("ok"):
            lines.append(
                f"| {run} | score failed (exit {r.get('exit_code')}) |" + " |" * (len(kinds) + 4)
            )
            continue
        for detector, d in r["detectors"].items():
            cells = [d["kinds"].get(k, {"caught": 0, "of": 0, "rate": None}) for k in kinds]
            cells.append(d["all"])
            shown = " | ".join(
                f"{c['caught']}/{c['of']} = {c['rate']:.0%}" if c["rate"] is not None else "–"
                for c in cells
            )
            fpr = f"{d['fpr']:.1%}" if d["fpr"] is not None else "–"
            lines.append(
                f"| {run} | {detector} | {shown} | {d['on_injected_line']} | "
                f"{d['false_positives']} ({fpr}) | {d['annotations']} |"
            )
    lines += ["", "How the injected lines were keyed (from the annotations on those lines):", ""]
    for run, r in runs.items():  # type: ignore[union-attr]
        if not r.get("ok"):
            continue
        parts = [
            f"{kind}: " + ", ".join(f"{n} {t}" for t, n in keyed.items())
            for kind, keyed in r["keyed"].items()
        ]
        lines.append(
            f"- {run}: " + "; ".join(parts) + f" (new templates met while scoring: "
            f"{r['new_templates']}, without injections {r['new_templates_part_one']})"
        )
    lines += ["", "Annotations on the untouched normal blocks (the false positives):", ""]
    if not any(r.get("false_positive_annotations") for r in runs.values()):  # type: ignore[union-attr]
        lines.append("- none, in any run")
    for run, r in runs.items():  # type: ignore[union-attr]
        for model, notes in (r.get("false_positive_annotations") or {}).items():
            notes = dict(notes)
            earliest, not_mined = notes.pop("earliest line"), notes.pop(NOT_MINED)
            shown = ", ".join(f"{k} {v}" for k, v in notes.items())
            lines.append(
                f"- {run}, {model}: {shown}; {not_mined} with an event id training never "
                f"mined; earliest on line {earliest} (first injected line "
                f"{r['first_injected_line']})"
            )
    combined = runs.get("combined")  # type: ignore[union-attr]
    if combined and combined.get("ok") and "only_one_catches" in combined:
        lines += ["", "In the combined run, injected blocks only one model flags:", ""]
        for model, blocks in combined["only_one_catches"].items():
            lines.append(f"- {model}: {len(blocks)}")
        lines.append(
            f"- flagged by none: {len(combined['missed_by_all'])} of {sum(counts.values())}"
        )  # type: ignore[union-attr]
    return "\n".join(lines)
