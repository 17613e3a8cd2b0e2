"""An analyst's false-positive mark, read back from the anomaly document it was set on: the
window, the observed event and the parameter deviations that every model kind's online update
learns from (sidecar/pipeline/annotate.py writes the document this reads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MarkedWindow", "marked_from_document"]


@dataclass(frozen=True, slots=True)
class MarkedWindow:
    """A detection an analyst marked as a false positive, as stored on the anomaly document."""

    document_id: str
    window_keys: tuple[str, ...]  # key labels, oldest first (without padding)
    observed: tuple[str, str]  # (EVENTID, SEVERITY) of the flagged event
    message: str | None = None  # its MESSAGE excerpt: LogAnomaly's template for a new key
    # The parameter model's normalised residual per value (timing first; None: not observed).
    deviations: tuple[float | None, ...] = ()


def marked_from_document(document_id: str, source: Mapping[str, Any]) -> MarkedWindow:
    """The marked window as the anomaly document records it (sidecar/pipeline/annotate.py)."""
    event = source.get("event") or {}
    values = (source.get("parameters") or {}).get("values") or ()
    return MarkedWindow(
        document_id=document_id,
        window_keys=tuple((source.get("window") or {}).get("keys") or ()),
        observed=(str(event.get("id") or ""), str(event.get("severity") or "")),
        message=event.get("message"),
        deviations=tuple(
            _number(v.get("deviation")) if isinstance(v, dict) else None for v in values
        ),
    )


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
