"""A template miner's saved state, and merging another replica's state into a miner.

The state is plain JSON (no pickle) with a format version: the clusters (id, tokens, the
separators their text is written with, size) in the order they were added, the aliases (ids
merged into another template) and the variants (token lists seen, with their cluster). Slots
and caches are not saved: they are rebuilt from the variants on load. A state of an older
format was mined by another algorithm, whose templates and ids this miner cannot reproduce:
it is refused with a message to retrain, never re-keyed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sidecar.templates.shapes import SEP, TemplateCluster, slot_entries

if TYPE_CHECKING:
    from sidecar.templates.drain import TemplateMiner

__all__ = ["STATE_FORMAT", "OutdatedMinerState", "to_state", "load_state", "merge"]

# 3: masking, variants, slots and aliases (issue 15). 2: Drain's tree and similarity.
STATE_FORMAT = 3


class OutdatedMinerState(ValueError):
    """A state saved by an older miner: its ids cannot be reproduced by this one."""


def to_state(miner: TemplateMiner) -> dict[str, object]:
    return {
        "format": STATE_FORMAT,
        **miner.settings(),
        "clusters": [
            {"id": c.id, "tokens": c.tokens, "seps": c.seps, "size": c.size}
            for c in miner.clusters.values()
        ],
        "aliases": miner.aliases,
        "variants": miner.variants,
    }


def load_state(miner: TemplateMiner, state: dict) -> None:
    """Fill an empty `miner` from `to_state`'s values."""
    found = state.get("format")
    if isinstance(found, int) and found < STATE_FORMAT:
        raise OutdatedMinerState(
            f"the template miner state has format {found}, saved by an older miner whose "
            f"templates and ids this one (format {STATE_FORMAT}) cannot reproduce: retrain "
            "(`train`) to mine templates anew, so that model and state share one set of ids"
        )
    if found != STATE_FORMAT:
        raise ValueError(f"unsupported template miner state format {found!r}")
    for entry in state["clusters"]:
        cluster = TemplateCluster(
            str(entry["id"]),
            [str(t) for t in entry["tokens"]],
            int(entry["size"]),
            [str(s) for s in entry["seps"]],
        )
        miner.clusters[cluster.id] = cluster
        miner._index(cluster)
    miner.aliases = {str(k): str(v) for k, v in state["aliases"].items()}
    for key, cluster_id in state["variants"].items():
        words = key.split(SEP) if key else []
        miner._add_variant(str(key), words, slot_entries(words), str(cluster_id))


def merge(miner: TemplateMiner, other: TemplateMiner) -> None:
    """Take in `other`'s clusters (another replica's saved state).

    Every id of either miner stays usable: the union of the clusters and of the aliases. For
    an id both hold, the template covering both. Two templates one side merged, or that the
    two sides gave one variant (the same token list), are merged here too, into the smaller
    id: the choice every miner makes, so replicas that took in each other's states label
    every message alike. Merging the same state twice changes nothing.
    """
    if miner.settings() != other.settings():
        raise ValueError(
            f"cannot merge template miners with different settings: "
            f"{miner.settings()} and {other.settings()}"
        )
    added = []
    for theirs in other.clusters.values():
        mine = miner.clusters.get(theirs.id)
        if mine is None and theirs.id not in miner.aliases:
            mine = TemplateCluster(theirs.id, list(theirs.tokens), 0, list(theirs.seps))
            miner.clusters[mine.id] = mine
            miner._index(mine)
            miner.revision += 1
            added.append(mine.id)
        if mine is None:  # merged away here: its template joins the one that took it
            mine = miner.clusters[miner.resolve(theirs.id)]
        if theirs.tokens != mine.tokens:
            miner._merge_into([mine.id], theirs.tokens, theirs.seps)
        mine = miner.clusters[miner.resolve(mine.id)]
        mine.size = max(mine.size, theirs.size)
    for gone in other.aliases:
        _join(miner, gone, other.resolve(gone))
    # A template taken in that one already here covers, or that covers one here, is the same
    # statement found by both sides (from different first messages): one id for it.
    for cluster_id in added:
        cluster = miner.clusters.get(miner.resolve(cluster_id))
        if cluster is None:
            continue
        for covered in miner._covered_by(cluster):
            _join(miner, covered, cluster.id)
        cluster = miner.clusters[miner.resolve(cluster_id)]
        covering = miner._find(cluster.tokens, SEP.join(cluster.tokens))
        if covering is not None:
            _join(miner, covering.id, cluster.id)
    for key, theirs_id in other.variants.items():
        mine_id = miner.variants.get(key)
        if mine_id is None:
            words = key.split(SEP) if key else []
            miner._add_variant(key, words, slot_entries(words), other.resolve(theirs_id))
        else:
            _join(miner, mine_id, other.resolve(theirs_id))


def _join(miner: TemplateMiner, one: str, other: str) -> None:
    """Make `one` and `other` lead to the same template (the smaller id's)."""
    a, b = miner.resolve(one), miner.resolve(other)
    if a == b or b not in miner.clusters:
        return
    if a in miner.clusters:
        low, high = sorted((a, b))
        miner._merge_into([low, high], miner.clusters[low].tokens, miner.clusters[low].seps)
    else:  # an id this miner never gave: it leads to the template it was merged into
        miner.aliases[a] = b
        miner.revision += 1
