"""Gaussian mixture model fitted by expectation-maximisation (prior for dynamics, paper Sec. 4).

    p(z) = sum_k w_k N(z | mu_k, Sigma_k)
    E-step  r_nk = w_k N(z_n | mu_k, Sigma_k) / sum_j w_j N(z_n | mu_j, Sigma_j)   (log-sum-exp)
    M-step  w_k = mean_n r_nk,  mu_k = sum_n r_nk z_n / sum_n r_nk,
            Sigma_k = sum_n r_nk (z_n - mu_k)(z_n - mu_k)^T / sum_n r_nk + reg I

The densities use the inverse Cholesky factors L_k^-1 (Sigma_k = L_k L_k^T), factored once per
mixture for all K at once: log N(z | mu_k, Sigma_k) = -0.5 (|L_k^-1 (z - mu_k)|^2 + log|Sigma_k|
+ D log 2 pi), one matrix product per cluster over all points. A tied mixture (all Sigma_k equal:
the k-means++ seed) is factored once, and its first E-step whitens the points only once.

EM truncates responsibilities: r_nk is set to zero where log w_k N(z_n | k) is more than
TRUNCATION = 60 nats below the point's largest term (r_nk < e^-60 ~ 1e-26). That changes the
mixture by far less than round-off, and it lets an iteration skip those (n, k) pairs entirely:

- M-step: the covariance sums run over the points of each cluster with r_nk > 0 only (about two
  clusters per point once EM has settled, instead of all K).
- E-step: after the first iteration, a pair is computed only where a cheap upper bound on its
  log-density comes within TRUNCATION of the point's best exact term. With
  w = L_old^-1 (z - mu_old) from the previous iteration (|w|^2 = d_old, or a lower bound on it),
  M = L_new^-1 L_old and delta = |L_new^-1 (mu_new - mu_old)|,

      sqrt(d_new) = |M w - L_new^-1 (mu_new - mu_old)| >= s sqrt(d_old) - delta,
      s = 1 / min(1 + |A - I|_F, sqrt(|A|_1 |A|_inf)) <= 1 / |A|_2 = sigma_min(M),
      A = M^-1 = L_old^-1 L_new

  (the first bound is tight for clusters that barely moved, the second for those that moved
  far, the first M-steps after new data: nearly as tight there as sigma_min(M) itself), so the
  skipped pairs are exactly those the truncation would drop; the bounds only decide how
  much work is done, never the answer.
- Warm start: the first E-step from `init` takes the distances that the fit returning `init`
  computed for the points still in the data (`known`), and computes only the new points'.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg
from scipy.linalg.blas import dtrmm
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
    def tied(self) -> bool:
        """Whether all clusters share one covariance (as k-means++ seeding leaves them)."""
        return bool(np.all(self.covariances == self.covariances[:1]))

    @cached_property
    def cholesky(self) -> np.ndarray:
        """L_k with Sigma_k = L_k L_k^T (K x D x D); factored once when tied."""
        if self.tied:
            return np.repeat(np.linalg.cholesky(self.covariances[:1]), self.n_clusters, axis=0)
        return np.linalg.cholesky(self.covariances)

    @cached_property
    def whitening(self) -> tuple[np.ndarray, np.ndarray]:
        """L_k^-T (K x D x D) and log|Sigma_k| (K); inverted once when tied."""
        chol = self.cholesky
        log_det = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
        distinct = chol[:1] if self.tied else chol
        inverse_T = np.empty_like(distinct)
        for k, factor in enumerate(distinct):
            # LAPACK trtri on L^T, upper triangular and Fortran-ordered as a view of the C-ordered
            # L (no copy in), returns (L^T)^-1 = L^-T.
            inverse_T[k] = scipy.linalg.lapack.dtrtri(factor.T, lower=0)[0]
        if self.tied:
            inverse_T = np.repeat(inverse_T, self.n_clusters, axis=0)
        return inverse_T, log_det

    def log_joint(self, points: np.ndarray) -> np.ndarray:
        """log w_k + log N(z_n | mu_k, Sigma_k), N x K."""
        shape = (points.shape[0], self.n_clusters)
        d = np.empty(shape)
        _fill(self, points, d, np.zeros(shape, dtype=bool), np.ones(shape, dtype=bool))
        return self.log_density_terms(d)

    def log_density_terms(self, d: np.ndarray) -> np.ndarray:
        """log w_k - 0.5 (d_nk + log|Sigma_k| + D log 2 pi) from squared Mahalanobis distances
        d_nk (N x K)."""
        D = self.means.shape[1]
        return np.log(self.weights) - 0.5 * (d + self.whitening[1] + D * np.log(2 * np.pi))

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
        return mu, self._moment_form(c, mu)

    def _moment_form(self, c: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Sigma above as the product c [Sigma_k] over the flattened covariances plus, per
        re-weighting, the spread of the means as a product R^T R with rows sqrt(c_k) (mu_k - mu)
        of R (no cancellation: the means are taken about mu itself).

        Both terms are exactly symmetric as computed (numpy computes an array times its own
        transpose with syrk; with symmetric Sigma_k each entry of the first is the same dot
        product as its mirror), so the sum is symmetrised only where that does not hold: a new
        S x D x D array costs more in page faults than the products themselves, which is also
        why the spread is added a block of re-weightings at a time."""
        D = self.means.shape[1]
        sigma = (c @ self.covariances.reshape(-1, D * D)).reshape(c.shape[:-1] + (D, D))
        if not np.array_equal(sigma, sigma.mT):
            sigma = sigma + sigma.mT
            sigma *= 0.5
        spread = self.means - mu[..., None, :]
        spread *= np.sqrt(c)[..., :, None]
        add_gram(sigma, spread)
        return sigma


