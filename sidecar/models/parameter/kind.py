"""DeepLog's parameter value model as a catalog entry: training, rebuilding and detector wiring.

The per-key slots (which numbers of MESSAGE a key's vector holds) are JSON in the manifest,
under "parameters"; everything numeric is in the network's state_dict. So are the deviations
analysts accepted (the online update: a marked false positive widens its key's accepted band
on each value, "accepted" in the manifest, readable by anyone inspecting a version).
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.vocabulary import RESERVED, Vocabulary, key_label
from sidecar.errors import ModelError
from sidecar.models.base import (
    DetectorOptions,
    EpochHook,
    ModelKind,
    TrainedNet,
    UpdatedModel,
)
from sidecar.models.fitting import EpochProgress
from sidecar.models.parameter.detector import ParameterDetector
from sidecar.models.parameter.fit import fit_parameter_model
from sidecar.models.parameter.model import AcceptedDeviations, ParameterConfig, ParameterNet
from sidecar.types import LogEvent

__all__ = ["PARAMETERS", "manifest_slots", "manifest_accepted", "ACCEPT_MARGIN"]

NAME = "parameters"
# A marked deviation is accepted with room to spare, so the next occurrence of the same
# pattern, a little further out, is not flagged again; one far beyond it still is.
ACCEPT_MARGIN = 1.25


def _fit(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: ParameterConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    fitted = fit_parameter_model(streams, vocabulary, config)
    if on_epoch is not None:
        # Closed form: one "epoch", nothing held out.
        on_epoch(EpochProgress(1, 1, fitted.summary.losses[0], None, fitted.summary.seconds, 0, 1))
    return TrainedNet(fitted.net, fitted.summary, {NAME: {"slots": fitted.slots, **fitted.stats}})


def manifest_slots(manifest: Mapping[str, object], vocabulary: Vocabulary) -> list[list[str]]:
    """The slots by key id, checked against the vocabulary they were saved with."""
    section = manifest.get(NAME)
    slots = section.get("slots") if isinstance(section, dict) else None
    if not isinstance(slots, list) or len(slots) != vocabulary.size:
        raise ModelError(
            f"model {manifest.get('version')}: the manifest has no parameter slots for its "
            f"{vocabulary.size} key ids; retrain it"
        )
    return [[str(s) for s in key_slots] for key_slots in slots]


def manifest_accepted(
    manifest: Mapping[str, object], vocabulary: Vocabulary, dims: int
) -> AcceptedDeviations | None:
    """The accepted bands by key id, or None when analysts have accepted nothing yet."""
    section = manifest.get(NAME)
    entries = section.get("accepted") if isinstance(section, dict) else None
    if not entries:
        return None
    ids = {vocabulary.label_of(i): i for i in range(RESERVED, vocabulary.size)}
    accepted = AcceptedDeviations.none(vocabulary.size, dims)
    for label, band in entries.items():
        key = ids.get(label)
        if key is None:
            continue  # a key the vocabulary lost: nothing to accept it on
        accepted.below[key, :] = band["below"][:dims]
        accepted.above[key, :] = band["above"][:dims]
    return accepted


def accept_marked(
    accepted: Mapping[str, Mapping[str, list[float]]], marked: list[MarkedWindow], dims: int
) -> tuple[dict[str, dict[str, list[float]]], list[str], int]:
    """The bands widened to take in each mark's recorded deviations (times ACCEPT_MARGIN);
    also the keys widened and the number of marks that recorded no deviation to learn."""
    bands = {k: {"below": list(b["below"]), "above": list(b["above"])} for k, b in accepted.items()}
    widened: list[str] = []
    without = 0
    for mark in marked:
        deviations = list(mark.deviations[:dims])
        if not any(d is not None for d in deviations):
            without += 1  # not a parameter anomaly document (or edited): nothing to widen
            continue
        label = key_label(*mark.observed)
        band = bands.setdefault(label, {"below": [0.0] * dims, "above": [0.0] * dims})
        for d, residual in enumerate(deviations):
            if residual is None:
                continue
            side = band["above"] if residual > 0 else band["below"]
            side[d] = round(max(side[d], abs(residual) * ACCEPT_MARGIN), 6)
        widened.append(label)
    return bands, sorted(set(widened)), without


def _update(artifact, marked: list[MarkedWindow], options: DetectorOptions) -> UpdatedModel:
    section = dict(artifact.manifest.get(NAME) or {})
    bands, widened, without = accept_marked(
        section.get("accepted") or {}, marked, artifact.net.dims
    )
    report = {"epochs": 0, "accepted_keys": widened, "marks_without_deviations": without}
    return UpdatedModel(
        artifact.vocabulary, artifact.net, report, {NAME: {**section, "accepted": bands}}
    )


def _empty(vocabulary: Vocabulary, config: ParameterConfig, manifest) -> ParameterNet:
    manifest_slots(manifest, vocabulary)  # refuse a manifest the detector could not use
    return ParameterNet.from_config(vocabulary.size, config)


def _detector(artifact, options: DetectorOptions) -> ParameterDetector:
    config = artifact.config
    assert isinstance(config, ParameterConfig)
    confidence = options.parameter_confidence or config.confidence
    return ParameterDetector(
        artifact.name,
        artifact.version,
        artifact.vocabulary,
        artifact.net,
        manifest_slots(artifact.manifest, artifact.vocabulary),
        config.window_size,
        confidence,
        config.min_error,
        manifest_accepted(artifact.manifest, artifact.vocabulary, artifact.net.dims),
    )


PARAMETERS = ModelKind(
    name=NAME,
    config_type=ParameterConfig,
    configure=lambda choices: ParameterConfig(
        window_size=choices.window_size, confidence=choices.parameter_confidence
    ),
    fit=_fit,
    empty_net=_empty,
    detector=_detector,
    update=_update,
)
