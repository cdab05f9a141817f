"""EM for Gaussian mixtures: recovered means, warm start (with known distances), moment
matching."""

import numpy as np
from scipy.special import logsumexp

from gps_trainer.dynamics_prior import transition_points
from gps_trainer.gmm import (GaussianMixture, _fill, _fill_tied, _norm_bound, fit_gmm,
                             fit_gmm_responsibilities, seed_mixture)
from gps_trainer.linear_gaussian import sample_trajectories
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)


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


def test_warm_start_with_known_distances_gives_the_same_mixture():
    """Given a fit and the distances its last E-step computed, a warm refit on data whose first
    rows are the old points reuses those rows' distances and ends where computing them all does."""
    rng = np.random.default_rng(3)
    old = np.concatenate([rng.normal(c, 0.3, size=(60, 3)) for c in (-3.0, 0.0, 3.0)])
    gmm, _, (d, exact) = fit_gmm_responsibilities(old, 3, np.random.default_rng(0))
    data = np.concatenate([old[90:], rng.normal(0.5, 0.4, size=(40, 3))])
    with_known = fit_gmm_responsibilities(data, 3, np.random.default_rng(1), init=gmm,
                                          known=(d[90:], exact[90:]))
    without = fit_gmm_responsibilities(data, 3, np.random.default_rng(1), init=gmm)
    for a, b in ((with_known[0].means, without[0].means),
                 (with_known[0].covariances, without[0].covariances), (with_known[1], without[1])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_tied_first_e_step_gives_the_distances_of_one_cluster_at_a_time():
    """The seeded mixture shares one covariance; its E-step whitens once (gmm._fill_tied) and must
    give the squared Mahalanobis distances of the per-cluster path."""
    rng = np.random.default_rng(4)
    _, data = _clusters(rng)
    seeded = seed_mixture(data, 5, rng, 1e-6)
    assert seeded.tied
    tied = np.empty((data.shape[0], 5))
    _fill_tied(seeded, data, tied, np.zeros(tied.shape, dtype=bool))
    one_by_one = np.empty_like(tied)
    _fill(seeded, data, one_by_one, np.zeros(tied.shape, dtype=bool),
          np.ones(tied.shape, dtype=bool))
    np.testing.assert_allclose(tied, one_by_one, rtol=1e-12, atol=1e-10)


def test_fitted_covariances_and_moments_are_exactly_symmetric():
    """The M-step and the moments skip symmetrising because their products are symmetric as
    computed; downstream fits rely on that."""
    rng = np.random.default_rng(5)
    _, data = _clusters(rng)
    gmm = fit_gmm(data, 4, rng)
    assert np.array_equal(gmm.covariances, gmm.covariances.mT)
    _, sigma = gmm.moments(rng.dirichlet(np.ones(4), size=7))
    assert np.array_equal(sigma, sigma.mT)


def test_norm_bound_is_an_upper_bound_on_the_spectral_norm():
    """The E-step prunes with 1 / _norm_bound(A) <= sigma_min(A^-1); a bound below |A|_2 would
    skip pairs that the truncation keeps."""
    rng = np.random.default_rng(6)
    D = 12
    near = np.eye(D) + 1e-3 * np.tril(rng.standard_normal((20, D, D)))
    far = np.tril(rng.standard_normal((20, D, D))) * rng.uniform(0.1, 10.0, (20, 1, 1))
    for A in (near, far, np.repeat(np.eye(D)[None], 3, axis=0)):
        assert np.all(_norm_bound(A) >= np.linalg.norm(A, ord=2, axis=(1, 2)))


def _plain_em(data, mixture, max_iterations=100, tolerance=1e-5, reg=1e-6):
    """EM with every (point, cluster) pair and untruncated responsibilities, the textbook
    updates (module doc of gps_trainer.gmm) with fit_gmm's stopping rule."""
    previous_ll, previous = -np.inf, None
    for _ in range(max_iterations):
        log_joint = np.stack([np.log(w) - 0.5 * (
            np.sum(np.linalg.solve(np.linalg.cholesky(S), (data - m).T) ** 2, axis=0)
            + np.linalg.slogdet(S)[1] + data.shape[1] * np.log(2 * np.pi))
            for w, m, S in zip(mixture.weights, mixture.means, mixture.covariances)], axis=1)
        log_norm = logsumexp(log_joint, axis=1, keepdims=True)
        ll = float(np.sum(log_norm))
        if ll < previous_ll:
            return previous
        if abs(ll - previous_ll) <= tolerance * abs(ll):
            return mixture
        previous_ll, previous = ll, mixture
        resp = np.exp(log_joint - log_norm)
        mass = resp.sum(axis=0)
        means = resp.T @ data / mass[:, None]
        covariances = np.stack([(r[:, None] * (data - m)).T @ (data - m) / n
                                for r, m, n in zip(resp.T, means, mass)])
        mixture = GaussianMixture(mass / mass.sum(), means,
                                  covariances + reg * np.eye(data.shape[1]))
    return mixture


def test_pruned_truncated_em_ends_where_plain_em_does():
    """Transitions of a trajectory pool spread through state space, so that most clusters are
    far from most points: the E-steps skip pairs (distance bounds) and truncate
    responsibilities, and still reach the mixture of plain EM from the same seed."""
    rng = np.random.default_rng(7)
    T, dX, dU = 60, 8, 3
    dynamics = random_stable_dynamics(rng, T, dX, dU, noise=0.01, radius=0.98)
    X, U = sample_trajectories(random_controller(rng, T, dX, dU, variance=0.3), dynamics,
                               random_initial_state(rng, dX, variance=4.0), 8, rng)
    data = transition_points(X, U)
    seeded = seed_mixture(data, 10, np.random.default_rng(8), 1e-6)
    gmm, resp, (d, exact) = fit_gmm_responsibilities(data, 10, np.random.default_rng(8))
    plain = _plain_em(data, seeded)
    np.testing.assert_allclose(gmm.weights, plain.weights, rtol=1e-9)
    np.testing.assert_allclose(gmm.means, plain.means, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gmm.covariances, plain.covariances, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(resp, plain.responsibilities(data), atol=1e-12)
    assert exact.sum() < 0.5 * exact.size, "the last E-step skipped no pairs: nothing tested"
