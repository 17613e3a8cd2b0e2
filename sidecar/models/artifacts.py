"""Versioned model artifacts on disk: weights as a state_dict, everything else as JSON.

Layout: <model_dir>/<name>/<version>/{manifest.json, weights.pt} and <model_dir>/<name>/LATEST.
Weights load with `weights_only=True`, so a tampered file cannot run code; the manifest carries
the format version, a checksum of the weights, the vocabulary and the settings used.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import torch

from sidecar import __version__
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.errors import ModelError
from sidecar.models.deeplog import DeepLogConfig, DeepLogNet
from sidecar.models.loganomaly import LogAnomalyConfig, LogAnomalyNet
from sidecar.models.nextkey import TrainingSummary

__all__ = [
    "FORMAT_VERSION",
    "ModelArtifact",
    "ModelConfig",
    "save_artifact",
    "load_artifact",
    "latest_version",
]

FORMAT_VERSION = 1
_LATEST = "LATEST"


ModelConfig = DeepLogConfig | LogAnomalyConfig


@dataclass(frozen=True, slots=True)
class ModelArtifact:
    name: str
    version: str
    vocabulary: Vocabulary
    config: ModelConfig
    net: torch.nn.Module
    manifest: dict[str, object]


def _weights_bytes(net: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def save_artifact(
    model_dir: Path,
    name: str,
    net: torch.nn.Module,
    vocabulary: Vocabulary,
    config: ModelConfig,
    summary: TrainingSummary,
    training_data: dict[str, object],
    extra: dict[str, object] | None = None,
) -> ModelArtifact:
    """`extra` holds model-specific JSON (LogAnomaly's words and key templates)."""
    weights = _weights_bytes(net)
    digest = hashlib.sha256(weights).hexdigest()
    created = datetime.now(UTC)
    version = f"{created:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    manifest: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "model": name,
        "version": version,
        "created_at": created.isoformat(),
        "sidecar_version": __version__,
        "torch_version": torch.__version__,
        "weights_sha256": digest,
        "config": config.to_json(),
        "vocabulary": vocabulary.to_json(),
        "training": summary.to_json(),
        "training_data": training_data,
        **(extra or {}),
    }
    home = model_dir / name
    home.mkdir(parents=True, exist_ok=True)
    # Build the version in a temporary directory and rename it into place, so a reader never
    # sees half an artifact; LATEST moves only after that.
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=home))
    (staging / "weights.pt").write_bytes(weights)
    (staging / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    os.replace(staging, home / version)
    latest_tmp = home / f".{_LATEST}.tmp"
    latest_tmp.write_text(version + "\n")
    os.replace(latest_tmp, home / _LATEST)
    return ModelArtifact(name, version, vocabulary, config, net, manifest)


def latest_version(model_dir: Path, name: str) -> str:
    pointer = model_dir / name / _LATEST
    if not pointer.is_file():
        raise ModelError(
            f"no trained {name} model in {model_dir} (missing {pointer}); run `train` first"
        )
    return pointer.read_text().strip()


def load_artifact(model_dir: Path, name: str, version: str | None = None) -> ModelArtifact:
    version = version or latest_version(model_dir, name)
    where = model_dir / name / version
    try:
        manifest = orjson.loads((where / "manifest.json").read_bytes())
        weights = (where / "weights.pt").read_bytes()
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model {name} {version} from {where}: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"model {where} has format {manifest.get('format_version')}, "
            f"this sidecar reads format {FORMAT_VERSION}; retrain it"
        )
    if hashlib.sha256(weights).hexdigest() != manifest.get("weights_sha256"):
        raise ModelError(f"model {where}: weights do not match the manifest checksum")
    vocabulary = Vocabulary.from_json(manifest["vocabulary"])
    config: ModelConfig
    net: torch.nn.Module
    if manifest.get("model") == "deeplog":
        config = DeepLogConfig.from_json(manifest["config"])
        net = DeepLogNet.from_config(vocabulary.size, config)
    elif manifest.get("model") == "loganomaly":
        config = LogAnomalyConfig.from_json(manifest["config"])
        words = len(manifest["semantics"]["words"])
        net = LogAnomalyNet.from_config(vocabulary.size, config, words)
    else:
        raise ModelError(f"model {where}: unknown model kind {manifest.get('model')!r}")
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"model {where}: weights do not fit the manifest: {exc}") from exc
    net.eval()
    return ModelArtifact(name, version, vocabulary, config, net, manifest)
