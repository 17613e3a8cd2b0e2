"""What every model kind is made of, and the JSON form every model configuration shares.

A family (nextkey/, countvector/, parameter/) builds one ModelKind per model name from these
types; sidecar/models/catalog.py finds a kind by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import torch
from torch import nn

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.models.fitting import EpochHook, EpochProgress, TrainingSummary
from sidecar.ports import Detector
from sidecar.types import LogEvent

__all__ = [
    "JsonConfig",
    "TrainingChoices",
    "ModelKind",
    "TrainedNet",
    "UpdatedModel",
    "DetectorOptions",
    "EpochHook",
    "closed_form",
    "manifest_entry",
]


class JsonConfig:
    """A frozen dataclass configuration saved in a model's manifest. Reading ignores keys this
    version does not know, so a manifest written by a newer sidecar still loads."""

    __slots__ = ()

    def to_json(self) -> dict[str, object]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class TrainedNet:
    net: nn.Module
    summary: TrainingSummary
    # Model-specific JSON for the manifest, and extra tensors saved beside the weights.
    extra: dict[str, object] = field(default_factory=dict)
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DetectorOptions:
    """Scoring-time choices from settings; None keeps what the model was trained with."""

    top_g: int | None = None
    device: torch.device | None = None
    similarity_threshold: float | None = None
    min_probability: float = 0.0
    # The parameter model's one-sided confidence (None: the trained one).
    parameter_confidence: float | None = None
    # "calibrated": flag what is rarer than the false-alarm budget allows
    # (sidecar/models/calibration.py); "top_g": the papers' rule. Models without a
    # calibration fall back to top-g.
    verdict_rule: str = "calibrated"
    # Expected false incidents per host per day, shared by the models that run together.
    alert_budget: float = 0.05
    models_sharing: int = 1


@dataclass(frozen=True, slots=True)
class TrainingChoices:
    """What an operator chooses for training (SIDECAR_* settings); each kind picks the choices
    its configuration has."""

    window_size: int
    top_g: int
    epochs: int
    batch_size: int
    seed: int
    similarity_threshold: float
    parameter_confidence: float
    pca_variance: float
    pca_alpha: float
    autoencoder_quantile: float
    # How hosts are grouped for a group's rhythm (None: the name without its ordinal).
    host_group_pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ModelKind:
    name: str
    config_type: type[JsonConfig]  # a frozen dataclass with a window_size
    # the operator's choices -> this kind's training configuration
    configure: Callable[[TrainingChoices], Any]
    # (per-host streams, fitted vocabulary, config, epoch hook) -> trained network
    fit: Callable[[Mapping[str, list[LogEvent]], Vocabulary, Any, EpochHook | None], TrainedNet]
    # (vocabulary, config, manifest) -> an untrained network of the saved shape
    empty_net: Callable[[Vocabulary, Any, Mapping[str, object]], nn.Module]
    # (artifact, options) -> detector
    detector: Callable[[Any, DetectorOptions], Detector]
    # (artifact, windows marked as false positives, options) -> the updated model; None for
    # kinds without an online update (their false positives wait for the next retraining).
    update: Callable[[Any, Any, DetectorOptions], UpdatedModel] | None = None


@dataclass(frozen=True, slots=True)
class UpdatedModel:
    """An online update's result: to be stored as a new version whose parent is the old."""

    vocabulary: Vocabulary
    net: nn.Module
    report: dict[str, object]
    # Manifest entries that changed (e.g. LogAnomaly's key templates after new keys).
    manifest_changes: dict[str, object] = field(default_factory=dict)
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


def closed_form(
    net: nn.Module,
    summary: TrainingSummary,
    on_epoch: EpochHook | None,
    extra: dict[str, object],
) -> TrainedNet:
    """A fit without a training loop as the catalog expects it: one "epoch" reported, nothing
    to stop early."""
    if on_epoch is not None:
        on_epoch(EpochProgress(1, 1, 0.0, None, summary.seconds, 0, 1))
    return TrainedNet(net, summary, extra)


def manifest_entry(manifest: Mapping[str, object], section: str, key: str, what: str, kind: type):
    """`manifest[section][key]`, which must be a `kind`; a ModelError naming `what` otherwise
    (a model saved by a version that did not write it must be retrained)."""
    entries = manifest.get(section)
    value = entries.get(key) if isinstance(entries, dict) else None
    if not isinstance(value, kind):
        raise ModelError(f"model {manifest.get('version')}: the manifest has no {what}; retrain it")
    return value
