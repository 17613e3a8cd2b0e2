"""The volume model as a catalog entry: training, rebuilding and detector wiring.

The group names and the calibration are JSON in the manifest ("volume", "calibration"); the
hourly rates are the network's one buffer.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.models.base import DetectorOptions, EpochHook, ModelKind, TrainedNet
from sidecar.models.calibration import Calibration, threshold_for_budget
from sidecar.models.fitting import EpochProgress
from sidecar.models.volume.detector import VolumeDetector
from sidecar.models.volume.fit import fit_volume
from sidecar.models.volume.model import VolumeConfig, VolumeNet
from sidecar.types import LogEvent

__all__ = ["VOLUME"]

NAME = "volume"


def _fit(
    streams: Mapping[str, list[LogEvent]],
    _vocabulary: Vocabulary,
    config: VolumeConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    fitted = fit_volume(streams, config)
    if on_epoch is not None:
        # Closed form: one "epoch", nothing to stop early.
        on_epoch(EpochProgress(1, 1, 0.0, None, fitted.summary.seconds, 0, 1))
    extra = {
        NAME: {"groups": fitted.groups},
        "calibration": fitted.calibration.to_json(),
    }
    return TrainedNet(fitted.net, fitted.summary, extra)


def _groups(manifest: Mapping[str, object]) -> list[str]:
    section = manifest.get(NAME)
    groups = section.get("groups") if isinstance(section, dict) else None
    if not isinstance(groups, list):
        raise ModelError(
            f"model {manifest.get('version')}: the manifest has no volume groups; retrain it"
        )
    return [str(g) for g in groups]


def _empty(_vocabulary: Vocabulary, _config: VolumeConfig, manifest) -> VolumeNet:
    return VolumeNet(len(_groups(manifest)))


def _detector(artifact, options: DetectorOptions) -> VolumeDetector:
    config = artifact.config
    assert isinstance(config, VolumeConfig)
    calibration = Calibration.from_json(artifact.manifest["calibration"])
    # Silences have no top-g rule to fall back to: the budget sets their threshold under
    # either verdict rule.
    threshold = threshold_for_budget(calibration, options.alert_budget, options.models_sharing)
    return VolumeDetector(
        artifact.name,
        artifact.version,
        artifact.net.rhythm(_groups(artifact.manifest)),
        HostGrouping(config.host_group_pattern),
        calibration,
        threshold,
        config.window_size,
    )


VOLUME = ModelKind(
    name=NAME,
    config_type=VolumeConfig,
    configure=lambda choices: VolumeConfig(
        window_size=choices.window_size, host_group_pattern=choices.host_group_pattern
    ),
    fit=_fit,
    empty_net=_empty,
    detector=_detector,
)
