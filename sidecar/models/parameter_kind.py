"""DeepLog's parameter value model as a catalog entry: training, rebuilding and detector wiring.

The per-key slots (which numbers of MESSAGE a key's vector holds) are JSON in the manifest,
under "parameters"; everything numeric is in the network's state_dict.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.models.catalog import DetectorOptions, EpochHook, ModelKind, TrainedNet
from sidecar.models.parameter_detector import ParameterDetector
from sidecar.models.parameters import ParameterConfig, ParameterNet, fit_parameter_model
from sidecar.types import LogEvent

__all__ = ["PARAMETERS", "manifest_slots"]

NAME = "parameters"


def _fit(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: ParameterConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    fitted = fit_parameter_model(streams, vocabulary, config)
    if on_epoch is not None:
        on_epoch(1, fitted.summary.losses[0])  # closed form: one "epoch"
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
    )


PARAMETERS = ModelKind(
    name=NAME,
    config_type=ParameterConfig,
    fit=_fit,
    empty_net=_empty,
    detector=_detector,
)
