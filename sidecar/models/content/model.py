"""The content detector's model: template statistics, the isolation forest and the autoencoder,
all in one module's buffers and parameters so the store keeps it as any other state_dict.

The two stages follow Farzad and Gulliver ("Unsupervised log message anomaly detection", ICT
Express 2020): the forest isolates the unusual, the autoencoder, trained on what the forest
passes as normal, measures how far an event's features lie from normal ones. Here the forest
is the gate (an event it passes is ordinary: surprise 0) and the autoencoder's reconstruction
error of the rest is the surprise that calibration turns into a p-value; the forest's cut is
the share of training occurrences it sends to the second stage. An event with a feature outside
the range the fitting rows spanned goes to the second stage too: an isolation tree would cut
such a point off at once, but scikit-learn never splits on a feature that was constant in its
sample (a fixed statement never brings an unseen token in training), so the forest alone
would pass exactly the events this detector exists for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sidecar.models.base import JsonConfig
from sidecar.models.content.features import FEATURES
from sidecar.models.content.forest import ForestArrays
from sidecar.models.content.stats import TemplateStats
from sidecar.models.content.tokens import CLASSES

__all__ = ["ContentConfig", "ContentNet", "FeatureAutoencoder"]


@dataclass(frozen=True, slots=True)
class ContentConfig(JsonConfig):
    # Events before a flagged one shown in its annotation.
    window_size: int = 10
    trees: int = 100
    max_samples: int = 256
    # Templates with fewer training messages are not judged: what their text usually says
    # cannot be told from a handful (a template met twice has every other token "unseen"), and
    # they are rare keys the sequence models judge anyway.
    min_messages: int = 20
    # Share of training occurrences the forest sends to the second stage (its top scores).
    forest_share: float = 0.02
    # (template, token) entries kept: ~16 bytes each in the model.
    max_entries: int = 1_000_000
    # Occurrences drawn by weight to fit the forest and kept for online updates.
    sample_rows: int = 65_536
    # Distinct feature vectors kept for online updates: of the fitting rows, of the held-out.
    replay_rows: int = 4_096
    held_out_rows: int = 16_384
    hidden_size: int = 32
    code_size: int = 6
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 2e-3
    seed: int = 42
    patience: int = 3
    min_relative_improvement: float = 0.01


class FeatureAutoencoder(nn.Module):
    """Normalised features [n, d] -> residuals [n, d]."""

    def __init__(self, dims: int, hidden: int, code: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(dims, hidden), nn.ReLU(), nn.Linear(hidden, code))
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, dims)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.decoder(self.encoder(x))


def _buffer(module: nn.Module, name: str, value: np.ndarray) -> None:
    module.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value)))


class ContentNet(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        entries: int,
        trees: int,
        nodes: int,
        config: ContentConfig,
    ) -> None:
        super().__init__()
        d = len(FEATURES)
        _buffer(self, "hashes", np.zeros(entries, np.int64))
        _buffer(self, "counts", np.zeros(entries, np.int64))
        for name in ("messages", "token_mean", "token_std", "length_mean", "length_std"):
            _buffer(self, name, np.zeros(vocab_size))
        _buffer(self, "novel", np.zeros((vocab_size, len(CLASSES))))
        _buffer(self, "class_mean", np.zeros((vocab_size, len(CLASSES))))
        for name in ("feature", "left", "right"):
            _buffer(self, f"forest_{name}", np.zeros((trees, nodes), np.int32))
        for name in ("threshold", "leaf_bonus"):
            _buffer(self, f"forest_{name}", np.zeros((trees, nodes)))
        # max_samples, depth, the gate's cut
        _buffer(self, "forest_shape", np.zeros(2, np.int64))
        _buffer(self, "forest_cut", np.zeros(1))
        _buffer(self, "feature_mean", np.zeros(d))
        _buffer(self, "feature_std", np.ones(d))
        # The box of the fitting rows (normalised): a feature beyond it is what the forest
        # cannot see when it was constant in training (no tree splits on a constant).
        _buffer(self, "feature_low", np.zeros(d))
        _buffer(self, "feature_high", np.zeros(d))
        # A replay sample of training rows (normalised features and weights): the forest is
        # refit and the autoencoder fine-tuned on it together with analysts' false positives.
        _buffer(self, "replay", np.zeros((0, d)))
        _buffer(self, "replay_weight", np.zeros(0))
        # The held-out slice's distinct feature vectors and weights: after an online update
        # changes the forest and the autoencoder, the calibration is measured again on them.
        _buffer(self, "held_out", np.zeros((0, d)))
        _buffer(self, "held_out_weight", np.zeros(0))
        self.autoencoder = FeatureAutoencoder(d, config.hidden_size, config.code_size)

    @classmethod
    def shaped_like(
        cls, vocab_size: int, sizes: dict[str, int], config: ContentConfig
    ) -> ContentNet:
        """An empty net whose buffers have the saved sizes (load_state_dict needs them)."""
        net = cls(vocab_size, sizes["entries"], sizes["trees"], sizes["nodes"], config)
        net.replay = torch.zeros(sizes["replay"], len(FEATURES), dtype=torch.float64)
        net.replay_weight = torch.zeros(sizes["replay"], dtype=torch.float64)
        net.held_out = torch.zeros(sizes.get("held_out", 0), len(FEATURES), dtype=torch.float64)
        net.held_out_weight = torch.zeros(sizes.get("held_out", 0), dtype=torch.float64)
        return net

    def sizes(self) -> dict[str, int]:
        return {
            "entries": int(self.hashes.shape[0]),
            "trees": int(self.forest_feature.shape[0]),
            "nodes": int(self.forest_feature.shape[1]),
            "replay": int(self.replay.shape[0]),
            "held_out": int(self.held_out.shape[0]),
        }

    # -- the fitted parts as numpy -------------------------------------------------------

    def set_stats(self, stats: TemplateStats) -> None:
        self.hashes = torch.from_numpy(stats.hashes.copy())
        self.counts = torch.from_numpy(stats.counts.astype(np.int64))
        for name in ("messages", "novel", "token_mean", "token_std", "length_mean", "length_std"):
            setattr(self, name, torch.from_numpy(getattr(stats, name).astype(np.float64)))
        self.class_mean = torch.from_numpy(stats.class_mean.astype(np.float64))

    def stats(self, typical: dict[str, dict[str, list[list[object]]]]) -> TemplateStats:
        return TemplateStats(
            hashes=self.hashes.numpy(),
            counts=self.counts.numpy(),
            messages=self.messages.numpy(),
            novel=self.novel.numpy(),
            token_mean=self.token_mean.numpy(),
            token_std=self.token_std.numpy(),
            length_mean=self.length_mean.numpy(),
            length_std=self.length_std.numpy(),
            class_mean=self.class_mean.numpy(),
            dropped=0,
            typical=typical,
        )

    def set_forest(self, forest: ForestArrays, cut: float) -> None:
        self.forest_feature = torch.from_numpy(forest.feature)
        self.forest_left = torch.from_numpy(forest.left)
        self.forest_right = torch.from_numpy(forest.right)
        self.forest_threshold = torch.from_numpy(forest.threshold)
        self.forest_leaf_bonus = torch.from_numpy(forest.leaf_bonus)
        self.forest_shape = torch.tensor([forest.max_samples, forest.depth])
        self.forest_cut = torch.tensor([cut], dtype=torch.float64)

    def forest(self) -> ForestArrays:
        return ForestArrays(
            self.forest_feature.numpy(),
            self.forest_threshold.numpy(),
            self.forest_left.numpy(),
            self.forest_right.numpy(),
            self.forest_leaf_bonus.numpy(),
            int(self.forest_shape[0]),
            int(self.forest_shape[1]),
        )

    def normalise(self, features: np.ndarray) -> np.ndarray:
        return (features - self.feature_mean.numpy()) / self.feature_std.numpy()

    def errors(self, normalised: np.ndarray, batch_size: int = 8_192) -> np.ndarray:
        """The autoencoder's squared reconstruction error of each row."""
        if len(normalised) == 0:
            return np.zeros(0)
        x = torch.from_numpy(normalised).float()
        with torch.inference_mode():
            parts = [
                self.autoencoder(x[i : i + batch_size]).square().sum(dim=1)
                for i in range(0, len(x), batch_size)
            ]
        return torch.cat(parts).double().numpy()