def add_gram(out: np.ndarray, rows: np.ndarray, block: int = 16) -> None:
    """out += R^T R for each R in `rows` (... x n x D), out (... x D x D): one symmetric product
    (syrk) per matrix, through a work array of `block` matrices (a temporary for the whole stack
    would be fresh memory, and its page faults cost more than the products)."""
    out_flat = out.reshape((-1,) + out.shape[-2:])
    rows_flat = rows.reshape((-1,) + rows.shape[-2:])
    work = np.empty((min(block, out_flat.shape[0]),) + out.shape[-2:])
    for start in range(0, out_flat.shape[0], block):
        chunk = slice(start, start + block)
        gram = work[:rows_flat[chunk].shape[0]]
        np.matmul(rows_flat[chunk].mT, rows_flat[chunk], out=gram)
        out_flat[chunk] += gram


TRUNCATION = 60.0


def fit_gmm(data: np.ndarray, n_clusters: int, rng: np.random.Generator,
            init: GaussianMixture | None = None, max_iterations: int = 100,
            tolerance: float = 1e-5, regularization: float = 1e-6) -> GaussianMixture:
    """EM from `init` when it has n_clusters clusters, else from k-means++ seeded means.

    Stops when the log-likelihood changes by less than tolerance (relative) or decreases.
    Clusters whose weight falls below 1e-4 / K restart at a random data point.
    """
    return fit_gmm_responsibilities(data, n_clusters, rng, init, max_iterations, tolerance,
                                    regularization)[0]


