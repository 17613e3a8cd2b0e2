"""What a detection says about why it flagged an event: the keys a model expected, the
template an unseen key was read as, the normal workflow around it, the parameter values and
the unusual tokens. Frozen and slotted like sidecar/types.py, which re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ExpectedKey",
    "TemplateMatch",
    "NextStep",
    "WorkflowSummary",
    "ParameterValue",
    "ParameterDeviation",
    "UnusualToken",
    "ContentDeviation",
]


class ExpectedKey(NamedTuple):
    """A likely next key. A tuple: detections carry g of these each, so creation must be cheap."""

    key: str
    event_id: str
    severity: str
    probability: float


@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """How an event with an unseen key was read: its template and the closest known one."""

    template: str
    key_id: int  # the matched key, or the unknown slot when nothing was close enough
    closest_key: str | None
    closest_template: str | None
    similarity: float


class NextStep(NamedTuple):
    key: str
    probability: float


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """The normal workflow around an anomaly, for the host's group (see
    sidecar/workflows/diagnose.py)."""

    group: str
    from_key: str | None  # the key the expectation starts from (the last one the workflow knows)
    path_before: tuple[str, ...]
    expected_next: tuple[NextStep, ...]
    expected_path: tuple[str, ...]
    observed_transition_seen: bool


class ParameterValue(NamedTuple):
    """One dimension of a parameter model's vector: the time since the host's previous event
    or a number from MESSAGE, as observed (None if absent) and as predicted."""

    name: str  # "seconds_since_previous", "value_1", ...
    source: str  # where it comes from: "number after 'took'"
    observed: float | None
    expected: float
    # observed − expected, in the key's standard deviations of the log-scaled value
    deviation: float | None


@dataclass(frozen=True, slots=True)
class ParameterDeviation:
    """Why the parameter model flagged an event: its vector, the error and the threshold."""

    values: tuple[ParameterValue, ...]
    error: float  # MSE of the normalised vector (a dimension not observed counts as 0)
    threshold: float  # the error above which an event of this key is flagged
    deviating: str  # the name of the value furthest from its prediction


class UnusualToken(NamedTuple):
    """A token that made a message unusual for its template, and what the template usually
    has at that position."""

    token: str
    token_class: str  # word, num, hex, ip, path, alnum (sidecar/models/content/tokens.py)
    position: int  # among the message's tokens, from 0
    seen: int  # training messages of the template that held it (0: never)
    typical: tuple[tuple[str, float], ...]  # (token, share) at that position in training


@dataclass(frozen=True, slots=True)
class ContentDeviation:
    """Why the content detector flagged an event: its text against its template's."""

    surprise: float  # the autoencoder's reconstruction error of the event's features
    threshold: float  # the surprise at which the budget's p-value is reached
    forest_score: float  # the isolation forest's score (0-1): the first stage
    template_messages: int  # training messages of the template
    unseen: int  # tokens never seen with the template
    tokens: tuple[UnusualToken, ...]
