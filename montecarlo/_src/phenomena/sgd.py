"""SGD on finite sums with known constants, vectorised over independent runs (checks of Theorems 3.1, 3.2).

The finite sum is least squares, ``f_i(w) = 1/2 (a_i^T w - b_i)^2``, for which
everything Theorem 3.1 needs is exact: each ``f_i`` is ``|a_i|^2``-smooth and
satisfies the PL inequality individually with ``mu_i = |a_i|^2``
(``|grad f_i|^2 = 2 |a_i|^2 f_i`` and ``f_i* = 0``), so ``L = max_i |a_i|^2`` and
``mu = min_i |a_i|^2``; ``grad f_i = r_i a_i`` with ``r_i = a_i^T w - b_i``, so the
Gram of per-example gradients is ``G_ij = r_i r_j <a_i, a_j>`` and the confusion
along the path is exact.  Orthogonal ``a_i`` give ``eta = 0`` everywhere; ``d < N``
gives ``eta > 0`` and ``F* > 0``.

SGD (eq. 2): ``w_{k+1} = w_k - alpha grad f_{i_k}(w_k)`` with ``i_k`` uniform.  The
indices of runs ``8k .. 8k+7`` come from ``SeedSequence(seed, spawn_key=(k,))`` in
chunks of 1024 steps, so a run's path depends only on ``(problem, alpha, seed,
run index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import validation
from ..statistics.gram_statistics import eta_star
from ..statistics.means import mean_se
from ..draw.network import haar_semi_orthogonal
from ..draw.random_source import SEED_BLOCK, block_seed, check_rng, check_seed

STEP_CHUNK = 1024
GEOMETRIES = ("gaussian", "sphere", "orthogonal")


@dataclass(frozen=True)
class LeastSquares:
    """``F(w) = (1/N) sum_i 1/2 (a_i^T w - b_i)^2`` with its exact constants."""

    A: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        # Built by hand too: refuse NaN or mismatched shapes here rather than as NaN losses along a path.
        A = validation.finite_array("A", self.A, ndim=(2,))
        b = validation.finite_array("b", self.b, ndim=(1,))
        if b.shape != (A.shape[0],):
            raise ValueError(f"argument 'b' must hold one target per row of A ({A.shape[0]}), got shape {b.shape}")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)

    @property
    def N(self) -> int:
        return self.A.shape[0]

    @property
    def L(self) -> float:
        """Smoothness constant shared by every ``f_i``: ``max_i |a_i|^2``."""
        return float(np.max(np.sum(self.A**2, axis=1)))

    @property
    def mu(self) -> float:
        """Individual PL constant: ``min_i |a_i|^2``."""
        return float(np.min(np.sum(self.A**2, axis=1)))

    @property
    def w_star(self) -> np.ndarray:
        """A minimiser of F (least-squares solution of minimum norm)."""
        return np.linalg.lstsq(self.A, self.b, rcond=None)[0]

    @property
    def F_star(self) -> float:
        return float(self.loss(self.w_star))

    def residuals(self, W) -> np.ndarray:
        """``r_i = a_i^T w - b_i`` for ``W`` of shape ``(..., d)``: shape ``(..., N)``."""
        return W @ self.A.T - self.b

    def loss(self, W) -> np.ndarray:
        return 0.5 * np.mean(self.residuals(W) ** 2, axis=-1)

    def full_gradient(self, W) -> np.ndarray:
        return self.residuals(W) @ self.A / self.N

    def gram(self, W) -> np.ndarray:
        """Exact per-example gradient Gram ``G_ij = r_i r_j <a_i, a_j>``, shape ``(..., N, N)``."""
        r = self.residuals(W)
        return r[..., :, None] * (self.A @ self.A.T) * r[..., None, :]


def least_squares(N: int, d: int, rng, geometry: str = "gaussian", noise: float = 0.0) -> LeastSquares:
    """A random least-squares finite sum with controlled geometry.

    ``geometry``: "gaussian" (``a_i ~ N(0, I_d / d)``), "sphere" (``a_i`` uniform on
    ``S^{d-1}``, so ``L = mu = 1``) or "orthogonal" (orthonormal ``a_i``, needs
    ``d >= N``; then ``eta = 0`` at every ``w``).  Targets ``b = A w_teacher +
    noise * xi`` with ``w_teacher`` uniform on the sphere.

    Parameters
    ----------
    N, d : int >= 1
        Examples and dimension.
    rng : int >= 0 (or a sequence of them), SeedSequence or numpy Generator
        The problem is a pure function of it; ``None`` (fresh OS entropy) and
        negative seeds are refused.
    geometry : "gaussian", "sphere" or "orthogonal"
    noise : float >= 0

    Returns
    -------
    LeastSquares
    """
    N = validation.integer("N", N, minimum=1)
    d = validation.integer("d", d, minimum=1)
    validation.choice("geometry", geometry, GEOMETRIES)
    noise = validation.nonnegative_real("noise", noise)
    rng = np.random.default_rng(check_rng(rng))
    if geometry == "orthogonal":
        if d < N:
            raise ValueError(f"geometry='orthogonal' needs d >= N, got d={d}, N={N}")
        A = haar_semi_orthogonal(rng, (d, N)).T.copy()
    else:
        A = rng.standard_normal((N, d)) / np.sqrt(d)
        if geometry == "sphere":
            A /= np.linalg.norm(A, axis=1, keepdims=True)
    teacher = rng.standard_normal(d)
    teacher /= np.linalg.norm(teacher)
    return LeastSquares(A, A @ teacher + noise * rng.standard_normal(N))


@dataclass(frozen=True)
class SGDPath:
    """Recorded quantities of ``runs`` independent SGD runs at iterations ``iterations``.

    ``loss``, ``gap`` (``F - F*``), ``grad_norm_sq`` (``|grad F|^2``) and ``eta``
    (exact confusion ``max(0, -min_{i != j} <grad f_i, grad f_j>)``) have shape
    ``(runs, len(iterations))``; ``eta_path`` is each run's maximum of ``eta``
    over the recorded iterations; ``weights`` are the final iterates (``runs x d``).
    """

    iterations: np.ndarray
    loss: np.ndarray
    gap: np.ndarray
    grad_norm_sq: np.ndarray
    eta: np.ndarray
    problem: LeastSquares
    alpha: float
    weights: np.ndarray

    @property
    def eta_path(self) -> np.ndarray:
        return self.eta.max(axis=1)

    def mean_gap(self) -> tuple[np.ndarray, np.ndarray]:
        """``E[F(w_k) - F*]`` over runs and its standard error, per recorded iteration."""
        return mean_se(self.gap, axis=0)


def _index_stream(seed, runs: int, N: int):
    """Yield arrays ``(STEP_CHUNK, runs)`` of example indices; run r's column depends only on (seed, r)."""
    n_blocks = math.ceil(runs / SEED_BLOCK)
    generators = [np.random.default_rng(block_seed(seed, k)) for k in range(n_blocks)]
    while True:
        yield np.concatenate([g.integers(N, size=(STEP_CHUNK, SEED_BLOCK)) for g in generators], axis=1)[:, :runs]


