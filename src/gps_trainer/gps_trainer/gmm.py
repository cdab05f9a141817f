"""Gaussian mixture model fitted by expectation-maximisation (prior for dynamics, paper Sec. 4).

    p(z) = sum_k w_k N(z | mu_k, Sigma_k)
    E-step  r_nk = w_k N(z_n | mu_k, Sigma_k) / sum_j w_j N(z_n | mu_j, Sigma_j)   (log-sum-exp)
    M-step  w_k = mean_n r_nk,  mu_k = sum_n r_nk z_n / sum_n r_nk,
            Sigma_k = sum_n r_nk (z_n - mu_k)(z_n - mu_k)^T / sum_n r_nk + reg I

The densities use the inverse Cholesky factors L_k^-1 (Sigma_k = L_k L_k^T), factored once per
mixture for all K at once: log N(z | mu_k, Sigma_k) = -0.5 (|L_k^-1 (z - mu_k)|^2 + log|Sigma_k|
+ D log 2 pi), one matrix product per cluster over all points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import logsumexp


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """Mixture weights (K), means (K x D) and covariances (K x D x D)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def __post_init__(self) -> None:
        K, D = np.shape(self.means)
        if np.shape(self.weights) != (K,):
            raise ValueError(f"weights: expected shape {(K,)}, got {np.shape(self.weights)}")
        if np.shape(self.covariances) != (K, D, D):
            raise ValueError(f"covariances: expected shape {(K, D, D)}, "
                             f"got {np.shape(self.covariances)}")

    @property
    def n_clusters(self) -> int:
        return self.means.shape[0]

    @cached_property
    def _whitening(self) -> tuple[np.ndarray, np.ndarray]:
        """L_k^-T (K x D x D) and log|Sigma_k| (K)."""
        chol = np.linalg.cholesky(self.covariances)
        log_det = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
        return np.linalg.inv(chol).mT.copy(), log_det

    def log_joint(self, points: np.ndarray) -> np.ndarray:
        """log w_k + log N(z_n | mu_k, Sigma_k), N x K."""
        N, D = points.shape
        inv_chol_T, log_det = self._whitening
        out = np.empty((N, self.n_clusters))
        for k in range(self.n_clusters):
            white = (points - self.means[k]) @ inv_chol_T[k]
            out[:, k] = np.einsum("ni,ni->n", white, white)
        out += log_det + D * np.log(2 * np.pi)
        out *= -0.5
        return out + np.log(self.weights)

    def responsibilities(self, points: np.ndarray) -> np.ndarray:
        """r_nk = p(k | z_n), N x K."""
        log_joint = self.log_joint(points)
        return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    def moments(self, cluster_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the mixture re-weighted by cluster_weights (summing to one):
        mu = sum_k c_k mu_k, Sigma = sum_k c_k (Sigma_k + (mu_k - mu)(mu_k - mu)^T).

        cluster_weights may carry leading axes (S x K: S re-weightings at once)."""
        c = np.asarray(cluster_weights, dtype=float)
        mu = c @ self.means
        diff = self.means - mu[..., None, :]                  # ... x K x D
        D = self.means.shape[1]
        sigma = (c @ self.covariances.reshape(-1, D * D)).reshape(c.shape[:-1] + (D, D))
        sigma += (diff * c[..., None]).mT @ diff
        return mu, 0.5 * (sigma + sigma.mT)


def fit_gmm(data: np.ndarray, n_clusters: int, rng: np.random.Generator,
            init: GaussianMixture | None = None, max_iterations: int = 100,
            tolerance: float = 1e-5, regularization: float = 1e-6) -> GaussianMixture:
    """EM from `init` when it has n_clusters clusters, else from k-means++ seeded means.

    Stops when the log-likelihood changes by less than tolerance (relative) or decreases.
    Clusters whose weight falls below 1e-4 / K restart at a random data point.
    """
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] < n_clusters:
        raise ValueError(f"data: expected at least {n_clusters} points as an (N, D) array, "
                         f"got shape {data.shape}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters: must be at least 1, got {n_clusters}")
    if init is not None and init.n_clusters == n_clusters and init.means.shape[1] == data.shape[1]:
        mixture = init
    else:
        mixture = _seed(data, n_clusters, rng, regularization)
    previous_ll = -np.inf
    for _ in range(max_iterations):
        log_joint = mixture.log_joint(data)
        log_norm = logsumexp(log_joint, axis=1, keepdims=True)
        ll = float(np.sum(log_norm))
        if ll < previous_ll:
            return previous
        if abs(ll - previous_ll) <= tolerance * abs(ll):
            return mixture
        previous_ll, previous = ll, mixture
        mixture = _maximise(data, np.exp(log_joint - log_norm), rng, regularization)
    return mixture


def _seed(data: np.ndarray, K: int, rng: np.random.Generator, reg: float) -> GaussianMixture:
    """k-means++ means (each next drawn with probability ~ squared distance to the nearest mean
    so far, kept up to date one mean at a time), data covariance."""
    means = [data[rng.integers(len(data))]]
    d2 = ((data - means[0]) ** 2).sum(-1)
    for _ in range(1, K):
        total = d2.sum()
        p = d2 / total if total > 0 else None
        means.append(data[rng.choice(len(data), p=p)])
        d2 = np.minimum(d2, ((data - means[-1]) ** 2).sum(-1))
    covariance = np.cov(data.T, bias=True).reshape(data.shape[1], data.shape[1])
    covariance += reg * np.eye(data.shape[1])
    return GaussianMixture(np.full(K, 1.0 / K), np.array(means),
                           np.repeat(covariance[None], K, axis=0))


def _maximise(data: np.ndarray, resp: np.ndarray, rng: np.random.Generator,
              reg: float) -> GaussianMixture:
    N, D = data.shape
    K = resp.shape[1]
    mass = resp.sum(axis=0)
    dead = mass < 1e-4 / K * N
    if np.any(dead):
        # A cluster that lost (almost) all its points restarts around a random point.
        resp = resp.copy()
        for k in np.flatnonzero(dead):
            resp[:, k] = 0.0
            resp[rng.integers(N), k] = 1.0
        mass = resp.sum(axis=0)
    means = (resp.T @ data) / mass[:, None]
    covariances = np.empty((K, D, D))
    for k in range(K):
        diff = data - means[k]
        np.matmul((diff * resp[:, k, None]).T, diff, out=covariances[k])
    covariances = covariances / mass[:, None, None] + reg * np.eye(D)
    covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
    if np.any(dead):
        covariances[dead] = np.cov(data.T, bias=True).reshape(D, D) + reg * np.eye(D)
    return GaussianMixture(mass / mass.sum(), means, covariances)
