"""Handing memory a cycle freed back to the system, so a service that runs for days keeps a
flat footprint.

A cycle allocates and frees hundreds of megabytes of small and mid-sized blocks (events,
windows, numpy and torch buffers); a model reload frees the old detector's. glibc keeps freed
blocks in its heaps for reuse and returns a heap's pages only from its top, so one block still
alive high up holds everything below it: a process scoring 90,000 events a cycle (models
reloaded between cycles, the old ones freed) grew 623 -> 672 MiB over 8 cycles and never
shrank. `malloc_trim(0)` walks the heaps and returns every whole free page: there it released
57-69 MiB each time and took 4-9 ms. (The soak's other growth, one oneDNN kernel per LSTM
batch shape, is not freed memory; see `padded_rows` in sidecar/models/nextkey/core.py.)

Only glibc has it; elsewhere (musl, macOS) this does nothing and says so once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import structlog

__all__ = ["MemoryReleaser", "resident_bytes"]

log = structlog.get_logger("sidecar.app.memory")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(statm: Path = Path("/proc/self/statm")) -> int | None:
    """The process's resident set in bytes, or None where /proc is not there."""
    try:
        return int(statm.read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def _glibc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryReleaser:
    """Called after each cycle: returns freed heap pages to the system and reports how many
    bytes the resident set shrank by (0 where nothing could be released)."""

    def __init__(
        self,
        trim: Callable[[int], int] | Literal["glibc"] | None = "glibc",
        resident: Callable[[], int | None] = resident_bytes,
    ) -> None:
        # "glibc": look malloc_trim up in this process's C library; None: there is none.
        self._trim = _glibc_trim() if trim == "glibc" else trim
        self._resident = resident
        if self._trim is None:
            log.info("memory_release_unavailable", reason="no malloc_trim in this C library")

    @property
    def available(self) -> bool:
        return self._trim is not None

    def __call__(self) -> int:
        if self._trim is None:
            return 0
        before = self._resident()
        self._trim(0)
        after = self._resident()
        if before is None or after is None:
            return 0
        return max(0, before - after)
