"""The sessions model as a catalog entry: training, rebuilding and detector wiring.

The link counts and the calibration are JSON in the manifest ("sessions", "calibration"); the
network is empty.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from sidecar.models.sessions.detector import SessionsDetector
from sidecar.models.sessions.fit import fit_sessions
from sidecar.models.sessions.model import LinkCounts, SessionsConfig, SessionsNet
from sidecar.types import LogEvent

__all__ = ["SESSIONS"]

NAME = "sessions"


def _fit(
    streams: Mapping[str, list[LogEvent]],
    _vocabulary: Vocabulary,
    config: SessionsConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    fitted = fit_sessions(streams, config)
    extra = {
        NAME: {"links": fitted.counts.to_json()},
        "calibration": fitted.calibration.to_json(),
    }
    return closed_form(fitted.net, fitted.summary, on_epoch, extra)


def _counts(manifest: Mapping[str, object]) -> LinkCounts:
    return LinkCounts.from_json(manifest_entry(manifest, NAME, "links", "link counts", dict))


def _empty(_vocabulary: Vocabulary, _config: SessionsConfig, manifest) -> SessionsNet:
    _counts(manifest)
    return SessionsNet()


def _detector(artifact, options: DetectorOptions) -> SessionsDetector:
    calibration = Calibration.from_json(artifact.manifest["calibration"])
    # No top-g rule to fall back to: the budget sets the threshold under either verdict rule.
    threshold = threshold_for_budget(calibration, options.alert_budget, options.models_sharing)
    return SessionsDetector(
        artifact.name,
        artifact.version,
        _counts(artifact.manifest),
        calibration,
        threshold,
        artifact.config.window_size,
    )


SESSIONS = ModelKind(
    name=NAME,
    config_type=SessionsConfig,
    configure=lambda _choices: SessionsConfig(),
    fit=_fit,
    empty_net=_empty,
    detector=_detector,
)
