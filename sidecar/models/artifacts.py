"""Versioned model artifacts: weights as a state_dict, everything else as JSON, in a store.

An artifact is a manifest (format version, model kind, vocabulary, configuration, training
summary, model-specific JSON) and named blobs, each checked against a SHA-256 in the manifest.
Tensors load with `weights_only=True`, so a tampered blob cannot run code. Where the blobs live
is the store's business (a directory or the cluster; see sidecar/models/store.py).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from sidecar import __version__
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.models.catalog import kind_of
from sidecar.models.fitting import TrainingSummary
from sidecar.models.store import as_store
from sidecar.ports import ModelStore

__all__ = [
    "FORMAT_VERSION",
    "ModelArtifact",
    "ModelConfig",
    "save_artifact",
    "load_artifact",
    "latest_version",
    "tensors_to_bytes",
    "tensors_from_bytes",
]

FORMAT_VERSION = 1
WEIGHTS = "weights.pt"

# Each kind's configuration: a frozen dataclass with to_json/from_json and a window_size.
ModelConfig = object


@dataclass(frozen=True, slots=True)
class ModelArtifact:
    name: str
    version: str
    vocabulary: Vocabulary
    config: ModelConfig
    net: torch.nn.Module
    manifest: dict[str, object]
    # Extra tensors saved beside the weights (the online update's replay set, say).
    tensors: dict[str, dict[str, torch.Tensor]] | None = None

    @property
    def parent(self) -> str | None:
        parent = self.manifest.get("parent")
        return None if parent is None else str(parent)


def tensors_to_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()


def tensors_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def save_artifact(
    store: ModelStore | Path,
    name: str,
    net: torch.nn.Module,
    vocabulary: Vocabulary,
    config: ModelConfig,
    summary: TrainingSummary,
    training_data: dict[str, object],
    extra: dict[str, object] | None = None,
    *,
    tensors: dict[str, dict[str, torch.Tensor]] | None = None,
    activate: str | None = "trained",
) -> ModelArtifact:
    """Store a new version; `activate` (a reason) makes it the active one, None leaves it a
    candidate. `extra` holds model-specific JSON (LogAnomaly's words, a parent version)."""
    store = as_store(store)
    blobs = {WEIGHTS: tensors_to_bytes(net.state_dict())}
    for blob, values in (tensors or {}).items():
        blobs[f"{blob}.pt"] = tensors_to_bytes(values)
    digest = hashlib.sha256(blobs[WEIGHTS]).hexdigest()
    created = datetime.now(UTC)
    version = f"{created:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    # Same second, same weights: an update that changed only the manifest (the parameter
    # model's accepted deviations) must still get a version of its own.
    taken = {m.get("version") for m in store.manifests(name)} | {(extra or {}).get("parent")}
    if version in taken:
        version = f"{created:%Y%m%dT%H%M%S}{created.microsecond // 1000:03d}Z-{digest[:8]}"
    manifest: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "model": name,
        "version": version,
        "created_at": created.isoformat(),
        "sidecar_version": __version__,
        "torch_version": torch.__version__,
        "weights_sha256": digest,
        "blobs": {blob: hashlib.sha256(data).hexdigest() for blob, data in blobs.items()},
        "config": config.to_json(),  # type: ignore[attr-defined]
        "vocabulary": vocabulary.to_json(),
        "training": summary.to_json(),
        "training_data": training_data,
        **(extra or {}),
    }
    store.put(name, version, manifest, blobs)
    if activate is not None:
        store.activate(name, version, activate)
    return ModelArtifact(name, version, vocabulary, config, net, manifest, tensors)


def latest_version(store: ModelStore | Path, name: str) -> str:
    store = as_store(store)
    version = store.active(name)
    if version is None:
        raise ModelError(f"no active {name} model in {store}; run `train` first")
    return version


def load_artifact(store: ModelStore | Path, name: str, version: str | None = None) -> ModelArtifact:
    """The active version of `name`, or the given one; checked against its manifest."""

    store = as_store(store)
    version = version or latest_version(store, name)
    manifest, blobs = store.get(name, version)
    where = f"{name} {version} in {store}"
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"model {where} has format {manifest.get('format_version')}, "
            f"this sidecar reads format {FORMAT_VERSION}; retrain it"
        )
    expected = manifest.get("blobs") or {WEIGHTS: manifest.get("weights_sha256")}
    assert isinstance(expected, dict)
    for blob, digest in expected.items():
        if blob not in blobs:
            raise ModelError(f"model {where}: blob {blob} is missing")
        if hashlib.sha256(blobs[blob]).hexdigest() != digest:
            raise ModelError(f"model {where}: {blob} does not match the manifest checksum")
    kind = kind_of(str(manifest.get("model")), where)
    vocabulary = Vocabulary.from_json(manifest["vocabulary"])  # type: ignore[arg-type]
    config = kind.config_type.from_json(manifest["config"])
    net = kind.empty_net(vocabulary, config, manifest)
    try:
        net.load_state_dict(tensors_from_bytes(blobs[WEIGHTS]))
    except RuntimeError as exc:
        raise ModelError(f"model {where}: weights do not fit the manifest: {exc}") from exc
    net.eval()
    tensors = {
        blob.removesuffix(".pt"): tensors_from_bytes(data)
        for blob, data in blobs.items()
        if blob != WEIGHTS and blob.endswith(".pt")
    }
    return ModelArtifact(name, version, vocabulary, config, net, manifest, tensors or None)
