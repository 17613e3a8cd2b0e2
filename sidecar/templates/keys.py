"""Event ids mined from MESSAGE for logs that carry none (SIDECAR_TEMPLATE_MINING).

`auto` keys an event without EVENTID by the template its MESSAGE belongs to, `always` keys
every event that way (EVENTID ignored). A mined id reads `T-<template id>`, so it never passes
for an id the source logged, and it is the same wherever the template miner state is shared:
training, every cycle, every replica (see docs/template-mining.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Literal

import structlog

from sidecar.ports import Labelled, MinerStore
from sidecar.templates.drain import DEFAULT_MAX_CLUSTERS, STATE_FORMAT, MinedEvent, TemplateMiner
from sidecar.types import InputStats, LogEvent, MiningStats

log = structlog.get_logger("sidecar.eventkeys")

__all__ = [
    "MiningMode",
    "MINED_PREFIX",
    "TemplateLabeller",
    "mined_event_id",
    "key_scheme_mismatch",
    "RARE_TEMPLATE_SIZE",
]

MiningMode = Literal["auto", "always"]
MINED_PREFIX = "T-"
# An event keyed by a template seen fewer times than this counts as keyed by a rare template:
# a high share means the miner splits statements (or the logs are new), as Elastic's
# categorization warns of "too many categories".
RARE_TEMPLATE_SIZE = 10


def mined_event_id(cluster_id: str) -> str:
    return f"{MINED_PREFIX}{cluster_id}"


def key_scheme_mismatch(
    event_ids: Sequence[str],
    trained_mode: str | None,
    mode: str,
    miner_format: int | None = STATE_FORMAT,
) -> str | None:
    """Why a model whose vocabulary holds `event_ids`, trained under `trained_mode` (None: not
    recorded) with a template miner of state format `miner_format` (None: before formats were
    recorded), cannot score events keyed under `mode`; None when it can.

    Keys the model knows but this mode can never produce, or keys this mode produces that the
    model was never shown, would make every event unknown to it: a flood of `unseen_key`
    annotations instead of detection. So would mined keys from another miner: its templates
    and ids are not this one's, and re-keying silently would score with the wrong keys."""
    fix = "retrain under this setting, or set it back to what the model was trained with"
    logged = [e for e in event_ids if not e.startswith(MINED_PREFIX)]
    if len(logged) < len(event_ids) and miner_format != STATE_FORMAT:
        return (
            f"its mined keys come from a template miner of state format "
            f"{miner_format or 'before 3'} and this sidecar mines format {STATE_FORMAT}, "
            "whose templates and ids differ; "
            "retrain (`train`) so that model and miner state share one set of ids"
        )
    if mode == "always" and logged:
        return (
            f"{len(logged)} of its {len(event_ids)} keys are EVENTIDs, and "
            f"SIDECAR_TEMPLATE_MINING=always keys every event by its mined template instead; {fix}"
        )
    if mode != "always" and trained_mode == "always":
        return (
            f"it was trained with SIDECAR_TEMPLATE_MINING=always (EVENTID ignored), and {mode} "
            f"keys events that carry EVENTID by it; {fix}"
        )
    if mode == "off" and event_ids and not logged:
        return (
            "its keys are all mined templates, and SIDECAR_TEMPLATE_MINING=off mines none "
            f"(events without EVENTID are rejected); {fix}"
        )
    return None


def _has_text(message: str | None) -> bool:
    return bool(message and message.strip())


