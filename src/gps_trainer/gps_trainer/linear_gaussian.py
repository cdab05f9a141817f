"""Linear-Gaussian dynamics and trajectory marginals (paper Sec. 4); the controller itself is
gps_controller.policies.linear_gaussian.LinearGaussianController, which the robot runs.

    controller  p(u_t | x_t)         = N(K_t x_t + k_t, Sigma_t)
    dynamics    p(x_t+1 | x_t, u_t)  = N(F_t [x_t; u_t] + f_t, W_t)
    initial     p(x_0)               = N(mu_0, Sigma_0)

Together they define a Gaussian trajectory distribution p(tau) whose per-step state-action
marginals N(mu_t, S_t) come from `forward_pass`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.policies.linear_gaussian import (LinearGaussianController, as_finite_array,
                                                     cholesky_per_step)


@dataclass(frozen=True, eq=False)
class LinearGaussianDynamics:
    """x_t+1 = F_t [x_t; u_t] + f_t + w_t, w_t ~ N(0, W_t), for the T-1 transitions t = 0..T-2."""

    F: np.ndarray           # (T-1) x dX x (dX+dU)
    f: np.ndarray           # (T-1) x dX
    covariance: np.ndarray  # (T-1) x dX x dX

    def __post_init__(self) -> None:
        F = np.asarray(self.F, dtype=float)
        if F.ndim != 3 or F.shape[2] <= F.shape[1]:
            raise ValueError(f"F: expected shape (T-1, dX, dX+dU), got {F.shape}")
        steps, dX, _ = F.shape
        object.__setattr__(self, "F", as_finite_array("F", F, F.shape))
        object.__setattr__(self, "f", as_finite_array("f", self.f, (steps, dX)))
        covariance = as_finite_array("covariance", self.covariance, (steps, dX, dX))
        if not is_symmetric(covariance):
            raise ValueError("covariance: not symmetric")
        object.__setattr__(self, "covariance", covariance)

    @property
    def T(self) -> int:
        """Number of time steps of the trajectories it describes (transitions + 1)."""
        return self.F.shape[0] + 1

    @property
    def dX(self) -> int:
        return self.F.shape[1]

    @property
    def dU(self) -> int:
        return self.F.shape[2] - self.F.shape[1]


@dataclass(frozen=True, eq=False)
class InitialState:
    """p(x_0) = N(mu, sigma) for one condition."""

    mu: np.ndarray     # dX
    sigma: np.ndarray  # dX x dX

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=float)
        if mu.ndim != 1:
            raise ValueError(f"mu: expected shape (dX,), got {mu.shape}")
        object.__setattr__(self, "mu", as_finite_array("mu", mu, mu.shape))
        sigma = as_finite_array("sigma", self.sigma, (mu.size, mu.size))
        cholesky_per_step("sigma", sigma[None])
        object.__setattr__(self, "sigma", sigma)


@dataclass(frozen=True, eq=False)
class TrajectoryMarginals:
    """State-action marginals p(x_t, u_t) = N(mu_t, sigma_t) of a trajectory distribution."""

    mu: np.ndarray     # T x (dX+dU)
    sigma: np.ndarray  # T x (dX+dU) x (dX+dU)
    dX: int


def is_symmetric(matrices: np.ndarray) -> bool:
    """Whether a stack of matrices is symmetric to round-off (rtol 1e-8, atol 1e-10); exactly
    symmetric ones (the usual case: fits symmetrise what they return) pass on one comparison,
    without the temporaries of the tolerance check."""
    transposed = np.swapaxes(matrices, -1, -2)
    return bool(np.array_equal(matrices, transposed)
                or np.allclose(matrices, transposed, rtol=1e-8, atol=1e-10))


def check_compatible(controller: LinearGaussianController, dynamics: LinearGaussianDynamics,
                     initial_state: InitialState) -> None:
    """Raise ValueError naming the mismatch when the three parts do not describe one system."""
    if (controller.dX, controller.dU) != (dynamics.dX, dynamics.dU):
        raise ValueError(f"controller: (dX, dU) = {(controller.dX, controller.dU)} but dynamics "
                         f"has {(dynamics.dX, dynamics.dU)}")
    if controller.T != dynamics.T:
        raise ValueError(f"controller: T = {controller.T} but dynamics has T = {dynamics.T}")
    if initial_state.mu.size != dynamics.dX:
        raise ValueError(f"initial_state: dX = {initial_state.mu.size} but dynamics has "
                         f"dX = {dynamics.dX}")


def forward_pass(controller: LinearGaussianController, dynamics: LinearGaussianDynamics,
                 initial_state: InitialState) -> TrajectoryMarginals:
    """Propagate p(x_t, u_t): mu_u = K mu_x + k, S_uu = K S_xx K^T + Sigma,
    then mu_x' = F mu_t + f, S_x'x' = F S_t F^T + W (see state_moments)."""
    check_compatible(controller, dynamics, initial_state)
    T, dX, dU = controller.T, controller.dX, controller.dU
    K, k, covariance = controller.K, controller.k, controller.covariance
    mu = np.empty((T, dX + dU))
    sigma = np.empty((T, dX + dU, dX + dU))
    mu_x, sigma_x = state_moments(K[None], k[None], covariance[None], dynamics.F[None],
                                  dynamics.f[None], dynamics.covariance[None],
                                  initial_state.mu[None], initial_state.sigma[None])
    mu[:, :dX], sigma[:, :dX, :dX] = mu_x[0], 0.5 * (sigma_x[0] + sigma_x[0].mT)
    mu_x, sigma_x = mu[:, :dX], sigma[:, :dX, :dX]
    K_sigma = K @ sigma_x
    mu[:, dX:] = np.einsum("tux,tx->tu", K, mu_x) + k
    sigma[:, dX:, :dX] = K_sigma
    sigma[:, :dX, dX:] = np.swapaxes(K_sigma, 1, 2)
    sigma[:, dX:, dX:] = K_sigma @ np.swapaxes(K, 1, 2) + covariance
    return TrajectoryMarginals(mu=mu, sigma=sigma, dX=dX)


