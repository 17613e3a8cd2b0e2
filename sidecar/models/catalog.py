"""Every model kind the sidecar knows, in one table: how to train it, how to rebuild its
network from an artifact, and how to turn an artifact into a detector.

Adding a detector is adding a ModelKind here (and its name to settings.KNOWN_MODELS, which
cannot import torch); nothing else dispatches on model names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.models.fitting import EpochHook, TrainingSummary
from sidecar.ports import Detector
from sidecar.types import LogEvent

__all__ = [
    "ModelKind",
    "TrainedNet",
    "UpdatedModel",
    "DetectorOptions",
    "EpochHook",
    "KINDS",
    "kind_of",
]


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
    # "calibrated": flag what is rarer than the false-alarm budget allows (sidecar/calibration.py);
    # "top_g": the papers' rule. Models without a calibration fall back to top-g.
    verdict_rule: str = "calibrated"
    # Expected false incidents per host per day, shared by the models that run together.
    alert_budget: float = 0.05
    models_sharing: int = 1


@dataclass(frozen=True, slots=True)
class ModelKind:
    name: str
    config_type: Any  # a frozen dataclass with to_json / from_json and window_size
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


def _kinds() -> dict[str, ModelKind]:
    from sidecar.models import countvector_kinds, nextkey_kinds, parameter_kind

    kinds = [
        nextkey_kinds.DEEPLOG,
        nextkey_kinds.LOGANOMALY,
        countvector_kinds.PCA,
        countvector_kinds.AUTOENCODER,
        parameter_kind.PARAMETERS,
    ]
    return {k.name: k for k in kinds}


KINDS: dict[str, ModelKind] = _kinds()


def kind_of(name: str, where: str = "") -> ModelKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ModelError(
            f"model {where or name}: unknown model kind {name!r}; known: {sorted(KINDS)}"
        ) from None
