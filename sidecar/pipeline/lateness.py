"""Late documents (pure): where a host's re-read begins, and which incidents it forms again.

A document that arrives after its neighbours were scored was missing from their context, and
a model may have flagged them for it (a handle closed whose open had not arrived yet). The
re-read scores the range again with the document in its place; the verdicts it no longer
reaches are withdrawn (VerdictStore). For that, the re-read must form every incident reaching
into the range from its first member, so it starts at the bucket of the earliest such member:
what it forms is then what one undisturbed pass over the same events forms.
"""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.types import LatenessPlan, StoredIncident

__all__ = ["LATENESS_BUCKETS", "lateness_plan", "rebuild_start"]

# The lateness window is checked in this many buckets: finer buckets re-read less after a late
# arrival, coarser ones keep the state documents and the check's aggregation small.
LATENESS_BUCKETS = 10


def lateness_plan(lateness_ms: int, upper_bound_ms: int) -> LatenessPlan:
    bucket_ms = max(1_000, lateness_ms // LATENESS_BUCKETS)
    start = upper_bound_ms - lateness_ms
    floor = start - start % bucket_ms  # aligned, so buckets line up from one cycle to the next
    return LatenessPlan(floor_ms=floor, bucket_ms=bucket_ms, checked_through_ms=floor - 1)


def rebuild_start(
    late_bucket_ms: int, stored: Sequence[StoredIncident], plan: LatenessPlan
) -> tuple[int, list[StoredIncident]] | None:
    """The bucket a withdrawing re-read starts at, and the stored incidents it forms again
    (those reaching into it); None when one of them began before the lateness window (a long
    storm), where the counts to re-read by are gone: the re-read then starts at the late
    bucket and takes nothing back."""
    start = late_bucket_ms
    while True:
        reaching = [i for i in stored if i.last_ms >= start]
        earliest = min((i.first_ms for i in reaching), default=start)
        if earliest < plan.floor_ms:
            return None
        if earliest >= start:
            return start, reaching
        bucket = plan.bucket_of(earliest)
        assert bucket is not None  # within the window: checked above
        start = bucket