def state_moments(K: np.ndarray, k: np.ndarray, covariance: np.ndarray, F: np.ndarray,
                  f: np.ndarray, W: np.ndarray, mu0: np.ndarray, sigma0: np.ndarray,
                  project: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The state marginals N(mu_t, S_t), t = 0..T-1, of B closed loops at once: mu (B x T x dX)
    and S (B x T x dX x dX), or only R_t S_t (B x T x r x dX) for given R = `project`.

    Every argument has a leading batch axis: K, k, covariance (B x T x ...) of the controllers,
    F = [A B], f, W (B or 1 x T-1 x ...) of the dynamics, mu0, sigma0 (B x ...). Under
    u = K x + k + noise the state evolves as x' = A_cl x + b + w' with A_cl = A + B K,
    b = B k + f and Cov w' = B Sigma B^T + W:

        mu_t+1 = A_cl mu_t + b,    S_t+1 = A_cl S_t A_cl^T + B Sigma B^T + W,

    which equals F S_(x,u) F^T + W of the joint marginal. A_cl, b and Cov w' are formed for a
    block of steps at once (small enough to stay in cache); each step is then one product
    A_cl [S_t mu_t], one product (A_cl S_t) A_cl^T and one sum with [Cov w' b]. S_t is not
    re-symmetrised: its asymmetry stays at round-off, since a stable A_cl shrinks it while each
    step adds only its own round-off.
    """
    B, T, dU, dX = K.shape
    block = 16
    mu = np.empty((B, T, dX))
    out = np.empty((B, T, dX, dX) if project is None else project.shape)
    moments = np.empty((B, dX, dX + 1))                          # [S_t mu_t]
    moments[..., :dX], moments[..., dX] = sigma0, mu0
    shared = F.shape[0] == 1 and B > 1
    # Work arrays of one block, reused by every block: fresh arrays of this size cost more in
    # page faults than the products that fill them.
    work = (np.empty((block, dX, B, dX)), np.empty((block, dX, B, dX + 1)),
            np.empty((block, dX, B * dU))) if shared else None
    for start in range(0, T, block):
        steps = slice(start, min(start + block, T - 1))
        closed, added = _closed_loop(K[:, steps], k[:, steps], covariance[:, steps],
                                     F[:, steps], f[:, steps], W[:, steps], work)
        for t in range(start, min(start + block, T)):
            mu[:, t] = moments[..., dX]
            if project is None:
                out[:, t] = moments[..., :dX]
            else:
                np.matmul(project[:, t], moments[..., :dX], out=out[:, t])
            if t < T - 1:
                propagated = closed[:, t - start] @ moments
                np.matmul(propagated[..., :dX], closed[:, t - start].mT, out=moments[..., :dX])
                moments[..., dX] = propagated[..., dX]
                moments += added[:, t - start]
    return mu, out


def _closed_loop(K: np.ndarray, k: np.ndarray, covariance: np.ndarray, F: np.ndarray,
                 f: np.ndarray, W: np.ndarray,
                 work: tuple[np.ndarray, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """A_cl = A + B K and [Cov w' b] = [B Sigma B^T + W, B k + f] for a block of steps
    (state_moments), B x steps x dX x ... each. Dynamics shared by all items (leading axis 1)
    multiply all items' K, Sigma, k at once, one product per step (items side by side in the
    columns, written into the `work` arrays), instead of one small product per item and step."""
    B, steps, dU, dX = K.shape
    B_t = F[..., dX:]
    if work is not None:
        B_t = B_t[0]
        closed, added, spread = (a[:steps] for a in work)
        np.matmul(B_t, np.ascontiguousarray(K.transpose(1, 2, 0, 3)).reshape(steps, dU, B * dX),
                  out=closed.reshape(steps, dX, B * dX))
        closed += F[0, :, :, None, :dX]
        np.matmul(B_t, np.ascontiguousarray(covariance.transpose(1, 2, 0, 3)).reshape(
            steps, dU, B * dU), out=spread)
        np.matmul(spread.reshape(steps, dX * B, dU), B_t.mT,
                  out=added[..., :dX].reshape(steps, dX * B, dX))
        added[..., :dX] += W[0, :, :, None]
        np.matmul(B_t, np.ascontiguousarray(k.transpose(1, 2, 0)), out=added[..., dX])
        added[..., dX] += f[0, :, :, None]
        return closed.transpose(2, 0, 1, 3), added.transpose(2, 0, 1, 3)
    closed = B_t @ K
    closed += F[..., :dX]
    added = np.empty(closed.shape[:-1] + (dX + 1,))
    np.matmul(B_t @ covariance, B_t.mT, out=added[..., :dX])
    added[..., :dX] += W
    added[..., dX] = (B_t @ k[..., None])[..., 0] + f
    return closed, added


def sample_trajectories(controller: LinearGaussianController, dynamics: LinearGaussianDynamics,
                        initial_state: InitialState, n: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n exact samples of p(tau): x_0 ~ N(mu_0, Sigma_0), u_t ~ p(u_t|x_t),
    x_t+1 ~ p(x_t+1|x_t, u_t).

    Returns X (n x T x dX) and U (n x T x dU).
    """
    check_compatible(controller, dynamics, initial_state)
    T, dX, dU = controller.T, controller.dX, controller.dU
    X, U = np.zeros((n, T, dX)), np.zeros((n, T, dU))
    x = rng.multivariate_normal(initial_state.mu, initial_state.sigma, size=n)
    for t in range(T):
        u = (x @ controller.K[t].T + controller.k[t]
             + rng.standard_normal((n, dU)) @ controller.chol_covariance[t].T)
        X[:, t], U[:, t] = x, u
        if t < T - 1:
            z = np.concatenate([x, u], axis=1)
            w = rng.multivariate_normal(np.zeros(dX), dynamics.covariance[t], size=n)
            x = z @ dynamics.F[t].T + dynamics.f[t] + w
    return X, U
