"""DeepLog (Du et al., CCS'17): an LSTM reads the last h log keys and predicts the next one;
an event is anomalous when its key is not among the g most likely."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sidecar.encoding.vocabulary import PAD
from sidecar.models.nextkey.core import NextKeyConfig

__all__ = ["DeepLogConfig", "DeepLogNet"]


@dataclass(frozen=True, slots=True)
class DeepLogConfig(NextKeyConfig):
    embedding_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 2


class DeepLogNet(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(windows))
        return self.head(out[:, -1, :])

    @classmethod
    def from_config(cls, vocab_size: int, config: DeepLogConfig) -> DeepLogNet:
        return cls(vocab_size, config.embedding_dim, config.hidden_size, config.num_layers)
