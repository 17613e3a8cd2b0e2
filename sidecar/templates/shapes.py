"""Pure functions on templates: generalising two templates, matching a template against a
message's tokens, and the "slots" that gather evidence that a position varies.

A template is a list of tokens: constants, WILDCARD (a masked value must stand here) and ANY
(a position learned to vary: any one token, a value, or nothing). Both wildcards are written
`<*>` in template text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from sidecar.templates.masking import WILDCARD

__all__ = [
    "ANY",
    "EMPTY",
    "SEP",
    "generalise",
    "covering_pattern",
    "slot_entries",
    "varies",
    "render",
    "novel_places",
    "Slot",
    "SlotEntry",
    "TemplateCluster",
]

# `<` and `>` separate tokens, so neither marker can be a token read from a message.
ANY: Final = "<?>"
EMPTY: Final = ""  # the filler of a slot a message leaves empty
SEP: Final = "\x1f"  # joins tokens into a key; never inside a token (a control character)
# The share of a position's messages above which its most frequent word is read as the
# statement's own word, the others as different statements.
DOMINANT: Final = 0.8
_MODULUS: Final = (1 << 61) - 1
_BASE: Final = 1_000_003


def render(tokens: Sequence[str], seps: Sequence[str]) -> str:
    """Template text: each token after its separator, every wildcard as `<*>`."""
    out = [f"{sep}{WILDCARD if t == ANY else t}" for sep, t in zip(seps, tokens, strict=False)]
    return "".join(out) + (seps[len(tokens)] if len(seps) > len(tokens) else "")


def generalise(
    a: Sequence[str], a_seps: Sequence[str], b: Sequence[str], b_seps: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The most specific template covering both `a` and `b`: their longest common subsequence
    of tokens kept, every stretch where they differ one ANY (the order of constants is what a
    statement is made of; how many tokens its values take is not)."""
    n, m = len(a), len(b)
    # lengths[i][j]: longest common subsequence of a[i:] and b[j:] (ANY agrees with nothing).
    lengths = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = lengths[i], lengths[i + 1]
        for j in range(m - 1, -1, -1):
            if a[i] == b[j] and a[i] != ANY:
                row[j] = below[j + 1] + 1
            else:
                row[j] = max(below[j], row[j + 1])
    tokens: list[str] = []
    seps: list[str] = []
    i = j = 0
    gap = False
    gap_sep = ""
    while i < n or j < m:
        if i < n and j < m and a[i] == b[j] and a[i] != ANY:
            if gap:
                tokens.append(ANY)
                seps.append(gap_sep)
                gap = False
            tokens.append(a[i])
            seps.append(a_seps[i])
            i, j = i + 1, j + 1
            continue
        if not gap:
            gap, gap_sep = True, a_seps[i] if i < n else b_seps[j]
        if j >= m or (i < n and lengths[i + 1][j] >= lengths[i][j + 1]):
            i += 1
        else:
            j += 1
    if gap:
        tokens.append(ANY)
        seps.append(gap_sep)
    seps.append(a_seps[n] if len(a_seps) > n else "")
    return tokens, seps


def covering_pattern(tokens: Sequence[str], capture: bool = False) -> re.Pattern[str]:
    """A pattern that fully matches the key (`SEP.join(tokens) + SEP`) of every token list the
    template covers: constants and WILDCARD as they are, ANY as any one token or none (a
    group of its own with `capture`)."""
    any_token = f"([^{SEP}]*{SEP})?" if capture else f"(?:[^{SEP}]*{SEP})?"
    parts = [any_token if t == ANY else re.escape(t + SEP) for t in tokens]
    return re.compile("".join(parts))