def simulate_sgd(problem: LeastSquares, alpha: float, steps: int, runs: int, seed, record_every: int = 1,
                 w0=None) -> SGDPath:
    """Run ``runs`` independent SGD paths of ``steps`` steps from ``w0`` (default 0), all vectorised.

    Records loss, gap, ``|grad F|^2`` and the exact confusion ``eta`` every
    ``record_every`` steps (and at step 0).  The confusion costs ``O(runs N^2)``
    per record, so keep ``record_every`` large for large ``N``.

    Parameters
    ----------
    problem : LeastSquares
    alpha : float > 0
        Constant step size.
    steps : int >= 0
    runs : int >= 1
    seed : int >= 0 (or a sequence of them)
        Runs ``8k .. 8k+7`` draw their indices from ``SeedSequence(seed,
        spawn_key=(k,))`` (the scheme of ``sample_confusion``), in chunks of
        ``STEP_CHUNK`` steps per block; so run ``r``'s path is a pure function
        of ``(problem, alpha, w0, seed, r)``: the first runs do not change when
        more runs are asked for, and a shorter run is a prefix of a longer
        one.  ``None`` and negative seeds are refused.
    record_every : int >= 1
    w0 : array, optional
        Start, ``d`` or ``runs x d`` finite numbers (default 0).

    Returns
    -------
    SGDPath
    """
    if not isinstance(problem, LeastSquares):
        raise TypeError(f"argument 'problem' must be a LeastSquares (from least_squares), got "
                        f"{type(problem).__name__}")
    alpha = validation.positive_real("alpha", alpha)
    steps = validation.integer("steps", steps, minimum=0)
    runs = validation.integer("runs", runs, minimum=1)
    record_every = validation.integer("record_every", record_every, minimum=1)
    seed = check_seed(seed)
    d = problem.A.shape[1]
    if w0 is None:
        W = np.zeros((runs, d))
    else:
        w0 = validation.finite_array("w0", w0, ndim=(1, 2))
        if w0.shape not in ((d,), (runs, d)):
            raise ValueError(f"argument 'w0' must have shape ({d},) or ({runs}, {d}), got {w0.shape}")
        W = np.broadcast_to(w0, (runs, d)).copy()
    F_star = problem.F_star
    records = {"iterations": [], "loss": [], "gap": [], "grad_norm_sq": [], "eta": []}

    def record(k):
        loss = problem.loss(W)
        gradient = problem.full_gradient(W)
        records["iterations"].append(k)
        records["loss"].append(loss)
        records["gap"].append(loss - F_star)
        records["grad_norm_sq"].append(np.sum(gradient**2, axis=1))
        records["eta"].append(np.concatenate([eta_star(problem.gram(W[i:i + 256])) for i in range(0, runs, 256)]))

    record(0)
    stream = _index_stream(seed, runs, problem.N)
    done = 0
    while done < steps:
        chunk = next(stream)[: steps - done]
        for indices in chunk:
            a = problem.A[indices]
            residual = np.einsum("rd,rd->r", a, W) - problem.b[indices]
            W -= alpha * residual[:, None] * a
            done += 1
            if done % record_every == 0 or done == steps:
                record(done)
    stacked = {k: np.array(v) for k, v in records.items()}
    return SGDPath(
        iterations=stacked["iterations"],
        **{k: stacked[k].T for k in ("loss", "gap", "grad_norm_sq", "eta")},
        problem=problem,
        alpha=alpha,
        weights=W,
    )
