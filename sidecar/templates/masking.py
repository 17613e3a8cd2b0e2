"""Tokens of a log message for template mining: obvious variables masked, words split apart.

Everything here is a pure function of one message, with no state, so every miner (every replica,
every restart) masks a message alike.

What is masked, and why (Drain's and Brain's preprocessing, made general rather than per data
set): a value is a variable when its *form* says so, whatever the message. Masked, in this order
at each position: calendar dates with their time (a weekday or month name is a constant word
otherwise), quantities with a unit (`1.20 KB`, `5 ms`: the unit belongs to the number, and the
pair is often optional), URLs and file paths, IPv4 addresses, UUIDs, hex values (with or without
`0x`, when they hold a digit), numbers, and any other token holding a digit (`blk_-42`,
`node-17`, `ssh2`: identifiers). A word without digits stays a constant: whether it varies (a
user name) or names the statement (FAILED vs SUCCEEDED) is decided by the miner from evidence.

Tokens are split on whitespace and on the punctuation that separates fields (`= , ; : ( ) [ ]
{ } " ' | < >`), so `uid=0` is the constant `uid` and a number. The separators are kept, so a
template can be written back with the message's own punctuation.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "VAR",
    "WILDCARD",
    "DELIMITERS",
    "mask",
    "mask_shape",
    "shape",
    "tokens",
    "words",
    "variables",
]

# Stands for a masked value inside the miner; it cannot occur in text read from JSON logs
# (control characters are escaped there) and sorts before every printable character.
VAR: Final = "\x00"
# A masked value among a message's tokens (and in template text).
WILDCARD: Final = "<*>"

DELIMITERS: Final = r"\s=,;:()\[\]{}\"'|<>"
_IN = rf"[^{DELIMITERS}\x00]"  # a character inside a token
# A path: from the root (or a drive, or a URL scheme), with two slashes, or with a slash and a
# dot (`dir/file.txt`, `com.example/.Main`); one slash alone is a word (`and/or`, `TCP/IP`).
# Inside a path or URL, `=` and `:` are part of it (query strings, drive letters).
_PATH = r"[^\s\"'<>()\[\]{}|,;\x00]"
_START = rf"(?<!{_IN})"  # at the start of a token
_END = rf"(?!{_IN})"  # at the end of a token

_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?,?"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
# Units that only ever follow a number (abbreviations; spelt-out words such as `bytes` are
# read as the message's own words).
_UNIT = r"(?:[KMGTP]i?B|[kKMGT]b|B|ms|us|µs|ns|s|secs?|sec|min|mins|h|hrs?|%)"
_NUM = r"[-+]?\d+(?:[.,]\d+)*"

# (class, pattern), tried in this order at each position: the first that matches wins.
_CLASSES: Final = (
    (
        "date",
        rf"(?:{_DAY}\s+)?{_MONTH}\s+\d{{1,2}}(?:,?\s+{_CLOCK})?(?:,?\s+\d{{4}})?(?!\w)"
        rf"|\b{_DAY}\s+\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?(?:\s+{_CLOCK})?(?!\w)",
    ),
    ("quantity", rf"{_START}{_NUM}\s?{_UNIT}{_END}"),
    (
        "path",
        rf"{_START}(?:[A-Za-z][\w+.-]*://|/|\\|[A-Za-z]:\\){_PATH}*|{_START}{_IN}*/{_IN}*/{_PATH}*"
        rf"|{_START}{_IN}*\.{_IN}*/{_IN}*|{_START}{_IN}*/{_IN}*\.{_IN}*",
    ),
    # A host name with a port: the port says it is an address, not a dotted class name.
    ("host", rf"{_START}[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+:\d+{_END}"),
    ("ip", rf"{_START}\d{{1,3}}(?:\.\d{{1,3}}){{3}}{_END}"),
    ("time", rf"{_START}{_CLOCK}{_END}"),
    # A MAC or IPv6 address: hex groups joined by colons, one digit at least.
    (
        "address",
        rf"{_START}(?=[0-9a-fA-F:]*\d)[0-9a-fA-F]{{0,4}}(?::{{1,2}}[0-9a-fA-F]{{1,4}}){{2,7}}{_END}",
    ),
    ("uuid", rf"{_START}[0-9a-fA-F]{{8}}(?:-[0-9a-fA-F]{{4}}){{3}}-[0-9a-fA-F]{{12}}{_END}"),
    # With `0x`, with a digit among hex letters, or eight hex letters (a mask, `ffffffff`).
    (
        "hex",
        rf"{_START}(?:0[xX][0-9a-fA-F]+|[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*"
        rf"|[0-9a-fA-F]{{8,}}){_END}",
    ),
    ("number", rf"{_START}{_NUM}{_END}"),
    ("identifier", rf"{_START}{_IN}*\d{_IN}*"),
)
_VARIABLE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _CLASSES))
_SPLIT = re.compile(rf"([{DELIMITERS}]+)")

# The miner masks a message's *shape*: every run of digits (with the hex digits after it) made
# one `0`. Every rule above depends only on whether a token holds a digit, not on how many or
# which, so a message and its shape mask alike; and messages that differ only in their
# numbers share one shape, which the miner caches.
_SHAPE = re.compile(r"[0-9][0-9a-fA-F]*")
_ANY_MONTH = re.compile(r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s")
_DATE = re.compile(
    rf"(?:{_DAY}\s+)?{_MONTH}\s+0(?:,?\s+0:0(?::0)?(?:[.,]0)?)?(?:,?\s+0)?(?!\w)"
    rf"|\b{_DAY}\s+0\s+{_MONTH}(?:\s+0)?(?:\s+0:0(?::0)?(?:[.,]0)?)?(?!\w)"
)
# Everything but dates, as one pattern. Only tokens that hold a digit, a slash or a backslash,
# or start with eight hex letters, a URL, a host with a port or a drive can be values: the
# look-ahead skips the others at once.
_MASK = re.compile(
    rf"(?<![^{DELIMITERS}])(?=[^{DELIMITERS}]*[0/\\]|[0-9a-fA-F]{{8}}|[\w.+-]+:(?:0|//)|[A-Za-z]:\\"
    rf"|[0-9a-fA-F]{{1,4}}:[0-9a-fA-F]{{1,4}}:)"
    r"(?:" + "|".join(pattern.replace(_START, "") for _, pattern in _CLASSES[1:]) + ")"
)


def shape(message: str) -> str:
    """`message` with every run of digits one `0`: what the miner caches and masks."""
    return _SHAPE.sub("0", message)


def mask(message: str) -> str:
    """The shape of `message` with every value that is a variable by its form replaced by VAR
    (the same for a message and its shape)."""
    return mask_shape(_SHAPE.sub("0", message))


def mask_shape(shaped: str) -> str:
    """`mask` of a message already made a shape (`shape`)."""
    if _ANY_MONTH.search(shaped):
        shaped = _DATE.sub(VAR, shaped)
    return _MASK.sub(VAR, shaped)


_GLUED = re.compile(rf"[^{DELIMITERS}]*{VAR}[^{DELIMITERS}]*")
_RUN = re.compile(rf"{VAR}(?:[{DELIMITERS}]*{VAR})+")
_WORD = re.compile(rf"[^{DELIMITERS}]+")


def words(masked: str) -> list[str]:
    """The tokens of `tokens(masked)`, without separators: the same rules in three C-level
    passes, for the look-up of a message whose shape was not cached."""
    collapsed = _RUN.sub(VAR, _GLUED.sub(VAR, masked))
    return [WILDCARD if w == VAR else w for w in _WORD.findall(collapsed)]


def tokens(masked: str) -> tuple[list[str], list[str]]:
    """The tokens of a masked message (values as WILDCARD) and the separator before each (the
    last entry of the separators is what follows the last token). A run of variables with only
    punctuation between them (`<ip>:<port>`, a list of block ids) is one variable: its length
    varies."""
    parts = _SPLIT.split(masked)
    words: list[str] = []
    seps: list[str] = []
    sep = ""
    for index, part in enumerate(parts):
        if index % 2:  # a separator
            sep += part
            continue
        if not part:
            continue
        if VAR in part:  # a value glued to other characters is one value
            part = WILDCARD
        if part == WILDCARD and words and words[-1] == WILDCARD:
            sep = ""
            continue
        words.append(part)
        seps.append(sep)
        sep = ""
    seps.append(sep)
    return words, seps


def variables(message: str) -> list[tuple[str, str]]:
    """(text, class) of every value `mask` replaces, in order."""
    return [(m.group(), m.lastgroup or "identifier") for m in _VARIABLE.finditer(message)]