class TemplateLabeller:
    """The EventKeys port over a template miner, loaded from its store when first needed.

    One labeller per cycle: what it learns in a cycle that then fails is never saved, and the
    redo starts again from the saved state, so it hands out the same ids.

    `known`: the mined ids the scoring models were trained on. When a template the models know
    is merged with one learned since (a new variant showed that a place varies) and the
    merged template's id is one they do not know, its events keep the known id: otherwise
    every familiar message of that statement would become an unseen key to them at once (a
    flood, measured on real HDFS lines: 2,481 annotations on 655 normal blocks from a handful
    of variants), while what is new in the variant is the content detector's to judge.
    """

    def __init__(
        self,
        mode: MiningMode,
        store: MinerStore,
        new_miner: Callable[[], TemplateMiner] = TemplateMiner,
        max_clusters: int = DEFAULT_MAX_CLUSTERS,
        known: Collection[str] = frozenset(),
    ) -> None:
        self.mode = mode
        self._known = frozenset(known)
        # survivor -> the ids merged into it, built when the aliases last changed (they only grow)
        self._absorbed: dict[str, list[str]] = {}
        self._absorbed_at = -1
        self._store = store
        self._new_miner = new_miner
        self._max_clusters = max_clusters
        self._miner: TemplateMiner | None = None
        self._saved_revision = 0
        self._full_logged = False

    @property
    def miner(self) -> TemplateMiner:
        if self._miner is None:
            self._miner = self._store.load() or self._new_miner()
            self._miner.max_clusters = self._max_clusters
            self._saved_revision = self._miner.revision
        return self._miner

    def label(self, events: Sequence[LogEvent], stats: InputStats) -> Labelled:
        labelled: list[LogEvent] = []
        mined = 0
        mining = MiningStats()
        miner: TemplateMiner | None = None
        for event in events:
            if self.mode == "auto" and event.event_id:
                labelled.append(event)
                continue
            if not _has_text(event.message):
                labelled.append(self._unlabelled(event, stats))
                continue
            if miner is None:
                miner = self.miner
                known, overflowed = len(miner.clusters), miner.overflowed
            cluster = miner.add(event.message)  # type: ignore[arg-type]
            labelled.append(replace(event, event_id=self._key(cluster.id)))
            mined += 1
            mining.rare_template_events += cluster.size < RARE_TEMPLATE_SIZE
        if miner is None:
            return Labelled(labelled, mined)
        if len(miner.clusters) < known or miner.aliases:
            # Templates merged during this batch: its earlier events take the merged id, so
            # one batch never holds two keys for one statement.
            labelled = self.final_ids(labelled)
        mining.templates_known = len(miner.clusters)
        mining.new_templates = max(0, len(miner.clusters) - known)
        mining.overflowed = miner.overflowed - overflowed
        if mining.overflowed and not self._full_logged:
            self._full_logged = True
            log.warning(
                "template_miner_full",
                max_clusters=miner.max_clusters,
                overflowed=mining.overflowed,
                advice="raise SIDECAR_TEMPLATE_MAX_CLUSTERS; until then new statements share "
                "one overflow key",
            )
        return Labelled(labelled, mined, mining)

    def final_ids(self, events: Sequence[LogEvent]) -> list[LogEvent]:
        """`events` with every mined id as the miner gives it now: an id whose template was
        merged into another since (a place learned to vary) becomes that template's. Training
        keys its events this way, so the model knows the ids the cycles will hand out."""
        miner = self.miner
        out = []
        for event in events:
            if event.event_id.startswith(MINED_PREFIX):
                now = self._key(miner.resolve(event.event_id[len(MINED_PREFIX) :]))
                if now != event.event_id:
                    event = replace(event, event_id=now)
            out.append(event)
        return out

    def _key(self, cluster_id: str) -> str:
        """The mined id of a template: its own, or, when the models do not know it, the
        least id merged into it that they do know."""
        key = mined_event_id(cluster_id)
        if not self._known or key in self._known or not self.miner.aliases:
            return key
        aliases = self.miner.aliases
        if self._absorbed_at != len(aliases):
            absorbed: dict[str, list[str]] = {}
            for alias in aliases:
                absorbed.setdefault(self.miner.resolve(alias), []).append(alias)
            self._absorbed, self._absorbed_at = absorbed, len(aliases)
        known = sorted(
            mined
            for alias in self._absorbed.get(cluster_id, ())
            if (mined := mined_event_id(alias)) in self._known
        )
        return known[0] if known else key

    def describe(self, message: str) -> MinedEvent | None:
        """The mined key of `message`, its template text and its values with their classes
        (for detectors that look at content), without learning from it."""
        return self.miner.parse(message)

    def _unlabelled(self, event: LogEvent, stats: InputStats) -> LogEvent:
        """An event nothing can be mined from: counted as bad input, keyed as before."""

        def sample() -> dict[str, object]:
            return {"host": event.host, "log_uuid": event.log_uuid[:100]}

        if self.mode == "auto":
            # The event has neither an id nor a message: as without template mining.
            stats.repair("missing_event_id", sample)
            return event
        # `always` ignores EVENTID: every event without a message shares the empty key.
        stats.repair("missing_message", sample)
        return replace(event, event_id="")

    def save(self) -> None:
        miner = self._miner
        if miner is None or miner.revision == self._saved_revision:
            return
        self._store.save(miner)
        self._saved_revision = miner.revision
