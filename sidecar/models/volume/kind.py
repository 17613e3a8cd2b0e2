"""The volume model as a catalog entry: training, rebuilding and detector wiring.

The group names, the groups' and the hosts' key counts, the silences' calibration and the
bursts' are JSON in the manifest ("volume", "calibration"); the hourly rates are the network's
one buffer.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.encoding.hostgroups import HostGrouping
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.base import (
    DetectorOptions,
    EpochHook,
    ModelKind,
    TrainedNet,
    closed_form,
    manifest_entry,
)
from sidecar.models.calibration import Calibration, threshold_for_budget
from sidecar.models.volume.bursts import KeyShares
from sidecar.models.volume.detector import Verdict, VolumeDetector
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
    extra = {
        NAME: {
            "groups": fitted.groups,
            "burst_calibration": fitted.burst_calibration.to_json(),
            "key_counts": fitted.shares.to_json(),
            "host_key_counts": fitted.shares.hosts_json(),
        },
        "calibration": fitted.calibration.to_json(),
        # Silences and bursts split the model's share of the budget (see _detector).
        "calibrated_verdicts": 2,
    }
    return closed_form(fitted.net, fitted.summary, on_epoch, extra)


def _groups(manifest: Mapping[str, object]) -> list[str]:
    return [str(g) for g in manifest_entry(manifest, NAME, "groups", "volume groups", list)]


def _empty(_vocabulary: Vocabulary, _config: VolumeConfig, manifest) -> VolumeNet:
    return VolumeNet(len(_groups(manifest)))


def _detector(artifact, options: DetectorOptions) -> VolumeDetector:
    config = artifact.config
    assert isinstance(config, VolumeConfig)
    calibration = Calibration.from_json(artifact.manifest["calibration"])
    section = artifact.manifest.get(NAME)
    section = section if isinstance(section, dict) else {}
    saved, counts = section.get("burst_calibration"), section.get("key_counts")
    # A model trained before bursts were judged has neither: silences only.
    judged = isinstance(saved, dict) and isinstance(counts, dict)
    bursts = Calibration.from_json(saved) if judged else None  # type: ignore[arg-type]
    # A model trained before hosts had their own shares judges every host by its group's.
    own = section.get("host_key_counts")
    shares = (
        KeyShares.from_json(counts, own if isinstance(own, dict) else None)  # type: ignore[arg-type]
        if judged
        else KeyShares.count({})
    )
    # Silences and bursts have no top-g rule to fall back to: the budget sets their thresholds
    # under either verdict rule, the model's share split between its two verdicts.
    sharing = options.models_sharing * (2 if bursts is not None else 1)
    return VolumeDetector(
        artifact.name,
        artifact.version,
        artifact.net.rhythm(_groups(artifact.manifest)),
        HostGrouping(config.host_group_pattern),
        Verdict(calibration, threshold_for_budget(calibration, options.alert_budget, sharing)),
        None
        if bursts is None
        else Verdict(bursts, threshold_for_budget(bursts, options.alert_budget, sharing)),
        shares,
        config.window_size,
        config.burst_events,
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
