"""Every model kind the sidecar knows, by name: the one place that maps a model name to its
kind. Kinds are imported on first use, by module path, so the catalog imports no family and no
family imports the catalog back.

Adding a detector is adding its family's ModelKind and one line to KIND_PATHS (and its name to
settings.KNOWN_MODELS, which cannot import torch); nothing else dispatches on model names.
"""

from __future__ import annotations

import importlib
from functools import cache

from sidecar.errors import ModelError
from sidecar.models.base import DetectorOptions, EpochHook, ModelKind, TrainedNet, UpdatedModel

__all__ = [
    "ModelKind",
    "TrainedNet",
    "UpdatedModel",
    "DetectorOptions",
    "EpochHook",
    "KIND_PATHS",
    "kind_of",
    "kinds",
]

# model name -> "module:attribute" of its ModelKind
KIND_PATHS: dict[str, str] = {
    "deeplog": "sidecar.models.nextkey.kind:DEEPLOG",
    "loganomaly": "sidecar.models.nextkey.kind:LOGANOMALY",
    "pca": "sidecar.models.countvector.kind:PCA",
    "autoencoder": "sidecar.models.countvector.kind:AUTOENCODER",
    "parameters": "sidecar.models.parameter.kind:PARAMETERS",
    "volume": "sidecar.models.volume.kind:VOLUME",
    "periodic": "sidecar.models.periodic.kind:PERIODIC",
    "sessions": "sidecar.models.sessions.kind:SESSIONS",
    "content": "sidecar.models.content.kind:CONTENT",
}


@cache
def _resolve(name: str) -> ModelKind:
    module, attribute = KIND_PATHS[name].split(":")
    kind = getattr(importlib.import_module(module), attribute)
    assert isinstance(kind, ModelKind) and kind.name == name, KIND_PATHS[name]
    return kind


def kind_of(name: str, where: str = "") -> ModelKind:
    if name not in KIND_PATHS:
        raise ModelError(
            f"model {where or name}: unknown model kind {name!r}; known: {sorted(KIND_PATHS)}"
        )
    return _resolve(name)


def kinds() -> dict[str, ModelKind]:
    """Every kind, resolved (imports every family)."""
    return {name: _resolve(name) for name in KIND_PATHS}
