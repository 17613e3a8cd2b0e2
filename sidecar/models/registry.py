"""Artifact -> ready detector, per model kind."""

from __future__ import annotations

import numpy as np
import torch

from sidecar.encoding.semantics import SemanticSpace
from sidecar.encoding.workflow import WorkflowSet
from sidecar.models.artifacts import ModelArtifact
from sidecar.models.detector import NextKeyDetector
from sidecar.models.loganomaly import LogAnomalyConfig, LogAnomalyNet, TemplateMatcher

__all__ = ["build_detector", "template_matcher"]


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


def build_detector(
    artifact: ModelArtifact,
    top_g: int | None = None,
    device: torch.device | None = None,
    similarity_threshold: float | None = None,
    min_probability: float = 0.0,
) -> NextKeyDetector:
    device = device or torch.device("cpu")
    encoder = None
    batch_size = 4_096
    limits = None
    if artifact.name == "loganomaly":
        encoder = template_matcher(artifact, similarity_threshold).encode
        limits = artifact.net.count_limits.detach().cpu().numpy()
        # The count view is [batch, h, vocabulary]: keep one batch near 128 MB of floats.
        per_row = artifact.config.window_size * artifact.vocabulary.size
        batch_size = max(64, min(4_096, 2**25 // max(1, per_row)))
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
    )
