"""Links: which earlier event each event continues, by the identifiers their messages share.

A host's stream interleaves many sessions, processes, handles and jobs, so the event before an
event is often unrelated to it, and a model of the next key learns the interleaving as much as
the order. Messages say which events belong together: a logon ID, a handle or process ID, a
GUID, a block or job id. For each identifier an event carries, its *link* is the key of the
latest earlier event in the host's last `window` events that carried the same identifier, or
None when none did (the identifier is new there). Those links are what the sessions model
counts in training and scores after it.

Identifier shapes, not data-set strings: `0x` with at least four hex digits (shorter ones are
status codes such as 0x0), GUIDs, and a word joined to six or more digits by an underscore
(blk_-1608999687919862906, application_1445144423722_0020). Plain numbers are left alone:
ports, counts and sizes look the same and link unrelated events. Only the first
CONTEXT_MESSAGE_CHARS of a message are read, so an event read back from a saved tail links as
it did when first read.

A training range starts mid-way through every host's stream and cuts its sessions: a logoff
whose logon lies before the range looks like a logoff with no logon. So in training the events
less than a window from the range's start keep only the links they found; "new identifier" is
not known there and is left out (counted, the cut sessions of a few hundred hosts teach the
fleet that privileges without a logon happen). Scoring needs no such rule in `run`: a host's
first read carries the events before it as its context.

Pure: events in, lists out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sidecar.encoding.vocabulary import key_label
from sidecar.types import CONTEXT_MESSAGE_CHARS, LogEvent

__all__ = ["identifiers", "links"]

_IDENTIFIER = re.compile(
    r"\b0x[0-9a-fA-F]{4,}\b"
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    r"|\b[A-Za-z]+_-?\d{6,}(?:_\w+)?\b"
)
# Identifiers read from one message at most: a message listing hundreds of handles links
# nothing better for listing them all.
_MAX_PER_EVENT = 8


def identifiers(message: str | None) -> list[str]:
    """The identifiers a message carries, case-folded, in order of first appearance."""
    if not message:
        return []
    found = dict.fromkeys(
        m.group(0).lower() for m in _IDENTIFIER.finditer(message[:CONTEXT_MESSAGE_CHARS])
    )
    return list(found)[:_MAX_PER_EVENT]


def links(
    events: Sequence[LogEvent], first: int, window: int, cut: bool = False
) -> list[tuple[str, list[str | None]]]:
    """For events first..n-1: (the event's key, the link of each identifier it carries).
    `cut`: the host logged events before events[0] that are not given, so an identifier new
    within the first `window` events may not be new (no None link is reported there)."""
    latest: dict[str, tuple[int, str]] = {}  # identifier -> (position, key) of its last event
    out: list[tuple[str, list[str | None]]] = []
    for p in range(max(0, first - window), len(events)):
        event = events[p]
        key = key_label(event.event_id, event.severity)
        ids = identifiers(event.message)
        if p >= first:
            found: list[str | None] = []
            for identifier in ids:
                seen = latest.get(identifier)
                if seen is not None and seen[0] >= p - window:
                    found.append(seen[1])
                elif not (cut and p < window):
                    found.append(None)
            out.append((key, found))
        for identifier in ids:
            latest[identifier] = (p, key)
    return out
