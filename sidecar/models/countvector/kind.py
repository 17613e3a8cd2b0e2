"""PCA and the count autoencoder as catalog entries: training, rebuilding and detector wiring."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import torch

from sidecar.encoding.marks import MarkedWindow
from sidecar.encoding.vocabulary import Vocabulary
from sidecar.models.base import (
    DetectorOptions,
    EpochHook,
    ModelKind,
    TrainedNet,
    UpdatedModel,
)
from sidecar.models.countvector.autoencoder import (
    AutoencoderConfig,
    CountAutoencoder,
    train_autoencoder,
)
from sidecar.models.countvector.detector import CountVectorDetector
from sidecar.models.countvector.online import marked_rows, update_autoencoder
from sidecar.models.countvector.pca import PCAConfig, PCANet, fit_pca
from sidecar.models.countvector.vectors import (
    CountVectors,
    idf_weights,
    key_counts,
    training_count_rows,
    training_count_vectors,
)
from sidecar.models.fitting import TrainingSummary
from sidecar.models.replay import replay_set, replay_with_marks
from sidecar.types import LogEvent

__all__ = ["PCA", "AUTOENCODER"]


def _vectors(
    streams: Mapping[str, list[LogEvent]], vocabulary: Vocabulary, window_size: int
) -> CountVectors:
    return training_count_vectors(
        (vocabulary.encode(stream) for stream in streams.values()), window_size, vocabulary.size
    )


def _fit_pca(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: PCAConfig,
    _on_epoch: EpochHook | None,
) -> TrainedNet:
    started = time.perf_counter()
    data = _vectors(streams, vocabulary, config.window_size)
    idf = idf_weights(data) if config.tfidf else None
    features = data.vectors * idf if idf is not None else data.vectors
    fit = fit_pca(features, data.counts, config.variance, config.alpha)
    summary = TrainingSummary(windows=data.total, distinct_windows=len(data.counts))
    summary.seconds = time.perf_counter() - started
    # The component count fixes the saved buffers' shape, so loading needs it before weights.
    extra = {
        "pca": {
            "components": int(fit.components.shape[1]),
            "explained_variance": round(fit.explained, 6),
            "threshold": fit.threshold,
        }
    }
    return TrainedNet(PCANet.from_fit(fit, idf), summary, extra)


def _empty_pca(vocabulary: Vocabulary, _config: PCAConfig, manifest) -> PCANet:
    return PCANet(vocabulary.size, int(manifest["pca"]["components"]))  # type: ignore[index]


def _fit_autoencoder(
    streams: Mapping[str, list[LogEvent]],
    vocabulary: Vocabulary,
    config: AutoencoderConfig,
    on_epoch: EpochHook | None,
) -> TrainedNet:
    rows, counts = training_count_rows(
        (vocabulary.encode(stream) for stream in streams.values()), config.window_size
    )
    data = CountVectors(key_counts(rows, vocabulary.size), counts)
    torch.manual_seed(config.seed)
    net = CountAutoencoder.from_config(vocabulary.size, config)
    summary = train_autoencoder(net, data, config, on_epoch=on_epoch)
    return TrainedNet(
        net,
        summary,
        {"autoencoder": {"threshold": float(net.threshold)}},
        {"replay": replay_set({"rows": rows}, counts)},
    )


def _update_autoencoder(
    artifact, marked: list[MarkedWindow], _options: DetectorOptions
) -> UpdatedModel:
    h = artifact.config.window_size
    replay = (artifact.tensors or {}).get("replay")
    rows = replay["rows"].numpy() if replay is not None else np.empty((0, h), np.int64)
    counts = replay["counts"].numpy() if replay is not None else np.empty(0, np.int64)
    update = update_autoencoder(
        artifact.vocabulary, artifact.net, artifact.config, marked, rows, counts
    )
    new_rows = marked_rows(marked, update.vocabulary, h)
    return UpdatedModel(
        update.vocabulary,
        update.net,
        update.to_json(),
        {},
        {"replay": replay_with_marks({"rows": rows}, counts, {"rows": new_rows})},
    )


def _detector(artifact, options: DetectorOptions) -> CountVectorDetector:
    device = options.device or torch.device("cpu")
    return CountVectorDetector(
        artifact.name,
        artifact.version,
        artifact.vocabulary,
        artifact.net.to(device),
        artifact.config.window_size,
        device,
    )


PCA = ModelKind(
    name="pca",
    config_type=PCAConfig,
    configure=lambda choices: PCAConfig(
        window_size=choices.window_size, variance=choices.pca_variance, alpha=choices.pca_alpha
    ),
    fit=_fit_pca,
    empty_net=_empty_pca,
    detector=_detector,
)
AUTOENCODER = ModelKind(
    name="autoencoder",
    config_type=AutoencoderConfig,
    configure=lambda choices: AutoencoderConfig(
        window_size=choices.window_size,
        quantile=choices.autoencoder_quantile,
        epochs=choices.epochs,
        batch_size=choices.batch_size,
        seed=choices.seed,
    ),
    fit=_fit_autoencoder,
    empty_net=lambda vocabulary, config, _manifest: CountAutoencoder.from_config(
        vocabulary.size, config
    ),
    detector=_detector,
    update=_update_autoencoder,
)