def varies(
    fillers: dict[str, int], shared: int, value_beside: bool, context: int, min_values: int
) -> bool:
    """Whether a position varies, from the distinct tokens seen there in messages that agree
    everywhere else (`fillers`: each with how often it was seen), with `context` constant
    tokens elsewhere; `shared`: how many of the words also occur in other statements;
    `value_beside`: the place is next to a masked value, so a word there
    that sometimes is missing may be part of that value (a host name before its address).

    Without two constants around it a position is the whole message (`normal`, `warning`):
    those are different statements, never one with a variable. A masked value seen there
    beside anything else makes it a variable (`user test9` and `user admin`; an optional
    `(1.20 KB)`), as do many distinct words (an open class: 2 * min_values - 1 of them) or
    `min_values` words with none dominating, at least two of which other statements use too
    (names that travel between statements, such as user names, are values; words only this
    statement uses are its states: `VM Started`, `VM Stopped`). One word that takes most of
    the messages names the statement, and the rare others different statements (GET beside
    rare POST and DELETE, HTTPS beside SOCKS5, a frequent client beside a rare one), as two
    states (FAILED, SUCCEEDED) do."""
    if context < 2 or len(fillers) < 2:
        return False
    total = sum(fillers.values())
    words = [n for f, n in fillers.items() if f not in (WILDCARD, EMPTY)]
    dominated = bool(words) and max(words) > DOMINANT * total
    if WILDCARD in fillers or (value_beside and EMPTY in fillers):
        return not dominated
    distinct = len(fillers)
    if distinct >= 2 * min_values - 1:
        return True
    return distinct >= min_values and not dominated and shared >= 2


def novel_places(template: Sequence[str], words: Sequence[str], seen: Mapping[str, int]) -> int:
    """In how many places `words` differs from `template`, when each of them holds a word no
    variant has held before (`seen` counts them) and the template's other constants agree with
    at least twice as many; else 0. Values that vary together (a tag and a name) leave no slot
    to gather evidence in, but brand-new words in several places of an otherwise known
    statement are values. One new word in one place is left to the slots: it may be a state."""
    if len(template) != len(words):
        return 0
    differ = agree = 0
    for mine, theirs in zip(template, words, strict=True):
        if mine in (theirs, ANY):
            agree += mine not in (WILDCARD, ANY)
        elif WILDCARD in (theirs, mine) or seen.get(theirs, 0):
            return 0
        else:
            differ += 1
    return differ if differ >= 2 and agree >= 2 * differ else 0


def _hashes(tokens: Sequence[str]) -> tuple[list[int], list[int]]:
    """Rolling hashes of every prefix and every suffix, so that each of a message's slots gets
    its key in constant time instead of joining the other tokens again."""
    n = len(tokens)
    values = [hash(t) & _MODULUS for t in tokens]
    prefix = [0] * (n + 1)
    for i, v in enumerate(values):
        prefix[i + 1] = (prefix[i] * _BASE + v + 1) % _MODULUS
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = (suffix[i + 1] * _BASE + values[i] + 1) % _MODULUS
    return prefix, suffix


Slot = tuple[int, int, int]
SlotEntry = tuple[Slot, str, int, bool]


def slot_entries(tokens: Sequence[str]) -> list[SlotEntry]:
    """(slot, filler, context, beside a value) for every slot of a message's tokens.

    A slot is a message with one place left open: position i taken out (its filler is the
    token there), or a gap before position i (filler EMPTY). Two messages in one slot agree
    on every other token, in order; the fillers a slot gathers tell whether that place
    varies. A place beside a masked value may hold part of that value (a host name before
    its address): the flag says so. Keys hold process-local hashes: slots are rebuilt on
    load, never saved."""
    prefix, suffix = _hashes(tokens)
    constants = sum(1 for t in tokens if t not in (WILDCARD, ANY))
    n = len(tokens)
    value = [t == WILDCARD for t in tokens] + [False]
    out: list[SlotEntry] = []
    for i, token in enumerate(tokens):
        if token == ANY:
            continue
        context = constants - (token != WILDCARD)
        beside = value[i - 1] or value[i + 1]  # value[-1] is the padding: False
        out.append(((i, prefix[i], suffix[i + 1]), token, context, beside))
    for i in range(n + 1):
        out.append(((i, prefix[i], suffix[i]), EMPTY, constants, value[i - 1] or value[i]))
    return out


@dataclass
class TemplateCluster:
    id: str
    tokens: list[str]
    size: int = 1
    seps: list[str] = field(default_factory=list)  # before each token, then after the last

    @property
    def template(self) -> str:
        if len(self.seps) != len(self.tokens) + 1:
            return " ".join(WILDCARD if t == ANY else t for t in self.tokens)
        return render(self.tokens, self.seps)

    @property
    def general(self) -> bool:
        return ANY in self.tokens