def fit_gmm_responsibilities(data: np.ndarray, n_clusters: int, rng: np.random.Generator,
                             init: GaussianMixture | None = None, max_iterations: int = 100,
                             tolerance: float = 1e-5, regularization: float = 1e-6,
                             known: tuple[np.ndarray, np.ndarray] | None = None
                             ) -> tuple[GaussianMixture, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """`fit_gmm`, also returning the (truncated) responsibilities of the data under the returned
    mixture, N x K, and the squared Mahalanobis distances (d, exact) of the last E-step, both of
    which that E-step has already computed (module doc: d is exact where `exact`, else a lower
    bound on a pair the truncation drops).

    `known`, the (d, exact) of the first rows of `data` under `init` (from the fit that returned
    `init`, for the points it kept), spares the first E-step those rows; it is ignored when EM
    does not start from `init`.
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
        mixture, known = seed_mixture(data, n_clusters, rng, regularization), None
    previous_ll, previous, distances = -np.inf, None, None
    for _ in range(max_iterations):
        distances = _distances(mixture, data, distances, known)
        known = None
        resp, log_norm = _truncated_responsibilities(mixture, *distances[1:])
        ll = float(np.sum(log_norm))
        if ll < previous_ll:
            return previous
        if abs(ll - previous_ll) <= tolerance * abs(ll):
            return mixture, resp, distances[1:]
        previous_ll, previous = ll, (mixture, resp, distances[1:])
        mixture = _maximise(data, resp, rng, regularization)
    distances = _distances(mixture, data, distances)
    return mixture, _truncated_responsibilities(mixture, *distances[1:])[0], distances[1:]


def _distances(mixture: GaussianMixture, data: np.ndarray,
               last: tuple[GaussianMixture, np.ndarray, np.ndarray] | None,
               known: tuple[np.ndarray, np.ndarray] | None = None
               ) -> tuple[GaussianMixture, np.ndarray, np.ndarray]:
    """(mixture, d, exact): squared Mahalanobis distances d_nk, exact where `exact`, elsewhere
    lower bounds for pairs the truncation drops anyway (module doc). Without the previous
    iteration's distances every pair is computed, except in the first rows whose (d, exact)
    under this mixture are `known`; so is every pair after a tied mixture (the seed: its one
    covariance is far from every fitted one, so the bounds would prune almost nothing, 1350 of
    15840 pairs in the bench's first scenario, for more than that work)."""
    N, K = data.shape[0], mixture.n_clusters
    if last is None or last[0].tied:
        d, exact = np.empty((N, K)), np.zeros((N, K), dtype=bool)
        if known is None and mixture.tied:
            _fill_tied(mixture, data, d, exact)
            return mixture, d, exact
        pairs = np.ones((N, K), dtype=bool)
        if known is not None:
            rows = known[0].shape[0]
            d[:rows], exact[:rows] = known
            pairs[:rows] = False
        _fill(mixture, data, d, exact, pairs)
        return mixture, d, exact
    old, d_old, exact_old = last
    chol_new = mixture.cholesky
    inv_chol_old = old.whitening[0].mT
    inv_chol_new = mixture.whitening[0].mT
    inverse_map = inv_chol_old @ chol_new                                  # M^-1
    s = 1.0 / _norm_bound(inverse_map)
    delta = np.linalg.norm(np.einsum("kij,kj->ki", inv_chol_new, mixture.means - old.means),
                           axis=1)
    root_old = np.sqrt(d_old)
    d = np.maximum(s * root_old - delta, 0.0) ** 2
    exact = np.zeros((N, K), dtype=bool)
    # First the pair of each point's most likely cluster in the last iteration (usually still
    # the most likely), for a best exact term to prune against.
    first = np.zeros((N, K), dtype=bool)
    last_best = np.argmax(np.where(exact_old, old.log_density_terms(d_old), -np.inf), axis=1)
    first[np.arange(N), last_best] = True
    _fill(mixture, data, d, exact, first)
    bound = mixture.log_density_terms(d)
    best = np.max(np.where(exact, bound, -np.inf), axis=1)
    _fill(mixture, data, d, exact, (bound > best[:, None] - TRUNCATION) & ~exact)
    return mixture, d, exact


def _norm_bound(A: np.ndarray) -> np.ndarray:
    """Upper bounds on |A_k|_2 (K x D x D): the smaller of 1 + |A_k - I|_F (tight where A_k is
    close to I: clusters that barely moved) and sqrt(|A_k|_1 |A_k|_inf) (Hoelder; far tighter
    once they moved far), raised by far more than their round-off."""
    near = 1.0 + np.linalg.norm(A - np.eye(A.shape[-1]), axis=(1, 2))
    magnitude = np.abs(A)
    hoelder = np.sqrt(magnitude.sum(axis=1).max(axis=1) * magnitude.sum(axis=2).max(axis=1))
    return np.minimum(near, hoelder) * (1.0 + 1e-8)


def _fill(mixture: GaussianMixture, data: np.ndarray, d: np.ndarray, exact: np.ndarray,
          pairs: np.ndarray) -> None:
    """Compute d_nk = |L_k^-1 (z_n - mu_k)|^2 for the (n, k) in `pairs`, one triangular product
    (BLAS trmm, half the work of a full product) per cluster: over all points where the cluster
    has most of them (no gather), else over its pairs' points (a slice where they are a range
    of rows, as the new points of a warm start are, else gathered)."""
    inv_chol_T = mixture.whitening[0]
    N = data.shape[0]
    work = np.empty_like(data)              # z_n - mu_k of one cluster, whitened in place
    for k in np.flatnonzero(pairs.any(axis=0)):
        rows = np.flatnonzero(pairs[:, k])
        full = 2 * rows.size > N
        points = data if full else _rows_of(data, rows)
        diff = np.subtract(points, mixture.means[k], out=work[:points.shape[0]])
        # diff.T and inv_chol_T[k].T (= L_k^-1) are Fortran-ordered views: no copies.
        white = dtrmm(1.0, inv_chol_T[k].T, diff.T, lower=1, overwrite_b=1)
        squared = np.einsum("in,in->n", white, white)
        d[rows, k] = squared[rows] if full else squared
    exact |= pairs


def _rows_of(data: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """data[rows] for sorted, non-empty rows: a view where they are a range (the new points of a
    warm start are the last rows), else a gathered copy."""
    if rows[-1] - rows[0] + 1 == rows.size:
        return data[rows[0]:rows[-1] + 1]
    return np.take(data, rows, axis=0)


def _fill_tied(mixture: GaussianMixture, data: np.ndarray, d: np.ndarray,
               exact: np.ndarray) -> None:
    """All d_nk of a tied mixture (the seeded first E-step): with the one L, the points and the
    means are whitened once each (one product instead of one per cluster),
    w_n = L^-1 (z_n - c), m_k = L^-1 (mu_k - c), and d_nk = |w_n|^2 + |m_k|^2 - 2 w_n^T m_k
    (one more product). With c the data mean and L that of the data covariance (the seed's),
    |w_n|^2 and |m_k|^2 are of the size of the distances, so the sum loses nothing to
    cancellation."""
    inv_chol = mixture.whitening[0][0].T
    centre = data.mean(axis=0)
    white = dtrmm(1.0, inv_chol, (data - centre).T, lower=1, overwrite_b=1)
    white_means = dtrmm(1.0, inv_chol, (mixture.means - centre).T, lower=1, overwrite_b=1)
    np.matmul(white.T, white_means, out=d)
    d *= -2.0
    d += np.einsum("in,in->n", white, white)[:, None]
    d += np.einsum("ik,ik->k", white_means, white_means)
    np.maximum(d, 0.0, out=d)
    exact[:] = True


def _truncated_responsibilities(mixture: GaussianMixture, d: np.ndarray,
                                exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r_nk (zero where truncated, module doc) and log sum_k w_k N(z_n | k) from d."""
    log_joint = np.where(exact, mixture.log_density_terms(d), -np.inf)
    # log-sum-exp by hand (scipy's costs about a millisecond per call here in checks alone);
    # every point has an exact pair, so its peak is finite.
    peak = np.max(log_joint, axis=1, keepdims=True)
    log_joint -= peak
    log_joint[log_joint < -TRUNCATION] = -np.inf
    terms = np.exp(log_joint, out=log_joint)
    total = np.sum(terms, axis=1, keepdims=True)
    terms /= total
    return terms, (peak + np.log(total))[:, 0]


def seed_mixture(data: np.ndarray, K: int, rng: np.random.Generator,
                 reg: float) -> GaussianMixture:
    """k-means++ means, data covariance. Each next mean is drawn with probability ~ squared
    distance to the nearest mean so far (by inverse CDF, as Generator.choice with p draws); the
    distances are kept up to date one mean at a time, each from one matrix-vector product with
    the centred points: |z_n - m|^2 = |z_n|^2 - 2 z_n^T m + |m|^2 (clipped at zero: round-off
    in the sampling weights only)."""
    N, D = data.shape
    centred = data - data.mean(axis=0)
    squares = np.einsum("nd,nd->n", centred, centred)
    chosen = [int(rng.integers(N))]
    d2 = np.full(N, np.inf)
    for _ in range(1, K):
        last = chosen[-1]
        np.minimum(d2, squares + squares[last] - 2.0 * (centred @ centred[last]), out=d2)
        np.maximum(d2, 0.0, out=d2)
        cdf = np.cumsum(d2)
        if cdf[-1] > 0:
            chosen.append(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")))
        else:
            chosen.append(int(rng.choice(N)))
    covariance = centred.T @ centred
    covariance /= N
    covariance += reg * np.eye(D)
    return GaussianMixture(np.full(K, 1.0 / K), data[chosen],
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
    # Sum over the points with r_nk > 0 only (truncated responsibilities are zero), all of them
    # where the cluster has most (no gather): Sigma_k m_k = W_k^T W_k with rows
    # sqrt(r_nk) (z_n - mu_k), built in one work array, and a symmetric product (syrk: numpy's
    # product of an array with its own transpose), so Sigma_k comes out exactly symmetric.
    covariances = np.empty((K, D, D))
    work = np.empty((N, D))
    for k, root in enumerate(np.sqrt(resp.T)):     # rows of sqrt(r)^T: contiguous scans
        rows = np.flatnonzero(root)
        full = 2 * rows.size > N
        points = data if full else _rows_of(data, rows)
        weighted = np.subtract(points, means[k], out=work[:points.shape[0]])
        weighted *= (root if full else root[rows])[:, None]
        np.matmul(weighted.T, weighted, out=covariances[k])
    covariances /= mass[:, None, None]
    covariances += reg * np.eye(D)
    if np.any(dead):
        covariances[dead] = np.cov(data.T, bias=True).reshape(D, D) + reg * np.eye(D)
    return GaussianMixture(mass / mass.sum(), means, covariances)
