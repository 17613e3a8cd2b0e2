"""PCA on window count vectors (Xu et al., "Detecting Large-Scale System Problems by Mining
Console Logs", SOSP'09).

Normal windows are assumed to lie close to a low-dimensional subspace: the top principal
components that explain a fraction `variance` of the training variance. A window's squared
prediction error (SPE) is the squared length of its projection onto the remaining, residual
subspace; it is anomalous when the SPE exceeds the Q-statistic threshold Q_alpha of Jackson
and Mudholkar (Technometrics 21(3), 1979), the bound Xu et al. use, which under normal data
is exceeded with probability alpha.

Xu et al. build one vector per session (an HDFS block); here a vector is the window of h
events ending at each event, so the verdicts are per event like DeepLog's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from sidecar.models.countvector.vectors import CountConfig

__all__ = ["PCAConfig", "PCAFit", "PCANet", "fit_pca", "q_statistic", "MIN_THRESHOLD"]

# When the residual subspace holds no variance (every training window lies in the normal
# subspace) the Q-statistic is 0. Training windows then have SPE at rounding level (~1e-25)
# and any changed count moves it by far more, so this floor separates the two.
MIN_THRESHOLD = 1e-12


@dataclass(frozen=True, slots=True)
class PCAConfig(CountConfig):
    # Fraction of the training variance the normal subspace keeps. Windows are short and
    # their count vectors have few dimensions, so the residual subspace must be small; on
    # HDFS 0.95 leaves too much normal variation outside it (docs/hdfs-benchmark.md).
    variance: float = 0.99
    # Significance of the Q-statistic: the rate at which normal windows would exceed it if
    # their residuals were Gaussian.
    alpha: float = 0.001
    # Weigh counts by inverse document frequency, as Xu et al. weigh session vectors (see
    # idf_weights). Off by default: a key in nearly every window gets a weight near 0, so a
    # burst of the busiest key (failed logons, say) would not move the window at all.
    tfidf: bool = False


def q_statistic(residual_eigenvalues: np.ndarray, alpha: float) -> float:
    """Q_alpha, the SPE bound of Jackson & Mudholkar (1979), from the eigenvalues of the
    covariance that the residual subspace holds:

        phi_i = sum_j lambda_j^i  (i = 1, 2, 3)
        h0    = 1 - 2 phi_1 phi_3 / (3 phi_2^2)
        Q     = phi_1 [c_alpha sqrt(2 phi_2 h0^2) / phi_1 + 1 + phi_2 h0 (h0-1) / phi_1^2]^(1/h0)

    with c_alpha the (1 - alpha) quantile of the standard normal. The bound comes from a power
    transform (SPE/phi_1)^h0 that is close to normal; it needs h0 > 0, which fails for spectra
    with a few large and many small eigenvalues. There h0 = 1/3 is used, which turns the
    formula into Box's (1954) scaled chi-square approximation g * chi2_nu (g = phi_2 / phi_1,
    nu = phi_1^2 / phi_2, the SPE's exact mean and variance) with the Wilson-Hilferty chi-square
    quantile.
    """
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    lam = np.clip(np.asarray(residual_eigenvalues, dtype=np.float64), 0.0, None)
    phi1, phi2, phi3 = (float(np.sum(lam**i)) for i in (1, 2, 3))
    if phi1 <= 0.0 or phi2 <= 0.0:
        return 0.0
    h0 = 1.0 - 2.0 * phi1 * phi3 / (3.0 * phi2 * phi2)
    if h0 <= 0.0:
        h0 = 1.0 / 3.0
    c_alpha = NormalDist().inv_cdf(1.0 - alpha)
    bracket = (
        c_alpha * math.sqrt(2.0 * phi2 * h0 * h0) / phi1
        + 1.0
        + phi2 * h0 * (h0 - 1.0) / (phi1 * phi1)
    )
    return phi1 * bracket ** (1.0 / h0)


@dataclass(frozen=True, slots=True)
class PCAFit:
    mean: np.ndarray  # [d]
    components: np.ndarray  # [d, k] orthonormal columns spanning the normal subspace
    eigenvalues: np.ndarray  # [d] of the covariance, descending
    explained: float  # fraction of the variance the k components hold
    threshold: float  # Q_alpha, at least MIN_THRESHOLD


def fit_pca(features: np.ndarray, weights: np.ndarray, variance: float, alpha: float) -> PCAFit:
    """Normal subspace and SPE threshold of rows `features` [m, d], row i counted weights[i]
    times (distinct windows and how often each occurred)."""
    if not 0.0 < variance < 1.0:
        raise ValueError(f"variance must lie in (0, 1), got {variance}")
    x = np.asarray(features, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total_weight = float(w.sum())
    mean = (w @ x) / total_weight
    centred = x - mean
    # The maximum-likelihood covariance (divided by the number of windows).
    covariance = (centred * w[:, None]).T @ centred / total_weight
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    # eigh returns rounding noise, possibly negative, for directions without variance.
    eigenvalues = np.where(eigenvalues > eigenvalues[0] * 1e-12, eigenvalues, 0.0)
    total = float(eigenvalues.sum())
    if total <= 0.0:
        k, explained = 0, 1.0
    else:
        cumulative = np.cumsum(eigenvalues) / total
        k = int(np.searchsorted(cumulative, variance, side="left")) + 1
        k = min(k, len(eigenvalues))
        explained = float(cumulative[k - 1])
    threshold = max(q_statistic(eigenvalues[k:], alpha), MIN_THRESHOLD)
    return PCAFit(mean, eigenvectors[:, :k].copy(), eigenvalues, explained, threshold)


class PCANet(nn.Module):
    """Counts [n, d] -> residuals [n, d]: each window's part outside the normal subspace.

    The SPE is the squared length of a residual. A module with buffers only, so the fitted
    subspace saves and loads through state_dict like the networks' weights.
    """

    def __init__(self, vocab_size: int, components: int) -> None:
        super().__init__()
        self.register_buffer("idf", torch.ones(vocab_size, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(vocab_size, dtype=torch.float64))
        self.register_buffer("components", torch.zeros(vocab_size, components, dtype=torch.float64))
        self.register_buffer("threshold", torch.tensor(MIN_THRESHOLD, dtype=torch.float64))

    @classmethod
    def from_fit(cls, fit: PCAFit, idf: np.ndarray | None = None) -> PCANet:
        net = cls(len(fit.mean), fit.components.shape[1])
        with torch.no_grad():
            if idf is not None:
                net.idf.copy_(torch.from_numpy(idf))
            net.mean.copy_(torch.from_numpy(fit.mean))
            net.components.copy_(torch.from_numpy(fit.components))
            net.threshold.fill_(fit.threshold)
        return net

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        centred = counts.to(self.mean.dtype) * self.idf - self.mean
        return centred - (centred @ self.components) @ self.components.T
