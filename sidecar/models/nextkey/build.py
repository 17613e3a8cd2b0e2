"""A next-key artifact (DeepLog or LogAnomaly) -> a ready detector, with LogAnomaly's template
matcher and the calibrated threshold for the false-alarm budget."""

from __future__ import annotations

import numpy as np
import structlog
import torch

from sidecar.encoding.semantics import SemanticSpace
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.calibration import threshold_for_budget
from sidecar.models.nextkey.calibration import NextKeyCalibration
from sidecar.models.nextkey.detector import NextKeyDetector
from sidecar.models.nextkey.loganomaly import LogAnomalyConfig, LogAnomalyNet, TemplateMatcher
from sidecar.workflows.learn import WorkflowSet

log = structlog.get_logger("sidecar.models")

__all__ = ["build_detector", "calibration_of", "template_matcher"]


def template_matcher(artifact: ModelArtifact, threshold: float | None = None) -> TemplateMatcher:
    net = artifact.net
    assert isinstance(net, LogAnomalyNet) and isinstance(artifact.config, LogAnomalyConfig)
    semantics = artifact.manifest["semantics"]
    space = SemanticSpace(
        tuple(semantics["words"]),
        net.word_vectors.detach().cpu().numpy(),
        np.asarray(semantics["idf"], dtype=np.float32),
    )
    return TemplateMatcher(
        artifact.vocabulary,
        space,
        net.key_vectors.detach().cpu().numpy(),
        semantics["key_templates"],
        threshold if threshold is not None else artifact.config.similarity_threshold,
    )


def calibration_of(artifact: ModelArtifact) -> NextKeyCalibration | None:
    data = artifact.manifest.get("calibration")
    return None if data is None else NextKeyCalibration.from_json(data)  # type: ignore[arg-type]


def build_detector(
    artifact: ModelArtifact,
    top_g: int | None = None,
    device: torch.device | None = None,
    similarity_threshold: float | None = None,
    min_probability: float = 0.0,
    *,
    verdict_rule: str = "top_g",
    alert_budget: float = 0.05,
    models_sharing: int = 1,
) -> NextKeyDetector:
    """The detector of a next-key artifact. Calibrated verdicts need an artifact trained with a
    held-out calibration; older ones keep the top-g rule (and say so in the log)."""
    device = device or torch.device("cpu")
    encoder = None
    batch_size = 4_096
    limits = None
    if isinstance(artifact.net, LogAnomalyNet):
        encoder = template_matcher(artifact, similarity_threshold).encode
        limits = artifact.net.count_limits.detach().cpu().numpy()
        # The count view is [batch, h, vocabulary]: keep one batch near 128 MB of floats.
        per_row = artifact.config.window_size * artifact.vocabulary.size
        batch_size = max(64, min(4_096, 2**25 // max(1, per_row)))
    calibration = calibration_of(artifact)
    threshold = None
    if verdict_rule == "calibrated":
        if calibration is None:
            log.warning(
                "uncalibrated_model",
                model=artifact.name,
                version=artifact.version,
                fallback="top_g",
                fix="retrain to get calibrated verdicts",
            )
        else:
            threshold = threshold_for_budget(calibration.calibration, alert_budget, models_sharing)
    return NextKeyDetector(
        artifact.name,
        artifact.version,
        artifact.vocabulary,
        artifact.net.to(device),
        artifact.config.window_size,
        top_g if top_g is not None else artifact.config.top_g,
        device,
        encoder=encoder,
        batch_size=batch_size,
        count_limits=limits,
        min_probability=min_probability,
        workflows=WorkflowSet.from_manifest(artifact.manifest),
        calibration=calibration,
        threshold=threshold,
    )
