"""GMM prior for linear-Gaussian dynamics fitting (paper Sec. 4; Levine and Abbeel 2014).

A GMM is fitted to (x_t, u_t, x_t+1) tuples pooled over time, conditions and the most recent
trajectories. For the tuples of one time step it yields a normal-inverse-Wishart prior

    w_k = mean_n p(k | z_n),  mu_0 = sum_k w_k mu_k,
    Phi = m sum_k w_k (Sigma_k + (mu_k - mu_0)(mu_k - mu_0)^T),
    m = strength,  n_0 = max(0, strength (N_gmm - 2 - D) / N_gmm),

worth about `strength` pseudo-observations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_trainer.gmm import GaussianMixture, fit_gmm_responsibilities


@dataclass(frozen=True)
class DynamicsPriorConfig:
    """Clusters = max(2, min(max_clusters, N T // min_samples_per_cluster)) over the last
    max_samples trajectories; strength in pseudo-observations."""

    max_clusters: int = 20
    min_samples_per_cluster: int = 40
    max_samples: int = 20
    strength: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_clusters", "min_samples_per_cluster", "max_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.strength <= 0:
            raise ValueError(f"strength: must be positive, got {self.strength}")


@dataclass(frozen=True, eq=False)
class NIWPrior:
    """Normal-inverse-Wishart prior: mean mu0, scale Phi, mean strength m, dof strength n0
    (mu0 and Phi may carry a leading axis of steps)."""

    mu0: np.ndarray     # (S x) D
    Phi: np.ndarray     # (S x) D x D
    m: float
    n0: float


def niw_prior_steps(gmm: GaussianMixture, points: np.ndarray, strength: float,
                    n_points: int, responsibilities: np.ndarray | None = None) -> NIWPrior:
    """The NIW prior (module doc) for each of S steps' points (S x N x D) under `gmm`, fitted
    to n_points points: mu0 S x D, Phi S x D x D. `responsibilities` (S x N x K), when given,
    are those of the points under `gmm`."""
    S, N, D = points.shape
    resp = (gmm.responsibilities(points.reshape(S * N, D)).reshape(S, N, -1)
            if responsibilities is None else responsibilities)
    mu0, Phi = gmm.moments(resp.mean(axis=1))
    # With fewer stored points than dimensions the formula turns negative; a prior never
    # subtracts evidence, so its degrees of freedom stop at zero.
    n0 = max(0.0, strength * (n_points - 2 - D) / n_points)
    Phi *= strength
    return NIWPrior(mu0, Phi, strength, n0)


def transition_points(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """(x_t, u_t, x_t+1) for every sample and t < T-1, as an (N (T-1)) x (2 dX + dU) array."""
    points = np.concatenate([X[:, :-1], U[:, :-1], X[:, 1:]], axis=2)
    return points.reshape(-1, points.shape[2])


class DynamicsPriorGMM:
    """Keeps the recent trajectories and the GMM over their transitions, with the
    responsibilities and squared Mahalanobis distances of those transitions from the fit's last
    E-step: the newest samples are usually the ones the dynamics are fitted to next, and their
    prior then needs no E-step; the next update starts EM from this GMM, so that its first E-step
    needs the distances of the new transitions only."""

    def __init__(self, config: DynamicsPriorConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.X: np.ndarray | None = None
        self.U: np.ndarray | None = None
        self.gmm: GaussianMixture | None = None
        self.n_points = 0
        self._responsibilities: np.ndarray | None = None
        self._distances: tuple[np.ndarray, np.ndarray] | None = None

    def __setstate__(self, state: dict) -> None:
        """Unpickle (a run's checkpoint), also one written before the distances were kept."""
        self.__dict__.update({"_distances": None, **state})

    def update(self, X: np.ndarray, U: np.ndarray) -> None:
        """Add trajectories (N x T x dX, N x T x dU), keep the newest, refit the GMM warm."""
        known = None
        if self.X is not None:
            kept_old = max(0, min(self.X.shape[0], self.config.max_samples - X.shape[0]))
            if kept_old and self._distances is not None and self.X.shape[1] == X.shape[1]:
                rows = kept_old * (X.shape[1] - 1)
                known = tuple(a[a.shape[0] - rows:] for a in self._distances)
            X = np.concatenate([self.X, X])
            U = np.concatenate([self.U, U])
        self.X = X[-self.config.max_samples:]
        self.U = U[-self.config.max_samples:]
        N, T = self.X.shape[:2]
        n_clusters = max(2, min(self.config.max_clusters,
                                N * T // self.config.min_samples_per_cluster))
        points = transition_points(self.X, self.U)
        self.gmm, resp, self._distances = fit_gmm_responsibilities(
            points, n_clusters, self.rng, init=self.gmm, known=known)
        self.n_points = points.shape[0]
        self._responsibilities = resp.reshape(N, T - 1, -1)

    def evaluate(self, points: np.ndarray) -> NIWPrior:
        """NIW prior for the tuples of one time step (N x D), weighting clusters by their mean
        responsibility for those tuples."""
        prior = self.evaluate_steps(points[None])
        return NIWPrior(prior.mu0[0], prior.Phi[0], prior.m, prior.n0)

    def evaluate_steps(self, points: np.ndarray) -> NIWPrior:
        """`evaluate` for S steps at once (points S x N x D): mu0 is S x D, Phi S x D x D, all
        responsibilities in one pass over the S N points."""
        if self.gmm is None:
            raise ValueError("gmm: the prior has no data yet; call update first")
        return niw_prior_steps(self.gmm, points, self.config.strength, self.n_points,
                               self._stored_responsibilities(points))

    def _stored_responsibilities(self, points: np.ndarray) -> np.ndarray | None:
        """The fit's responsibilities of `points` (S x N x D) when they are the transitions of
        the N newest stored samples, else None."""
        S, N, _ = points.shape
        stored_N, steps = self.X.shape[:2]
        if S != steps - 1 or N > stored_N:
            return None
        X, U = self.X[-N:], self.U[-N:]
        if not (np.array_equal(points[..., :X.shape[2]], X[:, :-1].swapaxes(0, 1))
                and np.array_equal(points[..., X.shape[2]:-X.shape[2]], U[:, :-1].swapaxes(0, 1))
                and np.array_equal(points[..., -X.shape[2]:], X[:, 1:].swapaxes(0, 1))):
            return None
        return self._responsibilities[-N:].swapaxes(0, 1)

    def initial_state(self) -> NIWPrior:
        """Prior on x_0 from the stored x_0: empirical mean and diagonal variance, m = n0 = dX
        times strength."""
        if self.X is None:
            raise ValueError("X: the prior has no data yet; call update first")
        x0 = self.X[:, 0]
        strength = x0.shape[1] * self.config.strength
        return NIWPrior(x0.mean(axis=0), strength * np.diag(x0.var(axis=0)), strength, strength)
