"""Next-key prediction shared by DeepLog-style detectors: batched, deduplicated scoring.

A verdict depends only on (window, observed key), so each distinct window is run through the
network once per call, however many hosts or events share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from sidecar.encoding.vocabulary import PAD, UNKNOWN

__all__ = ["NextKeyModel", "NextKeyScores", "score_next_keys"]


class NextKeyModel(Protocol):
    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        """Logits [batch, vocabulary size] for the key after each window [batch, h]."""
        ...


@dataclass(frozen=True, slots=True)
class NextKeyScores:
    probability: np.ndarray  # [n] probability of the observed key (0 for unknown keys)
    rank: np.ndarray  # [n] 1-based rank of the observed key among known keys (0 if unknown)
    top_ids: np.ndarray  # [n, g] most likely next keys
    top_probs: np.ndarray  # [n, g]
    anomalous: np.ndarray  # [n] bool: unknown key, or observed key not in the top g

    def __len__(self) -> int:
        return len(self.rank)


def score_next_keys(
    model: NextKeyModel,
    windows: np.ndarray,
    targets: np.ndarray,
    top_g: int,
    *,
    batch_size: int = 4_096,
    device: torch.device | None = None,
) -> NextKeyScores:
    n = len(targets)
    if n == 0:
        empty = np.empty(0)
        return NextKeyScores(
            empty.astype(np.float32),
            empty.astype(np.int64),
            np.empty((0, top_g), np.int64),
            np.empty((0, top_g), np.float32),
            empty.astype(bool),
        )
    unique_windows, inverse = np.unique(windows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    device = device or torch.device("cpu")
    prob_observed = np.zeros(n, dtype=np.float32)
    rank = np.zeros(n, dtype=np.int64)
    top_ids = np.zeros((n, top_g), dtype=np.int64)
    top_probs = np.zeros((n, top_g), dtype=np.float32)
    # Process unique windows in chunks; scatter results to every event that shares a window.
    order = np.argsort(inverse, kind="stable")
    chunk_starts = np.append(np.arange(0, len(unique_windows), batch_size), len(unique_windows))
    bounds = np.searchsorted(inverse[order], chunk_starts)
    with torch.inference_mode():
        for chunk_no, start in enumerate(range(0, len(unique_windows), batch_size)):
            stop = min(start + batch_size, len(unique_windows))
            batch = torch.from_numpy(unique_windows[start:stop]).to(device)
            logits = model(batch).float()
            logits[:, PAD] = float("-inf")
            logits[:, UNKNOWN] = float("-inf")
            probs = torch.softmax(logits, dim=1)
            g = min(top_g, probs.shape[1] - 2)
            tp, ti = torch.topk(probs, g, dim=1)
            events = order[bounds[chunk_no] : bounds[chunk_no + 1]]
            local = torch.from_numpy(inverse[events] - start).to(device)
            observed = torch.from_numpy(targets[events]).to(device)
            rows = probs[local]
            p = rows.gather(1, observed.clamp(min=0).unsqueeze(1)).squeeze(1)
            unknown = observed == UNKNOWN
            p = torch.where(unknown, torch.zeros_like(p), p)
            r = (rows > p.unsqueeze(1)).sum(dim=1) + 1
            r = torch.where(unknown, torch.zeros_like(r), r)
            prob_observed[events] = p.cpu().numpy()
            rank[events] = r.cpu().numpy()
            top_ids[events, :g] = ti[local].cpu().numpy()
            top_probs[events, :g] = tp[local].cpu().numpy()
    anomalous = (targets == UNKNOWN) | (rank > top_g)
    return NextKeyScores(prob_observed, rank, top_ids, top_probs, anomalous)
