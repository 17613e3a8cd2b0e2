"""Raw HDFS lines with block labels (../shared/data/hdfs-raw) as seed-shaped documents, one host
per HDFS block, and the benchmark's time split. Used by benchmarks/content.py.

A line such as `081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-16… src: …`
is date, time, thread id, level, component and content. It becomes one document per block id it
names, with no EVENTID, so the sidecar keys it by the template it mines from MESSAGE.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

LOG_FILE = "HDFS_first20000.log"
LABEL_FILE = "HDFS_first20000_block_labels.csv"
LINE = re.compile(r"^(\d{6}) (\d{6}) (\d+) (\S+) (\S+?): (.*)$")
BLOCK = re.compile(r"blk_-?\d+")
DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class RawLine:
    number: int  # 1-based line number in the file
    timestamp_ms: int
    severity: str
    message: str  # "<component>: <content>"
    blocks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Split:
    """Blocks in order of their first line: the earliest share is the training part (only its
    normal blocks are trained on), the rest, whatever their label, the test set."""

    training_part: list[str]
    train: list[str]
    test: list[str]


def read_lines(path: Path) -> list[RawLine]:
    """Every line, in file order. The log has whole seconds only; the lines of one second are
    spread over its 1000 ms in file order, so time order (what the sidecar sorts by) is the
    file's order and nothing moves into the next second."""
    parsed = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            found = LINE.match(text.rstrip("\n"))
            if found is None:
                raise ValueError(f"{path.name}:{number}: not an HDFS log line: {text[:80]!r}")
            date, clock, _thread, level, component, content = found.groups()
            second = datetime.strptime(date + clock, "%y%m%d%H%M%S").replace(tzinfo=UTC)
            parsed.append((number, int(second.timestamp()) * 1000, level, component, content))
    per_second = Counter(p[1] for p in parsed)
    seen: Counter[int] = Counter()
    lines = []
    for number, second_ms, level, component, content in parsed:
        offset = seen[second_ms] * 1000 // per_second[second_ms]
        seen[second_ms] += 1
        lines.append(
            RawLine(
                number,
                second_ms + offset,
                level,
                f"{component}: {content}",
                tuple(dict.fromkeys(BLOCK.findall(content))),
            )
        )
    return lines


def read_labels(path: Path) -> dict[str, bool]:
    """Block id -> anomalous."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["BlockId"]: row["Label"] == "Anomaly" for row in csv.DictReader(handle)}


def lines_by_block(lines: Iterable[RawLine]) -> dict[str, list[RawLine]]:
    """Each block's lines in file order; the dict is in order of each block's first line."""
    blocks: dict[str, list[RawLine]] = {}
    for line in lines:
        for block in line.blocks:
            blocks.setdefault(block, []).append(line)
    return blocks


def split_blocks(
    blocks: dict[str, list[RawLine]], anomalous: dict[str, bool], train_share: float = 0.5
) -> Split:
    missing = [b for b in blocks if b not in anomalous]
    if missing:
        raise ValueError(f"{len(missing)} blocks without a label, e.g. {missing[:3]}")
    order = list(blocks)  # already in order of first line
    cut = int(len(order) * train_share)
    return Split(
        training_part=order[:cut],
        train=[b for b in order[:cut] if not anomalous[b]],
        test=order[cut:],
    )


def log_uuid(line: RawLine, block: str) -> str:
    return f"hdfs-{line.number:06d}-{block}"


def documents(
    lines: Iterable[RawLine],
    chosen: set[str],
    replaced: dict[tuple[int, str], str] | None = None,
) -> list[dict[str, str]]:
    """Seed-shaped documents of the chosen blocks, in file order (hosts interleaved, as a
    cluster holds them). The log_uuid puts the zero-padded line number first, so the
    (timestamp, log_uuid) order the sidecar reads in is the file's order. `replaced` maps
    (line number, block) to the MESSAGE that block's document of that line gets instead."""
    replaced = replaced or {}
    return [
        {
            "_zl_timestamp": str(line.timestamp_ms),
            "log_uuid": log_uuid(line, block),
            "SEVERITY": line.severity,
            "HOSTNAME": block,
            "MESSAGE": replaced.get((line.number, block), line.message),
        }
        for line in lines
        for block in line.blocks
        if block in chosen
    ]


def write_jsonl(path: Path, docs: Iterable[dict[str, str]]) -> int:
    count = 0
    with path.open("wb") as out:
        for doc in docs:
            out.write(orjson.dumps(doc) + b"\n")
            count += 1
    return count


def folded_tokens(message: str) -> set[str]:
    """A message's whitespace tokens with block ids and digit runs folded (`blk_0`, `0`)."""
    return set(DIGITS.sub("0", BLOCK.sub("blk_0", message)).split())


def blocks_with_unseen_tokens(
    by_block: dict[str, list[RawLine]],
    train: Iterable[str],
    blocks: Iterable[str],
    replaced: dict[tuple[int, str], str] | None = None,
) -> list[str]:
    """The blocks (of `blocks`) with a line holding a folded token that no training line has:
    what a message-content detector could see as new text at all."""
    replaced = replaced or {}
    seen: set[str] = set()
    for block in train:
        for line in by_block[block]:
            seen |= folded_tokens(line.message)
    return [
        block
        for block in blocks
        if any(
            folded_tokens(replaced.get((line.number, block), line.message)) - seen
            for line in by_block[block]
        )
    ]
