"""Memory a cycle freed goes back to the system (sidecar/app/memory.py)."""

from __future__ import annotations

import ctypes.util

import pytest
from structlog.testing import capture_logs

from sidecar.app.memory import MemoryReleaser, resident_bytes

MIB = 1 << 20


def test_the_release_reports_how_far_the_resident_set_shrank() -> None:
    calls: list[int] = []
    readings = iter([700 * MIB, 640 * MIB, 640 * MIB, 641 * MIB])

    def trim(pad: int) -> int:
        calls.append(pad)
        return 1

    release = MemoryReleaser(trim=trim, resident=lambda: next(readings))
    assert release() == 60 * MIB
    # The resident set grew meanwhile (another thread allocated): nothing was released.
    assert release() == 0
    # Every free page goes, none kept as padding.
    assert calls == [0, 0]


def test_without_malloc_trim_it_does_nothing_and_says_so_once() -> None:
    with capture_logs() as logs:
        # As on a C library without malloc_trim (musl, macOS).
        release = MemoryReleaser(trim=None, resident=lambda: 1)
        assert not release.available
        assert [release(), release()] == [0, 0]
    assert [entry["event"] for entry in logs] == ["memory_release_unavailable"]


def test_a_process_without_proc_reports_nothing_released(tmp_path) -> None:
    assert resident_bytes(tmp_path / "absent") is None
    release = MemoryReleaser(trim=lambda _pad: 1, resident=lambda: None)
    assert release() == 0


@pytest.mark.skipif(
    ctypes.util.find_library("c") is None or "musl" in (ctypes.util.find_library("c") or ""),
    reason="glibc's malloc_trim is what is measured here",
)
def test_freed_heap_below_a_live_block_is_handed_back_on_glibc() -> None:
    release = MemoryReleaser()
    assert release.available
    release()
    # 125 MiB of 64 KiB blocks (under glibc's mmap threshold, so on the heap); the last one
    # stays alive above the others, so free() alone cannot shrink the heap from its top.
    blocks = [b"x" * 65_536 for _ in range(2_000)]
    pinned = blocks[-1]
    grown = resident_bytes()
    del blocks
    assert resident_bytes() == grown  # freed, yet still resident
    released = release()
    assert released > 100 * MIB
    assert len(pinned) == 65_536
