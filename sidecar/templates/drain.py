"""Template mining for logs without an event id: an online miner, one message at a time.

Each message is masked and split into tokens (`masking.py`: values recognised by their form
become `<*>`). Messages with the same tokens are one *variant* of a statement. The miner caches
a message's *shape* (its digits collapsed) and its masked text, so the common case costs one
regular expression and one look-up. A new variant joins a template that covers it (a learned
wildcard matches any one token there, or none); or, when the evidence says a place varies, the
templates it differs from in that one place are merged with a wildcard there; otherwise it
starts a template of its own.

The evidence (after Brain, Yu et al., IEEE TSC 2023: a column with many distinct values is a
variable, one with few is part of the statement) is gathered in *slots* (`templates.py`):
variants that agree everywhere but one place. A masked value seen there beside anything else,
many distinct words, or a few that name entities (used by other statements too), none of them
dominant, make a place variable (`templates.varies`); two words that each recur (FAILED and
SUCCEEDED), or a rare one beside a dominant one, stay two statements. A template's wildcard
never agrees with a constant it has not learned, so `client SPP` does not join `client
WindowsUpdateAgent`.

Ids: a template's id is a hash of the tokens it was created from, the same on every miner
(replicas, restarts). A template that generalises keeps its id. When templates are merged, the
smallest id survives (the same on every miner, whatever order they learned in), and the others
become aliases of it: an alias still leads to its template. State (`templatestate.py`) is plain
JSON with a format version; a state from an older miner is refused (`OutdatedMinerState`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import count

import orjson

from sidecar.templates.masking import WILDCARD, mask_shape, shape, tokens, variables, words
from sidecar.templates.shapes import (
    ANY,
    SEP,
    Slot,
    SlotEntry,
    TemplateCluster,
    covering_pattern,
    generalise,
    novel_places,
    slot_entries,
    varies,
)
from sidecar.templates.state import STATE_FORMAT, OutdatedMinerState, load_state, merge, to_state

__all__ = [
    "TemplateMiner",
    "TemplateCluster",
    "MinedEvent",
    "OutdatedMinerState",
    "WILDCARD",
    "STATE_FORMAT",
    "template_id",
]

# 48 bits: the odds that any two of 10,000 templates share an id are about 2 in 10 million,
# and such a collision inside one miner is still resolved (see `_create`).
ID_HEX_CHARS = 12
MIN_VALUES = 3
DEFAULT_MAX_CLUSTERS = 50_000
VARIANTS_PER_CLUSTER = 4
# The cache of masked texts is only a shortcut: cleared when full, so a stream whose masked
# texts never repeat (values the masks do not catch) cannot grow it without bound.
CACHE_SIZE = 100_000


# Three or more dotted parts: a package, class or host name.
QUALIFIED = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*){2,}")


def template_id(tokens: Sequence[str], salt: int = 0) -> str:
    """The id of a cluster created from `tokens`: the same on every miner, in every process."""
    # Tokens never hold whitespace, so a newline cannot be confused with token text.
    text = " ".join(tokens) if salt == 0 else f"{' '.join(tokens)}\n{salt}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX_CHARS]


@dataclass(frozen=True, slots=True)
class MinedEvent:
    """What mining one message gives other detectors: its template's id and text, and the
    values the masks took out of it, each with its class (number, ip, path, ...)."""

    cluster_id: str
    template: str
    variables: list[tuple[str, str]]


class TemplateMiner:
    def __init__(
        self, min_values: int = MIN_VALUES, max_clusters: int = DEFAULT_MAX_CLUSTERS
    ) -> None:
        if min_values < 2:
            raise ValueError("min_values: at least 2 distinct words make a variable")
        self.min_values = min_values
        self.max_clusters = max_clusters
        self.clusters: dict[str, TemplateCluster] = {}
        self.aliases: dict[str, str] = {}  # merged-away id -> the id that absorbed it
        self.variants: dict[str, str] = {}  # SEP-joined tokens -> cluster id (maybe an alias)
        # Counts changes a saved state would show (a new cluster, a template generalised), so
        # a caller saves only when there is something to save: sizes alone change constantly.
        self.revision = 0
        # Messages that found no template while the miner was full (see `max_clusters`).
        self.overflowed = 0
        self._cache: dict[str, str] = {}
        self._slots: dict[Slot, dict[str, str]] = {}
        self._words: Counter[str] = Counter()  # how many variants hold each token
        # Templates by first token: where to look for a template covering another.
        self._by_first: dict[str, set[str]] = {}
        self._general: dict[str, dict[str, re.Pattern[str]]] = {}  # first token -> id -> pattern

    # -- mining -----------------------------------------------------------------------------
    def tokens(self, message: str) -> list[str]:
        return tokens(mask_shape(shape(message)))[0]

    def add(self, message: str) -> TemplateCluster:
        """Learn from `message`; returns the cluster it joined or started."""
        shaped = shape(message)
        cached = self._cache.get(shaped)
        if cached is None:
            masked = mask_shape(shaped)
            cached = self._cache.get(masked)
            if cached is None:
                cached = self._learn(masked).id
                self._remember(masked, cached)
            self._remember(shaped, cached)
        # A cached id may have been merged away since: it leads to the template that took it.
        cluster = self.clusters.get(cached) or self.clusters[self.resolve(cached)]
        cluster.size += 1
        return cluster

    def _remember(self, text: str, cluster_id: str) -> None:
        # The cache maps both a message's shape and its masked text to its cluster: most
        # messages differ from one seen before only in their numbers (one look-up), many
        # others only in values the masks take out (a second).
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[text] = cluster_id

    def match(self, message: str) -> TemplateCluster | None:
        """The cluster `message` belongs to, without learning from it."""
        shaped = shape(message)
        cached = self._cache.get(shaped)
        if cached is not None:
            return self.clusters[self.resolve(cached)]
        found = words(mask_shape(shaped))
        return self._find(found, SEP.join(found))

    def parse(self, message: str) -> MinedEvent | None:
        """The cluster `message` belongs to, with its values, without learning from it: the
        masked ones with their class, then the words at places the template learned to vary
        (class `word`)."""
        found = words(mask_shape(shape(message)))
        key = SEP.join(found)
        cluster = self._find(found, key)
        if cluster is None:
            return None
        values = variables(message)
        if cluster.general:
            matched = covering_pattern(cluster.tokens, capture=True).fullmatch(key + SEP)
            for group in matched.groups() if matched else ():
                if group and group[:-1] != WILDCARD:
                    values.append((group[:-1], "word"))
        return MinedEvent(cluster.id, cluster.template, values)

    def resolve(self, cluster_id: str) -> str:
        """The id a cluster's messages get now: itself, or the template it was merged into."""
        while cluster_id in self.aliases:
            cluster_id = self.aliases[cluster_id]
        return cluster_id

    @property
    def full(self) -> bool:
        # Variants are bounded too: they and their slots are most of the memory.
        return (
            len(self.clusters) >= self.max_clusters
            or len(self.variants) >= VARIANTS_PER_CLUSTER * self.max_clusters
        )

    def _find(self, words: list[str], key: str) -> TemplateCluster | None:
        found = self.variants.get(key)
        if found is not None:
            return self.clusters[self.resolve(found)]
        best: tuple[int, str] | None = None
        text = key + SEP
        for bucket in (self._general.get(words[0] if words else ""), self._general.get(ANY)):
            for cluster_id, pattern in (bucket or {}).items():
                if pattern.fullmatch(text):
                    # The most specific template wins, then the smallest id: the same choice
                    # on every miner holding the same templates.
                    rank = (-self._constants(cluster_id), cluster_id)
                    if best is None or rank < best:
                        best = rank
        return None if best is None else self.clusters[best[1]]

    def _constants(self, cluster_id: str) -> int:
        return sum(t not in (ANY, WILDCARD) for t in self.clusters[cluster_id].tokens)

    def _learn(self, masked: str) -> TemplateCluster:
        found = words(masked)
        key = SEP.join(found)
        cluster = self._find(found, key)
        if cluster is not None:
            return cluster
        if self.full:
            return self._overflow()
        found, seps = tokens(masked)
        return self._new_variant(found, seps, key)

    def _new_variant(self, words: list[str], seps: list[str], key: str) -> TemplateCluster:
        entries = slot_entries(words)
        merging: set[str] = set()
        for slot, filler, context, beside in entries:
            fillers = self._slots.get(slot)
            if not fillers or filler in fillers:
                continue
            members = {f: self.resolve(c) for f, c in fillers.items()}
            counts = {f: self.clusters[c].size for f, c in members.items()} | {filler: 1}
            # Words that name entities: found in another variant too (this one's own
            # occurrence not counted), or qualified names (`com.example.app`).
            shared = sum(
                self._words[f] >= 2 - (f == filler) or bool(QUALIFIED.fullmatch(f)) for f in counts
            )
            if varies(counts, shared, beside, context, self.min_values):
                merging.update(members.values())
        if not merging:
            merging.update(self._novel_match(words))
        if merging:
            cluster = self._merge_into(sorted(merging), words, seps)
        else:
            cluster = self._create(words, seps)
        self._add_variant(key, words, entries, cluster.id)
        return cluster

    def _novel_match(self, words: list[str]) -> list[str]:
        """The template `words` joins for brand-new words in several places (see
        `templates.novel_places`); the fewest places, then the smallest id."""
        best: tuple[int, str] | None = None
        for cluster_id in self._by_first.get(words[0] if words else "", ()):
            places = novel_places(self.clusters[cluster_id].tokens, words, self._words)
            if places and (best is None or (places, cluster_id) < best):
                best = (places, cluster_id)
        return [] if best is None else [best[1]]

    def _add_variant(
        self, key: str, words: Sequence[str], entries: Iterable[SlotEntry], cluster_id: str
    ) -> None:
        self.variants[key] = cluster_id
        self._words.update(set(words))
        for slot, filler, _, _ in entries:
            self._slots.setdefault(slot, {}).setdefault(filler, cluster_id)

    def _merge_into(self, ids: list[str], words: list[str], seps: list[str]) -> TemplateCluster:
        """Generalise the smallest of `ids` to cover the others and `words`; the others become
        its aliases."""
        survivor = self.clusters[ids[0]]
        merged_tokens, merged_seps = survivor.tokens, survivor.seps
        for other in [*(self.clusters[i] for i in ids[1:]), None]:
            theirs = (words, seps) if other is None else (other.tokens, other.seps)
            merged_tokens, merged_seps = generalise(merged_tokens, merged_seps, *theirs)
        for absorbed in ids[1:]:
            gone = self.clusters.pop(absorbed)
            survivor.size += gone.size
            self.aliases[absorbed] = survivor.id
            self._unindex(gone)
        self._set_tokens(survivor, merged_tokens, merged_seps)
        # Templates the generalised one now covers are the same statement: merged too, so
        # that one statement does not keep several ids for its future messages.
        covered = self._covered_by(survivor)
        if covered:
            return self._merge_into(sorted([survivor.id, *covered]), survivor.tokens, survivor.seps)
        return survivor

    def _covered_by(self, cluster: TemplateCluster) -> list[str]:
        if not cluster.general:
            return []
        first = cluster.tokens[0]
        if first in (ANY, WILDCARD):
            candidates: Iterable[str] = list(self.clusters)
        else:
            candidates = list(self._by_first.get(first, ()))
        pattern = covering_pattern(cluster.tokens)
        return [
            c
            for c in candidates
            if c != cluster.id and pattern.fullmatch(SEP.join(self.clusters[c].tokens) + SEP)
        ]

    def _set_tokens(self, cluster: TemplateCluster, tokens: list[str], seps: list[str]) -> None:
        if tokens == cluster.tokens:
            return
        self._unindex(cluster)
        cluster.tokens, cluster.seps = tokens, seps
        self._index(cluster)
        self.revision += 1

    def _index(self, cluster: TemplateCluster) -> None:
        self._by_first.setdefault(cluster.tokens[0] if cluster.tokens else "", set()).add(
            cluster.id
        )
        if cluster.general:
            first = cluster.tokens[0]
            self._general.setdefault(first, {})[cluster.id] = covering_pattern(cluster.tokens)

    def _unindex(self, cluster: TemplateCluster) -> None:
        self._by_first.get(cluster.tokens[0] if cluster.tokens else "", set()).discard(cluster.id)
        if cluster.general:
            self._general.get(cluster.tokens[0], {}).pop(cluster.id, None)

    def _create(self, words: list[str], seps: list[str]) -> TemplateCluster:
        for salt in count():
            cluster_id = template_id(words, salt)
            existing = self.clusters.get(cluster_id)
            if existing is None and cluster_id not in self.aliases:
                cluster = TemplateCluster(cluster_id, list(words), 0, list(seps))
                self.clusters[cluster_id] = cluster
                self._index(cluster)
                self.revision += 1
                return cluster
            if existing is not None and existing.tokens == words:
                return existing
            if cluster_id in self.aliases:  # made from these tokens, merged away since
                return self.clusters[self.resolve(cluster_id)]
            # Otherwise two templates share a hash prefix: the newcomer takes the next salt.
        raise AssertionError("unreachable")

    def _overflow(self) -> TemplateCluster:
        """Where messages go once the miner is full: one template for all of them, so the
        state stops growing; counted, so that operators can raise the cap."""
        self.overflowed += 1
        cluster_id = template_id(["<overflow>"])
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            cluster = TemplateCluster(cluster_id, [ANY], 0, ["", ""])
            self.clusters[cluster_id] = cluster
            self.revision += 1  # not indexed: it must never cover, nor be found for, anything
        return cluster

    # -- merging and persistence (sidecar/templates/state.py) ------------------------
    def merge(self, other: TemplateMiner) -> None:
        """Take in another miner's state (another replica's saved state): see
        `templatestate.merge`."""
        merge(self, other)

    def settings(self) -> dict[str, object]:
        return {"min_values": self.min_values}

    def to_state(self) -> dict[str, object]:
        """The state as plain JSON values; clusters in the order they were added."""
        return to_state(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_state())

    @classmethod
    def from_state(cls, state: dict, max_clusters: int = DEFAULT_MAX_CLUSTERS) -> TemplateMiner:
        """A miner from `to_state`'s values; an older miner's state is refused
        (`OutdatedMinerState`), never re-keyed."""
        miner = cls(int(state.get("min_values", MIN_VALUES)), max_clusters)
        load_state(miner, state)
        return miner

    @classmethod
    def from_json(cls, data: bytes, max_clusters: int = DEFAULT_MAX_CLUSTERS) -> TemplateMiner:
        return cls.from_state(orjson.loads(data), max_clusters)
