"""The periodic model as a catalog entry: training, rebuilding and detector wiring.

The known periods and the calibration are JSON in the manifest ("periodic", "calibration");
the chain rule is the network's one buffer.
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
from sidecar.models.periodic.detector import PeriodicDetector
from sidecar.models.periodic.fit import fit_periodic
from sidecar.models.periodic.model import KnownPeriods, PeriodicConfig, PeriodicNet
from sidecar.types import LogEvent

__all__ = ["PERIODIC"]

NAME = "periodic"


def _fit(
    streams: Mapping[str, list[LogEvent]],
    _vocabulary: Vocabulary,
    config: PeriodicConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    fitted = fit_periodic(streams, config)
    extra = {
        NAME: {"known_periods": fitted.known.to_json()},
        "calibration": fitted.calibration.to_json(),
    }
    return closed_form(fitted.net, fitted.summary, on_epoch, extra)


def _known(manifest: Mapping[str, object]) -> KnownPeriods:
    return KnownPeriods.from_json(
        manifest_entry(manifest, NAME, "known_periods", "known periods", dict)
    )


def _empty(_vocabulary: Vocabulary, _config: PeriodicConfig, manifest) -> PeriodicNet:
    _known(manifest)
    return PeriodicNet()


def _detector(artifact, options: DetectorOptions) -> PeriodicDetector:
    config = artifact.config
    assert isinstance(config, PeriodicConfig)
    calibration = Calibration.from_json(artifact.manifest["calibration"])
    # Periods have no top-g rule to fall back to: the budget sets their threshold under
    # either verdict rule.
    threshold = threshold_for_budget(calibration, options.alert_budget, options.models_sharing)
    return PeriodicDetector(
        artifact.name,
        artifact.version,
        artifact.net.chain_rule(),
        _known(artifact.manifest),
        HostGrouping(config.host_group_pattern),
        calibration,
        threshold,
        config.window_size,
    )


PERIODIC = ModelKind(
    name=NAME,
    config_type=PeriodicConfig,
    configure=lambda choices: PeriodicConfig(host_group_pattern=choices.host_group_pattern),
    fit=_fit,
    empty_net=_empty,
    detector=_detector,
)
