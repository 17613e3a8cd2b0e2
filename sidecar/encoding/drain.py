"""Template mining for logs without an event id: a Drain-style fixed-depth parse tree.

Drain (He et al., ICWS'17) sends a message down a tree of fixed depth: first by its number of
tokens, then by its first few tokens (tokens with digits go to a wildcard branch, so variable
values do not split the tree), and at the leaf picks the cluster whose template shares the most
tokens with it. Above a similarity threshold the message joins that cluster and the positions
where they differ become `<*>`; otherwise it starts a new cluster.

Ids are given once, in creation order, and saved with the clusters, so a template keeps its id
across restarts even as its text generalises. State is plain JSON (no pickle): the tree is
rebuilt from the clusters when loaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

__all__ = ["TemplateMiner", "TemplateCluster", "DEFAULT_MASKS", "WILDCARD"]

WILDCARD = "<*>"
STATE_FORMAT = 1

# Variable parts masked before mining: they carry no meaning for the template and would
# otherwise scatter one message type over many clusters. Order matters (most specific first).
DEFAULT_MASKS: tuple[str, ...] = (
    r"blk_-?\d+",  # HDFS block ids
    r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?",  # IPv4 with an optional port
    r"\b0x[0-9a-fA-F]+\b",  # hex values
    r"(?<![A-Za-z0-9])[-+]?\d+(?:\.\d+)?(?![A-Za-z0-9])",  # stand-alone numbers
)


@dataclass
class TemplateCluster:
    id: int
    tokens: list[str]
    size: int = 1
    path: list[str] = field(default_factory=list)  # tree keys to its leaf, for reloading

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    clusters: list[int] = field(default_factory=list)  # ids, at leaves only


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
        self.clusters: dict[int, TemplateCluster] = {}

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
            best = TemplateCluster(len(self.clusters) + 1, tokens, 1, path)
            self.clusters[best.id] = best
            leaf.clusters.append(best.id)
            return best
        best.tokens = [a if a == b else WILDCARD for a, b in zip(best.tokens, tokens, strict=True)]
        best.size += 1
        return best

    def match(self, message: str) -> TemplateCluster | None:
        """The cluster `message` belongs to, without learning from it."""
        tokens = self.tokens(message)
        leaf = self._leaf(tokens, create=False)
        return None if leaf is None else self._best(leaf, tokens)

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

    def _best(self, leaf: _Node, tokens: list[str]) -> TemplateCluster | None:
        best, best_key = None, (-1.0, -1)
        for cluster_id in leaf.clusters:
            cluster = self.clusters[cluster_id]
            same = sum(a == b for a, b in zip(cluster.tokens, tokens, strict=True) if a != WILDCARD)
            wildcards = cluster.tokens.count(WILDCARD)
            # The share of positions that agree, a template's wildcard agreeing with anything.
            # (Drain proper does not count wildcards, which needs a similarity tuned per log
            # source; counting them lets one default serve: see docs/template-mining.md.)
            score = (same + wildcards) / len(tokens) if tokens else 1.0
            if (score, wildcards) > best_key:
                best, best_key = cluster, (score, wildcards)
        if best is None or best_key[0] < self.similarity:
            return None
        return best

    # -- persistence ------------------------------------------------------------------------
    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": STATE_FORMAT,
                "depth": self.depth,
                "similarity": self.similarity,
                "max_children": self.max_children,
                "masks": list(self.masks),
                "clusters": [
                    {"id": c.id, "tokens": c.tokens, "size": c.size, "path": c.path}
                    for c in self.clusters.values()
                ],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> TemplateMiner:
        state = orjson.loads(data)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported template miner state format {state.get('format')!r}")
        miner = cls(state["depth"], state["similarity"], state["max_children"], state["masks"])
        for entry in sorted(state["clusters"], key=lambda c: c["id"]):
            cluster = TemplateCluster(int(entry["id"]), list(entry["tokens"]), int(entry["size"]))
            miner.clusters[cluster.id] = cluster
            # The path the cluster was created on, so it is found where it always was.
            leaf, _ = miner._walk(list(entry["path"]), create=True)
            assert leaf is not None
            leaf.clusters.append(cluster.id)
        return miner
