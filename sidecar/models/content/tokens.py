"""A MESSAGE as the content detector reads it: tokens with their value class, hashed per template.

Digits and 0x-prefixed hex ids are folded to one `0` before anything else: numbers are the
parameter model's job, and identifiers that differ only in their digits (`part-00590`,
`task_…_m_000590_0`, ports, `0x3e7`) are one shape, so what is left to be unusual is the
words, names and paths a template carries. A message's shape is also the unit scoring is done
on: events that share a template and a shape are scored once (real logs repeat shapes far more
than lines).

Classes: `num` (a folded number or 0x id), `hex` (a hexadecimal id without `0x`, six
characters or more, which becomes the token `<hex>`; one without digits too, in one case: 0.3%
of random six-character ids are letters only, and read as words each would be a new word),
`ip` (a dotted address), `path`
(anything with a slash), `alnum` (letters and digits) and `word`. A token is hashed with its
template's label, so one table of 64-bit hashes holds every template's tokens with no strings
kept (memory bounded by a cap on entries, not by what the logs say).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from sidecar.types import CONTEXT_MESSAGE_CHARS

__all__ = [
    "CLASSES",
    "MAX_TOKENS",
    "HEX_TOKEN",
    "shape_of",
    "tokens_of",
    "class_of",
    "token_hashes",
    "classes_of",
]

CLASSES = ("word", "num", "hex", "ip", "path", "alnum")
HEX_TOKEN = "<hex>"
# Tokens read per message: a stack trace or a JSON blob past this adds cost, not evidence.
MAX_TOKENS = 64

# A 0x-prefixed hex id or a run of digits: both are values, neither is content.
_DIGITS = re.compile(r"0[xX][0-9a-fA-F]+|\d+")
# Separators: whitespace and the punctuation that frames values (key=value, "quoted", (x)).
_SPLIT = re.compile(r"[\s,;=()\[\]{}<>\"'|]+")
_HEX = frozenset("0abcdefABCDEF")
_IP = re.compile(r"0(?:\.0){3}(?::0)?")
_NUMBER = re.compile(r"[-+]?0(?:[.:]0)*[%a-zA-Z]{0,2}")


def shape_of(message: str | None) -> str:
    """The message cut to what a saved tail keeps, digits and 0x ids folded."""
    if not message:
        return ""
    return _DIGITS.sub("0", message[:CONTEXT_MESSAGE_CHARS])


def class_of(token: str) -> int:
    """The index in CLASSES of a token of a shape."""
    if token == HEX_TOKEN:
        return 2
    if "/" in token:
        return 4
    if _is_hex_id(token):
        return 2
    if "0" not in token:
        return 0
    if _IP.fullmatch(token):
        return 3
    if _NUMBER.fullmatch(token):
        return 1
    return 5


def _is_hex_id(token: str) -> bool:
    """Six or more hex characters, with a (folded) digit or all in one case: `0a0f0e`,
    `afccfe`, `DBEFFF`; not `Facade`."""
    return (
        len(token) >= 6
        and _HEX.issuperset(token)
        and ("0" in token or token.islower() or token.isupper())
    )


def tokens_of(shape: str) -> list[str]:
    """The tokens of a shape, in order, trailing punctuation of a sentence dropped; a hex id
    becomes its class name, so two ids are one token (an id is never the content)."""
    out = []
    for raw in _SPLIT.split(shape):
        token = raw.strip(".:")
        if not token:
            continue
        if _is_hex_id(token):
            token = HEX_TOKEN
        out.append(token)
        if len(out) == MAX_TOKENS:
            break
    return out


class _Memo(dict):
    """A dict emptied when full: tokens repeat across batches, but memory must stay bounded
    whatever the logs say."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def add(self, key: str, value: int) -> int:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


_CLASSES = _Memo(100_000)
_HASHES = _Memo(200_000)


def classes_of(tokens: Iterable[str]) -> list[int]:
    memo = _CLASSES
    return [memo[t] if t in memo else memo.add(t, class_of(t)) for t in tokens]


def _hash(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def token_hashes(template: str, tokens: Iterable[str]) -> list[int]:
    """64-bit hashes of (template label, token): stable across processes and versions."""
    memo = _HASHES
    out = []
    for t in tokens:
        key = f"{template}\x1f{t}"
        value = memo.get(key)
        out.append(memo.add(key, _hash(key)) if value is None else value)
    return out
