"""Template mining for logs without an event id: a Drain-style fixed-depth parse tree.

Drain (He et al., ICWS'17) sends a message down a tree of fixed depth: first by its number of
tokens, then by its first few tokens (tokens with digits go to a wildcard branch, so variable
values do not split the tree), and at the leaf picks the cluster whose template shares the most
tokens with it. Above a similarity threshold the message joins that cluster and the positions
where they differ become `<*>`; otherwise it starts a new cluster.

A cluster's id is a hash of the masked tokens it was created with, not a creation counter: two
miners (two replicas, or one miner before and after a restart) that create a cluster from the
same first message give it the same id, so their states can be merged by id (union of clusters,
one template generalising both for an id they share). An id never changes once given, even as
its template generalises. State is plain JSON (no pickle): the tree is rebuilt from the
clusters' paths when loaded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count

import orjson

__all__ = ["TemplateMiner", "TemplateCluster", "DEFAULT_MASKS", "WILDCARD", "template_id"]

WILDCARD = "<*>"
STATE_FORMAT = 2
# 48 bits: the odds that any two of 10,000 templates share an id are about 2 in 10 million,
# and such a collision inside one miner is still resolved (see `_create`).
ID_HEX_CHARS = 12

# Variable parts masked before mining: they carry no meaning for the template and would
# otherwise scatter one message type over many clusters. Order matters (most specific first).
DEFAULT_MASKS: tuple[str, ...] = (
    r"blk_-?\d+",  # HDFS block ids
    r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?",  # IPv4 with an optional port
    r"\b0x[0-9a-fA-F]+\b",  # hex values
    r"(?<![A-Za-z0-9])[-+]?\d+(?:\.\d+)?(?![A-Za-z0-9])",  # stand-alone numbers
)


def template_id(tokens: Sequence[str], salt: int = 0) -> str:
    """The id of a cluster created from `tokens`: the same on every miner, in every process."""
    # Tokens never hold whitespace, so a newline cannot be confused with token text.
    text = " ".join(tokens) if salt == 0 else f"{' '.join(tokens)}\n{salt}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX_CHARS]


@dataclass
class TemplateCluster:
    id: str
    tokens: list[str]
    size: int = 1
    path: list[str] = field(default_factory=list)  # tree keys to its leaf, for reloading

    @property
    def template(self) -> str:
        return " ".join(self.tokens)

    def covers(self, tokens: Sequence[str]) -> bool:
        """Whether every position of `tokens` agrees with the template (a wildcard with any)."""
        return len(tokens) == len(self.tokens) and all(
            a in (WILDCARD, b) for a, b in zip(self.tokens, tokens, strict=True)
        )

    def generalise(self, tokens: Sequence[str]) -> bool:
        """Turn the positions where `tokens` differ into wildcards; returns whether any did."""
        merged = [a if a == b else WILDCARD for a, b in zip(self.tokens, tokens, strict=True)]
        if merged == self.tokens:
            return False
        self.tokens = merged
        return True


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    clusters: list[str] = field(default_factory=list)  # ids, at leaves only


class TemplateMiner:
    def __init__(
        self,
        depth: int = 4,
        similarity: float = 0.7,
        max_children: int = 100,
        masks: Sequence[str] = DEFAULT_MASKS,
    ) -> None:
        if depth < 3:
            raise ValueError("depth counts the root and the length layer: at least 3")
        self.depth = depth
        self.similarity = similarity
        self.max_children = max_children
        self.masks = tuple(masks)
        self._patterns = [re.compile(m) for m in self.masks]
        self._root = _Node()
        self.clusters: dict[str, TemplateCluster] = {}
        # Counts changes a saved state would show (a new cluster, a template generalised), so
        # a caller saves only when there is something to save: sizes alone change constantly.
        self.revision = 0

    # -- mining -----------------------------------------------------------------------------
    def tokens(self, message: str) -> list[str]:
        for pattern in self._patterns:
            message = pattern.sub(WILDCARD, message)
        return message.split()

    def add(self, message: str) -> TemplateCluster:
        """Learn from `message`; returns the cluster it joined or started."""
        tokens = self.tokens(message)
        leaf, path = self._walk([str(len(tokens)), *self._keys(tokens)], create=True)
        assert leaf is not None
        best = self._best(leaf, tokens)
        if best is None:
            best = self._create(tokens, path, leaf)
        elif best.generalise(tokens):
            self.revision += 1
        best.size += 1
        return best

    def match(self, message: str) -> TemplateCluster | None:
        """The cluster `message` belongs to, without learning from it."""
        tokens = self.tokens(message)
        leaf = self._leaf(tokens, create=False)
        return None if leaf is None else self._best(leaf, tokens)

    def _create(self, tokens: list[str], path: list[str], leaf: _Node) -> TemplateCluster:
        for salt in count():
            cluster_id = template_id(tokens, salt)
            existing = self.clusters.get(cluster_id)
            if existing is None:
                cluster = TemplateCluster(cluster_id, list(tokens), 0, path)
                self.clusters[cluster_id] = cluster
                leaf.clusters.append(cluster_id)
                self.revision += 1
                return cluster
            if existing.covers(tokens):
                # Created from these tokens on another branch: a merged state can route a
                # message differently from the miner that created its cluster. Same template,
                # same id; this leaf now finds it too.
                leaf.clusters.append(cluster_id)
                return existing
            # Otherwise two templates share a hash prefix: the newcomer takes the next salt.
        raise AssertionError("unreachable")

    def _leaf(self, tokens: list[str], create: bool) -> _Node | None:
        return self._walk([str(len(tokens)), *self._keys(tokens)], create)[0]

    def _keys(self, tokens: list[str]) -> list[str]:
        # Tokens with digits are likely values: they share one wildcard branch.
        return [WILDCARD if any(c.isdigit() for c in t) else t for t in tokens[: self.depth - 2]]

    def _walk(self, keys: list[str], create: bool) -> tuple[_Node | None, list[str]]:
        """The node `keys` lead to, and the keys actually taken (wildcards included)."""
        node, taken = self._root, []
        for depth, key in enumerate(keys):
            children = node.children
            if key in children:
                child: _Node | None = children[key]
            elif not create:
                key, child = WILDCARD, children.get(WILDCARD)
            elif depth > 0 and len(children) >= self.max_children:
                key = WILDCARD  # a full node: newcomers share one branch
                child = children.setdefault(key, _Node())
            else:
                child = children.setdefault(key, _Node())
            if child is None:
                return None, taken
            node = child
            taken.append(key)
        return node, taken

    def _place(self, cluster: TemplateCluster) -> None:
        """Put `cluster` at the leaf its path names, exactly (a loaded or merged cluster is
        found where its miner put it, whatever this tree's fill)."""
        node = self._root
        for key in cluster.path:
            node = node.children.setdefault(key, _Node())
        self.clusters[cluster.id] = cluster
        node.clusters.append(cluster.id)

    def _best(self, leaf: _Node, tokens: list[str]) -> TemplateCluster | None:
        best: TemplateCluster | None = None
        best_key = (-1.0, -1)
        for cluster_id in leaf.clusters:
            cluster = self.clusters[cluster_id]
            same = sum(a == b for a, b in zip(cluster.tokens, tokens, strict=True) if a != WILDCARD)
            wildcards = cluster.tokens.count(WILDCARD)
            # The share of positions that agree, a template's wildcard agreeing with anything.
            # (Drain proper does not count wildcards, which needs a similarity tuned per log
            # source; counting them lets one default serve: see docs/template-mining.md.)
            score = (same + wildcards) / len(tokens) if tokens else 1.0
            key = (score, wildcards)
            # Ties go to the smaller id, not the older cluster: miners holding the same
            # clusters (merged in any order) then pick the same one.
            if key > best_key or (key == best_key and best is not None and cluster.id < best.id):
                best, best_key = cluster, key
        if best is None or best_key[0] < self.similarity:
            return None
        return best

    # -- merging ----------------------------------------------------------------------------
    def merge(self, other: TemplateMiner) -> None:
        """Take in another miner's clusters (another replica's saved state).

        Every id of either miner is kept. A cluster only `other` has is added where its path
        leads; for an id both have, the template becomes the one covering both (they were
        created from the same tokens, so only wildcards are added) and the larger size is
        kept. Merging the same state twice changes nothing.
        """
        if self.settings() != other.settings():
            raise ValueError(
                f"cannot merge template miners with different settings: "
                f"{self.settings()} and {other.settings()}"
            )
        for theirs in other.clusters.values():
            mine = self.clusters.get(theirs.id)
            if mine is None:
                self._place(
                    TemplateCluster(theirs.id, list(theirs.tokens), theirs.size, list(theirs.path))
                )
                self.revision += 1
                continue
            # Different lengths under one id would be a hash collision across miners: ours
            # is kept (see ID_HEX_CHARS for the odds).
            if len(mine.tokens) == len(theirs.tokens) and mine.generalise(theirs.tokens):
                self.revision += 1
            mine.size = max(mine.size, theirs.size)

    def settings(self) -> dict[str, object]:
        return {
            "depth": self.depth,
            "similarity": self.similarity,
            "max_children": self.max_children,
            "masks": list(self.masks),
        }

    # -- persistence ------------------------------------------------------------------------
    def to_state(self) -> dict[str, object]:
        """The state as plain JSON values; clusters in the order they were added."""
        return {
            "format": STATE_FORMAT,
            **self.settings(),
            "clusters": [
                {"id": c.id, "tokens": c.tokens, "size": c.size, "path": c.path}
                for c in self.clusters.values()
            ],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_state())

    @classmethod
    def from_state(cls, state: dict) -> TemplateMiner:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported template miner state format {state.get('format')!r}")
        miner = cls(state["depth"], state["similarity"], state["max_children"], state["masks"])
        for entry in state["clusters"]:
            miner._place(
                TemplateCluster(
                    str(entry["id"]),
                    [str(t) for t in entry["tokens"]],
                    int(entry["size"]),
                    [str(k) for k in entry["path"]],
                )
            )
        return miner

    @classmethod
    def from_json(cls, data: bytes) -> TemplateMiner:
        return cls.from_state(orjson.loads(data))
