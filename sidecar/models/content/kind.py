"""The content detector as a catalog entry: training, rebuilding and detector wiring.

The buffers' sizes, the typical tokens by template and position, and the calibration are JSON
in the manifest ("content", "calibration"); the statistics, the forest, the autoencoder and the
replay sample are the network's state_dict.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.base import (
    DetectorOptions,
    EpochHook,
    ModelKind,
    TrainedNet,
    UpdatedModel,
    manifest_entry,
)
from sidecar.models.calibration import Calibration, budget_report, threshold_for_budget
from sidecar.models.content.detector import ContentDetector
from sidecar.models.content.features import FEATURES
from sidecar.models.content.fit import fit_content
from sidecar.models.content.model import ContentConfig, ContentNet
from sidecar.models.content.online import update_content
from sidecar.types import LogEvent

__all__ = ["CONTENT"]

NAME = "content"

log = structlog.get_logger("sidecar.models.content")


def _fit(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: ContentConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    fitted = fit_content(streams, vocabulary, config, on_epoch)
    if fitted.stats.dropped:
        # The rarest (template, token) pairs were left out: they will look unseen, as a token
        # met once or twice nearly does anyway; a larger cap keeps them.
        log.warning(
            "content_token_table_full",
            kept=len(fitted.stats.hashes),
            dropped=fitted.stats.dropped,
            max_entries=config.max_entries,
        )
    extra = {
        NAME: {
            "sizes": fitted.net.sizes(),
            "features": list(FEATURES),
            "typical": fitted.stats.typical,
            "entries_dropped": fitted.stats.dropped,
            "held_out_gated_share": round(fitted.gated_share, 6),
        },
        "calibration": fitted.calibration.to_json(),
    }
    return TrainedNet(fitted.net, fitted.summary, extra)


def _sizes(manifest: Mapping[str, object]) -> dict[str, int]:
    sizes = manifest_entry(manifest, NAME, "sizes", "content model sizes", dict)
    return {k: int(v) for k, v in sizes.items()}


def _typical(manifest: Mapping[str, object]) -> dict[str, dict[str, list[list[object]]]]:
    return manifest_entry(manifest, NAME, "typical", "typical tokens", dict)


def _empty(vocabulary: Vocabulary, config: ContentConfig, manifest) -> ContentNet:
    return ContentNet.shaped_like(vocabulary.size, _sizes(manifest), config)


def _detector(artifact, options: DetectorOptions) -> ContentDetector:
    calibration = Calibration.from_json(artifact.manifest["calibration"])
    # No top-g rule to fall back to: the budget sets the threshold under either verdict rule.
    threshold = threshold_for_budget(calibration, options.alert_budget, options.models_sharing)
    return ContentDetector(
        artifact.name,
        artifact.version,
        artifact.vocabulary,
        artifact.net,
        _typical(artifact.manifest),
        calibration,
        threshold,
        artifact.config.window_size,
        artifact.config.min_messages,
    )


def _update(artifact, marked: list[MarkedWindow], options: DetectorOptions) -> UpdatedModel:
    calibration = Calibration.from_json(artifact.manifest["calibration"])
    result = update_content(
        artifact.net,
        artifact.vocabulary,
        _typical(artifact.manifest),
        marked,
        artifact.config,
        calibration,
    )
    section = dict(artifact.manifest.get(NAME) or {})
    report = {
        "epochs": result.epochs,
        "marks_learned": result.learned,
        "marks_without_text": result.without,
    }
    return UpdatedModel(
        artifact.vocabulary,
        result.net,
        report,
        {
            NAME: {**section, "sizes": result.net.sizes()},
            "calibration": {
                **result.calibration.to_json(),
                "at_budget": budget_report(
                    result.calibration, options.alert_budget, options.models_sharing
                ),
            },
        },
    )


CONTENT = ModelKind(
    name=NAME,
    config_type=ContentConfig,
    configure=lambda choices: ContentConfig(
        window_size=choices.window_size,
        epochs=choices.epochs,
        batch_size=choices.batch_size,
        seed=choices.seed,
    ),
    fit=_fit,
    empty_net=_empty,
    detector=_detector,
    update=_update,
)
