"""Where a re-read after late documents starts: at the late bucket, or earlier at the bucket of
the first member of an incident reaching into it, so the re-read forms that incident again
from its start; never before the lateness window, whose bucket counts are all a host keeps."""

from __future__ import annotations

from sidecar.pipeline.lateness import lateness_plan, rebuild_start
from sidecar.types import StoredIncident

# A 600 s window read up to 1,000,000 ms: buckets of 60 s, aligned, from 360,000.
PLAN = lateness_plan(600_000, 1_000_000)


def incident(first_ms: int, last_ms: int, name: str = "inc-a") -> StoredIncident:
    return StoredIncident(name, first_ms, last_ms, revision=7)


def test_the_window_is_cut_into_aligned_buckets() -> None:
    assert (PLAN.floor_ms, PLAN.bucket_ms) == (360_000, 60_000)
    assert [PLAN.bucket_of(t) for t in (360_000, 419_999, 420_000, 905_123)] == [
        360_000,
        360_000,
        420_000,
        900_000,
    ]


def test_without_incidents_in_reach_the_re_read_starts_at_the_late_bucket() -> None:
    earlier = incident(400_000, 500_000)  # ended before the late bucket
    assert rebuild_start(600_000, [], PLAN) == (600_000, [])
    assert rebuild_start(600_000, [earlier], PLAN) == (600_000, [])


def test_an_incident_reaching_into_the_late_bucket_moves_the_start_to_its_first_member() -> None:
    reaching = incident(512_345, 640_000)
    assert rebuild_start(600_000, [reaching], PLAN) == (480_000, [reaching])


def test_moving_back_takes_in_an_earlier_incident_that_ends_in_the_new_first_bucket() -> None:
    """The bucket of the reaching incident's first member holds the end of another: it is
    formed again too, or the re-read would start a second copy of its tail."""
    tail_end = incident(430_000, 481_000, "inc-old")
    reaching = incident(495_000, 640_000, "inc-new")
    start, reformed = rebuild_start(600_000, [tail_end, reaching], PLAN)
    assert start == 420_000
    assert [i.id for i in reformed] == ["inc-old", "inc-new"]


def test_an_incident_begun_before_the_window_cannot_be_formed_again() -> None:
    storm = incident(100_000, 700_000)  # began before the floor at 360,000
    assert rebuild_start(600_000, [storm], PLAN) is None
