"""EM for Gaussian mixtures: recovered means, warm start, moment matching."""

import numpy as np

from gps_trainer.gmm import GaussianMixture, fit_gmm


def _clusters(rng, n=300):
    means = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 2.0], [0.0, 9.0, -4.0]])
    scales = [0.5, 1.0, 0.3]
    data = np.concatenate([m + s * rng.standard_normal((n, 3)) for m, s in zip(means, scales)])
    return means, data


def _matched(estimated, true):
    return np.array([estimated[np.argmin(np.linalg.norm(estimated - m, axis=1))] for m in true])


def test_em_recovers_the_means_of_well_separated_clusters():
    rng = np.random.default_rng(0)
    means, data = _clusters(rng)
    gmm = fit_gmm(data, 3, rng)
    np.testing.assert_allclose(_matched(gmm.means, means), means, atol=0.15)
    np.testing.assert_allclose(np.sort(gmm.weights), [1 / 3] * 3, atol=0.01)
    np.testing.assert_allclose(gmm.responsibilities(data).sum(axis=1), 1.0)


def test_warm_start_from_a_converged_mixture_stays_put():
    rng = np.random.default_rng(1)
    _, data = _clusters(rng)
    gmm = fit_gmm(data, 3, rng)
    again = fit_gmm(data, 3, rng, init=gmm, max_iterations=3)
    np.testing.assert_allclose(again.means, gmm.means, atol=1e-3)


def test_moments_match_the_mixture_mean_and_variance():
    gmm = GaussianMixture(np.array([0.5, 0.5]), np.array([[0.0], [3.0]]),
                          np.array([[[1.0]], [[2.0]]]))
    w = np.array([0.25, 0.75])
    mu, sigma = gmm.moments(w)
    # Law of total variance for two components: sum w_k s_k + w_1 w_2 (m_1 - m_2)^2.
    assert mu[0] == 0.75 * 3.0
    np.testing.assert_allclose(sigma[0, 0], 0.25 * 1.0 + 0.75 * 2.0 + 0.25 * 0.75 * 9.0)
