"""Training events kept on local disk, one host in memory at a time.

A training range from the cluster is millions of events; held as objects it costs hundreds of
bytes each, and `train --days 7` on a busy fleet would need more memory than the sidecar is
given. Training reads the range once, appends each host's events here, and every consumer
(template mining, the model kinds, workflows, the retraining gate) walks the hosts one by one.
What stays in memory is one host's stream and what the consumers keep of it: distinct windows
with counts, tallies, a few numbers per event for the closed-form models."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from itertools import starmap
from pathlib import Path
from typing import TypeVar

from sidecar.types import LogEvent

__all__ = ["SpilledStreams"]

# Events buffered (over all hosts) before they are appended to the hosts' files: a page or
# two per host in memory, few enough writes that spilling costs little next to reading.
BUFFER_EVENTS = 50_000

T = TypeVar("T")
_Row = tuple[int, str, str, str, "str | None", "str | None"]


def _row(event: LogEvent) -> _Row:
    return (
        event.timestamp_ms,
        event.log_uuid,
        event.event_id,
        event.severity,
        event.message,
        event.index,
    )


class SpilledStreams(Mapping[str, list[LogEvent]]):
    """Per-host event streams on disk, read back as lists in (timestamp, log_uuid) order.

    A Mapping like the dict of streams it replaces: `streams[host]` loads that host's events
    (a fresh list each time), iteration yields hosts in the order they were first added, and
    `streams[host] = events` replaces a host's stream (template mining re-keys events in
    place). `events` is the number of events held. The files live in a temporary directory
    under `directory` (the system's temporary directory by default; TMPDIR moves it) that
    `close()`, the end of a `with` block or the interpreter's exit removes."""

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, buffer_events: int = BUFFER_EVENTS
    ) -> None:
        self.directory = directory
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        self._root = Path(tempfile.mkdtemp(prefix="sidecar-training-", dir=directory))
        self._paths: dict[str, Path] = {}
        self._counts: dict[str, int] = {}
        self._buffer: dict[str, list[_Row]] = {}
        self._buffered = 0
        self._buffer_events = buffer_events
        # Hosts whose stream may be out of order: appended in pieces from an unsorted source.
        self._unsorted: set[str] = set()
        # What consumers derive from all the streams (sidecar/lifecycle/training.py: the
        # vocabulary, the workflows), kept until the streams change.
        self._derived: dict[object, object] = {}
        # Removed when this object goes away or the interpreter exits, whichever comes first.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._root, True)

    @classmethod
    def like(cls, streams: Mapping[str, list[LogEvent]]) -> Mapping[str, list[LogEvent]]:
        """An empty container of the same sort as `streams`: spilled beside spilled streams,
        a dict beside a dict (a derived set of streams is as large as the one it comes from)."""
        if isinstance(streams, SpilledStreams):
            return cls(streams.directory, streams._buffer_events)
        return {}

    # -- writing ----------------------------------------------------------------------------

    def add(self, host: str, events: Iterable[LogEvent], *, ordered: bool = True) -> None:
        """Append events to `host`'s stream; `ordered=False` when they may not follow the
        host's earlier ones in time (a file read line by line), so it is sorted when read."""
        rows = [_row(e) for e in events]
        if not rows:
            return
        self._derived.clear()
        if host not in self._paths:
            self._paths[host] = self._root / f"{len(self._paths):08d}.pickle"
            self._counts[host] = 0
        self._buffer.setdefault(host, []).extend(rows)
        self._counts[host] += len(rows)
        self._buffered += len(rows)
        if not ordered:
            self._unsorted.add(host)
        if self._buffered >= self._buffer_events:
            self.flush()

    def flush(self) -> None:
        for host, rows in self._buffer.items():
            with open(self._paths[host], "ab") as out:
                pickle.dump(rows, out, protocol=pickle.HIGHEST_PROTOCOL)
        self._buffer.clear()
        self._buffered = 0

    def __setitem__(self, host: str, events: list[LogEvent]) -> None:
        if host in self._paths:
            # Values change in place, so a walk over the hosts may replace each as it goes.
            self._buffered -= len(self._buffer.pop(host, []))
            self._paths[host].unlink(missing_ok=True)
            self._unsorted.discard(host)
            self._counts[host] = 0
            self._derived.clear()
        # Kept in the order given: the caller's order is the stream's (mining keeps it).
        self.add(host, events)

    # -- reading ----------------------------------------------------------------------------

    def __getitem__(self, host: str) -> list[LogEvent]:
        if host not in self._counts or not self._counts[host]:
            raise KeyError(host)
        rows: list[_Row] = []
        path = self._paths[host]
        if path.exists():
            with open(path, "rb") as data:
                while True:
                    try:
                        rows.extend(pickle.load(data))
                    except EOFError:
                        break
        rows.extend(self._buffer.get(host, ()))
        if host in self._unsorted:
            rows.sort(key=lambda r: (r[0], r[1]))
        return list(starmap(partial(LogEvent, host), rows))

    def __iter__(self) -> Iterator[str]:
        return (host for host, n in self._counts.items() if n)

    def __len__(self) -> int:
        return sum(1 for n in self._counts.values() if n)

    def __contains__(self, host: object) -> bool:
        return bool(self._counts.get(host, 0))  # type: ignore[call-overload]

    def derived(self, key: object, compute: Callable[[], T]) -> T:
        """`compute()` of these streams, once until they change: every model a command trains
        would otherwise walk all of them again for the same vocabulary and workflows."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]  # type: ignore[return-value]

    @property
    def events(self) -> int:
        return sum(self._counts.values())

    def count(self, host: str) -> int:
        """Events of `host`, without reading them."""
        return self._counts.get(host, 0)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._paths.values() if p.exists())

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._cleanup()
        self._paths.clear()
        self._counts.clear()
        self._buffer.clear()
        self._buffered = 0

    def __enter__(self) -> SpilledStreams:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
