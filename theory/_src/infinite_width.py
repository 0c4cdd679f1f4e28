r"""Infinite-width NNGP and tangent kernels of the paper's network (eq. 4) under Strategy 4.1.

Network: ``z_0 = W_0 x (+ b_0)``, ``z_p = W_p s(z_{p-1}) (+ b_p)`` for ``p = 1..beta``,
``g = gamma s(z_beta)`` (or ``gamma z_beta`` without output activation), with
``W_0 ~ N(0, 1/d)``, ``W_p ~ N(0, 1/(kappa n_{p-1}))`` entries ("standard"
parameterisation) and ``b_p ~ N(0, sigma_b^2)``.

**NNGP** (Neal 1996; Lee et al. 2018; Matthews et al. 2018).  As the width
grows, each unit of ``z_p`` is a centred Gaussian process with covariance

    Sigma_0(x, x') = <x, x'> / d + sigma_b^2,
    Sigma_p(x, x') = E[s(u) s(v)] / kappa + sigma_b^2,   (u, v) ~ N(0, Sigma_{p-1} on {x, x'}).

**Tangent kernel** (Jacot et al. 2018) of the output pre-activation
``z_beta``.  The gradient with respect to ``W_p`` is ``delta_p h_p^T`` (``h_p`` the
layer input, ``delta_p = d z_beta / d z_p``), so the kernel is
``sum_p <delta_p, delta_p'> <h_p, h_p'>`` (+ ``<delta_p, delta_p'>`` per bias).  In the
limit ``<h_p, h_p'> = n E[s(u) s(v)] = n kappa (Sigma_p - sigma_b^2)`` for ``p >= 1`` (``n`` the
width), ``<h_0, h_0'> = <x, x'>``, and ``<delta_p, delta_p'> = D_p = prod_{q=p}^{beta-1} Sdot_q / kappa``
with ``Sdot_q = E[s'(u) s'(v)]`` under ``Sigma_q`` (``delta_p = s'(z_p) o W_{p+1}^T delta_{p+1}``
and the ``n`` entries of ``W_{p+1}^T delta_{p+1}`` have variance ``<delta_{p+1}, delta_{p+1}'> / (kappa n)``).
Hence

    Theta(x, x') = n Theta_hat(x, x') + D_0 <x, x'> + [trained biases] sum_{p=0}^{beta} D_p,
    Theta_hat = sum_{p=1}^{beta} D_p kappa (Sigma_p - sigma_b^2),

**Biases: initial spread and training are separate.**  ``z_p = W_p h_p + b_p``
with an unscaled bias, so ``d z_beta / d b_p = delta_p`` and a trained bias adds
``<delta_p, delta_p'> -> D_p`` to the kernel *whatever its initial law*: a bias
that starts at zero (``sigma_b = 0``, the network's default ``bias_std=0``)
does not move ``Sigma_p`` but its gradient still counts.  So ``bias_std``
(``sigma_b``) enters only the forward recursion, and the flag ``trained_bias``
adds ``sum_p D_p`` (``1`` at depth 0, the generalised linear model).  For a
linear network of depth ``beta`` the term is ``sum_{p=0}^{beta} kappa^{-(beta - p)}``,
``1 + 1/kappa`` at depth 1.

and in the standard parameterisation the kernel grows like the width: the
cosines, which are scale free, have the limit ``Theta_hat`` normalised.
``tangent_kernel`` returns ``Theta_hat`` and the width-independent terms;
``Theta(width)`` combines them (the first-order deterministic value).

**Per-example gradients.**  With ``l'_i = dl/dg`` at example ``i``,
``grad f_i = l'_i grad g_i = a_i grad z_beta(x_i)`` with
``a_i = gamma l'(g_i, y_i) s'(z_beta(x_i))`` (``s' = 1`` without output activation),
so ``G_ij = a_i a_j Theta(x_i, x_j)`` exactly at every width.  At infinite width
``z_beta(X)`` is Gaussian, ``N(0, Sigma_beta)``: the output and the loss
derivative stay random (a single output unit does not self-average) while
``Theta`` becomes deterministic.  So the cosines tend to
``sign(a_i a_j) Theta_hat_ij / sqrt(Theta_hat_ii Theta_hat_jj)`` -- deterministic
magnitudes, random signs -- and ``eta* / width`` to
``max(0, -min_{i != j} a_i a_j Theta_hat_ij)``.  This module gives the deterministic
part (``Sigma_beta``, ``Theta``); the random factors ``a`` are sampled in
``montecarlo`` (``sample_infinite_width``: the Gaussian ``z_beta(X)``, not the network).

Gaussian expectations ``E[s(u) s(v)]``, ``E[s'(u) s'(v)]``: from each activation's
declaration in ``activations.py`` (one per activation): closed forms for "linear" and
"relu" (the arc-cosine kernels of Cho & Saul 2009); tanh and sigmoid by
tensor-product Gauss-Hermite quadrature with 256 nodes per axis (errors below
1e-10 for pre-activation variances up to 2, tested against an independent
Gauss-Legendre rule; tanh's derivative converges more slowly for larger
variances, about 1e-9 at variance 4).  An activation added with
``register_activation`` is accepted by every function here, with its closed
form when it gave one and by the same quadrature otherwise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .activations import REGISTRY, activation_names
from .sphere import sphere_inner_product_measure


def activation_moments(activation: str, a, b, c):
    """``(E[s(u) s(v)], E[s'(u) s'(v)])`` for ``(u, v) ~ N(0, [[a, c], [c, b]])``: the maps of the recursion above.

    From the activation's declaration (``activations.REGISTRY``, registered
    ones included): its closed form (relu, linear) or Gauss-Hermite quadrature.
    """
    _check_activation(activation)
    return REGISTRY[activation].gaussian_moments(a, b, c)


def _check_activation(activation) -> None:
    """A name of the live registry (built-in or registered); ``ValueError`` naming argument 'activation'."""
    if not isinstance(activation, str) or activation not in REGISTRY:
        raise ValueError(f"argument 'activation' must be one of {', '.join(activation_names())} (or a name added "
                         f"with register_activation); got {activation!r}")


def _diagonal_moment(activation, a):
    """``E[s(u)^2]`` for ``u ~ N(0, a)``, evaluated once per distinct variance (sphere data: one)."""
    values, index = np.unique(a, return_inverse=True)
    return activation_moments(activation, values, values, values)[0][index].reshape(np.shape(a))


def _pair_recursion(activation, depth, kappa, sb2, d, inner_ii, inner_jj, inner_ij, trained_bias):
    """The layer recursion of the module docstring for pairs of inputs, vectorised over pairs.

    Inputs are ``<x, x>``, ``<x', x'>`` and ``<x, x'>`` per pair; returns the
    off-diagonal ``Sigma_p(x, x')`` of every layer, ``Theta_hat(x, x')`` and
    the width-independent part ``D_0 <x, x'> (+ sum_p D_p with trained biases)``.
    ``sb2`` (the initial bias variance) enters only the forward covariances.
    """
    a, b, c = (np.asarray(v, dtype=float) / d + sb2 for v in (inner_ii, inner_jj, inner_ij))
    sigmas, products, derivatives = [c], [], []  # E[s s], E[s' s'] under Sigma_{p-1}, for p = 1..depth
    for _ in range(depth):
        value, derivative = activation_moments(activation, a, b, c)
        products.append(value)
        derivatives.append(derivative)
        a, b = (_diagonal_moment(activation, v) / kappa + sb2 for v in (a, b))
        c = value / kappa + sb2
        sigmas.append(c)
    # D_p = prod_{q = p}^{depth - 1} Sdot_q / kappa, D_depth = 1
    D = [np.ones_like(c)] * (depth + 1)
    for p in range(depth - 1, -1, -1):
        D[p] = D[p + 1] * derivatives[p] / kappa
    inner = np.asarray(inner_ij, dtype=float)
    theta_hat = sum((D[p] * products[p - 1] for p in range(1, depth + 1)), np.zeros_like(c))
    # A trained bias contributes its gradient d z_beta / d b_p = delta_p, i.e. D_p, even when it starts at 0.
    theta_fixed = D[0] * inner + (sum(D) if trained_bias else 0.0)
    if depth == 0:  # the generalised linear model: no width at all; d z / d b_0 = 1
        theta_hat, theta_fixed = np.zeros_like(c), inner + (1.0 if trained_bias else 0.0)
    return sigmas, theta_hat, theta_fixed


def _trained_bias(trained_bias, bias_std) -> bool:
    """Resolve ``trained_bias``: ``None`` keeps the historical reading "biases exist iff ``bias_std > 0``"."""
    if not float(bias_std) >= 0 or not np.isfinite(float(bias_std)):
        raise ValueError(f"argument 'bias_std' must be a finite real >= 0, got {bias_std!r}")
    if trained_bias is None:
        return float(bias_std) > 0
    if not isinstance(trained_bias, (bool, np.bool_)):
        raise ValueError(f"argument 'trained_bias' must be True, False or None, got {trained_bias!r}")
    return bool(trained_bias)


def _check_architecture(depth, activation, kappa):
    _check_activation(activation)
    if int(depth) != depth or depth < 0:
        raise ValueError(f"argument 'depth' must be an integer >= 0, got {depth!r}")
    if not kappa > 0:
        raise ValueError(f"argument 'kappa' must be > 0, got {kappa!r}")


def _check_sphere_law(depth, activation, kappa, d, minimum_d: int = 2, why_d: str = "") -> tuple[int, int]:
    """The architecture and ``d`` of a law over sphere data with a width part (depth >= 1): ``(depth, d)`` as ints.

    Shared by the infinite-width floor and the finite-width law; each error names its argument.
    """
    _check_architecture(depth, activation, kappa)
    if isinstance(depth, bool) or depth < 1:
        raise ValueError(f"argument 'depth' must be >= 1 (at depth 0 the kernel has no width part), got {depth!r}")
    if isinstance(d, bool) or int(d) != d or d < minimum_d:
        raise ValueError(f"argument 'd' must be an integer >= {minimum_d}{why_d}, got {d!r}")
    return int(depth), int(d)


@dataclass(frozen=True)
class Kernels:
    """NNGP covariances and the tangent kernel of ``z_beta`` for a data set (all ``N x N``).

    ``sigmas[p]`` is ``Sigma_p`` (pre-activations of layer ``p``); ``theta_hat`` the
    width-normalised tangent kernel; ``theta_fixed`` the width-independent part
    (first layer and, with ``config["trained_bias"]``, the bias gradients), so
    ``theta(width) = width theta_hat + theta_fixed``.
    """

    sigmas: tuple
    theta_hat: np.ndarray
    theta_fixed: np.ndarray
    config: dict

    def theta(self, width: float) -> np.ndarray:
        """The tangent kernel of ``z_beta`` at a finite width, to first order (deterministic part)."""
        return width * self.theta_hat + self.theta_fixed

    @property
    def output_covariance(self) -> np.ndarray:
        """``Sigma_beta``: the covariance of the Gaussian output pre-activation at infinite width."""
        return self.sigmas[-1]

    def cosines(self) -> np.ndarray:
        """``Theta_hat_ij / sqrt(Theta_hat_ii Theta_hat_jj)``: the limit magnitudes of the gradient cosines."""
        d = np.sqrt(np.diagonal(self.theta_hat))
        return self.theta_hat / np.outer(d, d)


def kernels(X, depth: int, activation: str, kappa: float = 1.0, bias_std: float = 0.0,
            trained_bias: bool | None = None) -> Kernels:
    """The infinite-width kernels of the paper's network for the rows of ``X`` (equations in the module docstring).

    Parameters
    ----------
    X : (N, d) array
        The inputs (any norms).
    depth : int >= 0
        ``beta``.
    activation : str
        "relu", "tanh", "sigmoid", "linear", or a name added with ``register_activation``.
    kappa : float > 0
        Strategy 4.1's variance divisor.
    bias_std : float >= 0
        ``sigma_b``, the standard deviation of the biases at initialisation:
        enters the NNGP recursion ``Sigma_p`` only.
    trained_bias : bool or None
        Whether every layer has a (trained) bias, whose gradient adds
        ``sum_p D_p`` to ``Theta_fixed`` even at ``bias_std = 0``
        (``montecarlo.MLP(bias=True)``: pass ``trained_bias=net.bias``).
        ``None`` (default) means ``bias_std > 0``.

    Returns
    -------
    Kernels
        ``Sigma_p`` for ``p = 0..beta``, ``Theta_hat`` and ``Theta_fixed`` (module docstring).
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"argument 'X' must be an N x d array, got shape {X.shape}")
    _check_architecture(depth, activation, kappa)
    trained_bias = _trained_bias(trained_bias, bias_std)
    inner = X @ X.T
    i, j = np.triu_indices(X.shape[0])
    sigmas, theta_hat, theta_fixed = _pair_recursion(activation, depth, kappa, float(bias_std) ** 2, X.shape[1],
                                                     inner[i, i], inner[j, j], inner[i, j], trained_bias)

    def matrix(upper):
        M = np.empty_like(inner)
        M[i, j] = upper
        M[j, i] = upper
        return M

    config = dict(depth=depth, activation=activation, kappa=kappa, bias_std=bias_std, trained_bias=trained_bias,
                  d=X.shape[1])
    return Kernels(tuple(matrix(S) for S in sigmas), matrix(theta_hat), matrix(theta_fixed), config)


@dataclass(frozen=True)
class SphereKernels:
    """The kernels for unit-norm inputs as functions of ``t = <x, x'>`` (cubic splines on a grid of ``t``).

    For data on the sphere every kernel of the recursion depends on a pair only
    through ``t``, so one table serves every data set: ``kernels(X)`` for unit
    rows of ``X`` is ``of_inner_products(X X^T)`` up to the interpolation error
    (below 1e-9 with the default 257 nodes; tested).
    """

    config: dict
    _splines: tuple

    def of_inner_products(self, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Sigma_beta, Theta_hat, Theta_fixed)`` evaluated at the inner products ``T`` (any shape)."""
        T = np.clip(np.asarray(T, dtype=float), -1.0, 1.0)
        return tuple(spline(T) for spline in self._splines)


def sphere_kernels(depth: int, activation: str, d: int, kappa: float = 1.0, bias_std: float = 0.0,
                   nodes: int = 257, trained_bias: bool | None = None) -> SphereKernels:
    """Tabulate the kernels of unit-norm inputs in ``d`` dimensions against their inner product (``SphereKernels``).

    Cheap for many data sets: the recursion runs once on ``nodes`` values of
    ``t`` (Chebyshev points, dense near ``t = +-1`` where the relu kernel has
    its ``(1 - t)^{3/2}`` singularity), not once per pair of every data set.
    ``bias_std`` and ``trained_bias`` as in :func:`kernels` (the initial bias
    spread enters ``Sigma_p``; trained biases add ``sum_p D_p`` to ``Theta_fixed``).
    """
    from scipy.interpolate import CubicSpline

    _check_architecture(depth, activation, kappa)
    if int(d) != d or d < 1:
        raise ValueError(f"argument 'd' must be an integer >= 1, got {d!r}")
    trained_bias = _trained_bias(trained_bias, bias_std)
    t = np.cos(np.linspace(np.pi, 0.0, int(nodes)))
    ones = np.ones_like(t)
    sigmas, theta_hat, theta_fixed = _pair_recursion(activation, depth, kappa, float(bias_std) ** 2, d, ones, ones, t,
                                                     trained_bias)
    splines = tuple(CubicSpline(t, values) for values in (sigmas[-1], theta_hat, theta_fixed))
    config = dict(depth=depth, activation=activation, kappa=kappa, bias_std=bias_std, trained_bias=trained_bias, d=d)
    return SphereKernels(config, splines)


def ntk_relative_variance(depth: int, activation: str) -> float:
    r"""Leading-order ``width * Var Theta(x, x) / E[Theta(x, x)]^2`` of the tangent kernel of ``z_beta`` (our derivation).

    Setting: Strategy 4.1 (any kappa), no biases, no output activation, the
    diagonal of the kernel, width ``n`` in every hidden layer, ``n -> inf`` at
    fixed depth.  Derivation: block ``p >= 1`` of the kernel is
    ``|delta_p|^2 |h_p|^2``; ``|h_p|^2`` is a product over layers ``q < p`` of the
    factors ``xi_q = |s(z_q)|^2 / E`` and ``|delta_p|^2`` a product over ``q >= p``
    of ``eta_q = |s'(z_q) o W_{q+1}^T u|^2 / E`` (``u`` a unit vector independent of
    ``W_{q+1}``); to order ``1/n`` the layers are independent, each factor is
    ``1 + eps`` with ``n Var xi = E[s^4]/E[s^2]^2 - 1``, ``n Var eta = 3 E[s'^4]/E[s'^2]^2 - 1``,
    ``n Cov(xi, eta) = E[s^2 s'^2]/(E[s^2] E[s'^2]) - 1`` (same layer, through the
    shared ``z_q``), and the block-0 term is ``O(1/n)`` of the rest.  For positively
    homogeneous activations every block has the same mean and the fluctuations
    propagate with gain 1, so with ``A_q = beta - q``, ``B_q = q`` (``q = 0..beta-1``)

        n Var / E^2 = sum_q (A_q^2 Var_xi + B_q^2 Var_eta + 2 A_q B_q Cov) / beta^2,

    which gives ``(11 beta^2 + 4) / (3 beta)`` for relu (``5, 5, 1``) and
    ``(4 beta^2 + 2) / (3 beta)`` for the identity (``2, 2, 0``), for ``beta >= 1``.

    Why ``11/3`` per layer and not the ``5`` of Hanin & Nica (ICLR 2020,
    "Finite depth and width corrections to the neural tangent kernel", who
    prove that for relu networks ``E[K^2] / E[K]^2`` grows like
    ``exp(5 beta / n)`` when depth and width grow together): not a different
    normalisation -- the ratio ``Var / E^2`` is scale-free, so no rescaling of
    the kernel changes it.  The difference is that the kernel is a *sum* of
    ``beta`` blocks that are only partly correlated.  One block alone is a
    product of ``beta`` independent factors (``xi_q`` for ``q < p``, ``eta_q`` for
    ``q >= p``), each with ``n Var = 5`` for relu, so its second-moment ratio is
    ``(1 + 5/n)^beta ~ exp(5 beta / n)``: ``5`` per layer.  Two blocks ``p < p'``
    share every layer, but on the layers ``p <= q < p'`` one carries ``xi_q`` and
    the other ``eta_q``, whose covariance is ``1/n``, not ``5/n``; averaging the
    blocks therefore cancels part of the fluctuation and leaves ``11/3``.

    At depth 0 (the generalised linear model ``z = W_0 x``) the kernel is
    ``|x|^2`` exactly, so the value is 0.  The formula does not extend there:
    its ``4 / (3 beta)`` term (from summing over the discrete layers ``q``)
    diverges as ``beta -> 0``, and the sum over ``q = 0..beta-1`` is empty.  tanh and
    sigmoid are not homogeneous (fluctuations of a layer's norm change the
    next layer's derivatives), so no closed form is given for them.

    Raises ``ValueError`` for a depth that is not an integer ``>= 0`` and for
    activations other than ``"relu"`` and ``"linear"``.
    """
    if activation not in ("relu", "linear"):
        raise ValueError(f"the leading-order formula covers 'relu' and 'linear' (homogeneous), not {activation!r}")
    if isinstance(depth, bool) or not float(depth).is_integer() or depth < 0:
        raise ValueError(f"argument 'depth' must be an integer >= 0; got {depth!r}")
    if depth == 0:
        return 0.0  # Theta(x, x) = |x|^2, deterministic: no fluctuation at any width
    if activation == "relu":
        return (11 * depth**2 + 4) / (3 * depth)
    return (4 * depth**2 + 2) / (3 * depth)


@dataclass(frozen=True)
class CosineFloor:
    """The infinite-width law's ``Pr[min_{i != j} cos(grad f_i, grad f_j) < -tau]`` (:func:`infinite_width_cosine_floor`).

    ``pair`` is the exact probability for one pair (``N = 2``); ``lower`` and
    ``upper`` bracket the probability for ``N`` points (equal to ``pair`` at
    ``N = 2``).
    """

    tau: float
    n_samples: int
    pair: float
    lower: float
    upper: float
    config: dict


def _unit_sphere_cosine_table(depth, activation, kappa, d, nodes=129):
    """``f`` on a Chebyshev grid of ``t`` (dense near ``+-1``) and ``Theta_hat(1)``, computed once per architecture.

    Cached on the activation's declaration, not its name alone: a name removed
    and registered again with other functions (tests do) gets its own entry.
    """
    _check_activation(activation)
    return _cosine_table(depth, REGISTRY[activation], kappa, d, nodes)


@functools.lru_cache(maxsize=64)
def _cosine_table(depth, declaration, kappa, d, nodes):
    activation = declaration.name
    t = np.cos(np.linspace(np.pi, 0.0, nodes))
    ones = np.ones_like(t)
    _, theta, _ = _pair_recursion(activation, depth, kappa, 0.0, d, ones, ones, t, False)
    diagonal = float(theta[-1])  # t = 1
    return t, theta / diagonal, diagonal


def _unit_sphere_cosine(depth, activation, kappa, d, t):
    """``f(t) = Theta_hat(t) / Theta_hat(1)``: the limit cosine of two unit inputs with inner product ``t``."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    _, _, diagonal = _unit_sphere_cosine_table(depth, activation, kappa, d)
    ones = np.ones_like(t)
    _, theta, _ = _pair_recursion(activation, depth, kappa, 0.0, d, ones, ones, t, False)
    return theta / diagonal


def _beta_measure_above(grid, values, levels, exact, d):
    """``Pr[f(u) > level]`` and ``Pr[f(u) < -level]`` for each level, ``u = 2B - 1``, ``B ~ Beta((d-1)/2, (d-1)/2)``.

    ``f`` is known on ``grid`` (``values``); the crossings of ``f = +-level``
    are located by Brent's method on the cubic spline through ``values`` and
    polished by one Newton step on ``exact`` (``f`` itself, evaluated once for
    all crossings); then the Beta law of each interval, from the tail on its
    side so that small probabilities keep their digits.
    """
    from scipy import optimize
    from scipy.interpolate import CubicSpline

    measure = lambda low, high: sphere_inner_product_measure(low, high, d)  # noqa: E731  (from its tail side)
    spline = CubicSpline(grid, values)
    slope = spline.derivative()
    jobs = []  # (level index, side, g = +-(f - level) on the grid, crossings: (root index, bracket, target))
    roots = []
    for n, level in enumerate(levels):
        for side, g_values in ((+1, values - level), (-1, -level - values)):
            crossings = []
            for k in np.nonzero(np.sign(g_values[:-1]) != np.sign(g_values[1:]))[0]:
                if g_values[k] == 0 or g_values[k + 1] == 0:
                    continue  # a grid point on the level: the crossing is that point, found by the neighbours
                target = level if side > 0 else -level
                root = optimize.brentq(lambda t: spline(t) - target, grid[k], grid[k + 1], xtol=1e-15, rtol=1e-15)
                crossings.append((len(roots), k, target))
                roots.append(root)
            jobs.append((n, side, g_values, crossings))
    roots = np.asarray(roots, dtype=float)
    if roots.size:
        targets = np.array([target for job in jobs for (_, _, target) in job[3]])
        step = (exact(roots) - targets) / slope(roots)
        roots = np.where(np.isfinite(step), roots - step, roots)
    above, below = np.zeros(len(levels)), np.zeros(len(levels))
    for n, side, g_values, crossings in jobs:
        edges = [-1.0] + [float(np.clip(roots[i], grid[k], grid[k + 1])) for i, k, _ in crossings] + [1.0]
        total = 0.0
        for low, high in zip(edges[:-1], edges[1:]):
            inside = (grid > low) & (grid < high)
            probe = g_values[inside] if inside.any() else np.interp(0.5 * (low + high), grid, g_values)
            if np.median(probe) > 0:
                total += measure(low, high)
        (above if side > 0 else below)[n] = total
    return above, below


def infinite_width_cosine_floor(tau, depth: int, activation: str, d: int, kappa: float = 1.0,
                                n_samples: int = 2) -> CosineFloor:
    r"""The infinite-width limit of ``Pr[min_{i != j} cos(grad f_i, grad f_j) < -tau]``: the floor no width removes.

    Setting: Strategy 4.1 (``init="gaussian"``, no biases), ``n_samples`` points
    iid uniform on ``S^{d-1}``, labels iid uniform ``+-1`` independent of the
    data (``montecarlo``'s ``"random_sign"``), square loss and a bounded output
    ``g = gamma s(z)`` with ``|g| < 1`` (tanh or sigmoid output activation with
    ``gamma <= 1``, or any output with ``|g| < 1``).

    At infinite width the tangent kernel is deterministic and
    ``cos_ij -> sign(a_i a_j) f(<x_i, x_j>)`` with
    ``f(t) = Theta_hat(t) / Theta_hat(1)`` (unit inputs; module docstring).  The
    square loss gives ``a_i = gamma (g_i - y_i) s'(z_i)`` with ``s' > 0``, and
    ``|g_i| < 1 = |y_i|`` makes ``sign(a_i) = -y_i``: ``sign(a_i a_j) = y_i y_j``,
    a fair sign independent of the data.  So for one pair, with
    ``u = <x_1, x_2> = 2B - 1``, ``B ~ Beta((d-1)/2, (d-1)/2)``,

        p(tau) = Pr[y_1 y_2 f(u) < -tau] = (Pr[f(u) > tau] + Pr[f(u) < -tau]) / 2,

    a one-dimensional integral of the Beta density over ``{|f(u)| > tau}``,
    computed exactly (the sign changes of ``f -/+ tau`` on a Chebyshev grid of
    the kernel recursion, located on its spline and polished by a Newton step
    on the recursion itself, and the regularised incomplete Beta function on
    each interval).  For
    ``linear`` activation ``f(u) = u`` and ``p(tau) = Pr[u > tau]``, the Beta tail.

    For ``N > 2`` points the ``M = N(N-1)/2`` pair events are *pairwise
    independent* (two pairs sharing a point ``i``: given ``x_i``, the inner
    products ``<x_i, x_j>``, ``<x_i, x_k>`` are iid with the law above, and
    ``y_i y_j``, ``y_i y_k`` are independent fair signs), though not jointly.
    Hence the union bound and the Bonferroni / de Caen lower bounds bracket the
    probability exactly:

        max(M p - M(M-1)/2 p^2, M p / (1 + (M-1) p)) <= Pr[min cos < -tau] <= M p.

    If this floor is positive at fixed ``d`` and ``tau``, no bound of the form
    ``N^2 exp(-c l^2 ...)`` on a normalised (scale-free) confusion can hold at
    all widths: the probability tends to the floor, not to 0.

    Parameters
    ----------
    tau : float in [0, 1], or a 1-d array of them (the fields of the result are then arrays)
    depth : int >= 1
    activation : str
        "relu", "tanh", "sigmoid", "linear", or a name added with ``register_activation``.
    d : int >= 2
    kappa : float > 0
    n_samples : int >= 2

    Returns
    -------
    CosineFloor
    """
    _check_sphere_law(depth, activation, kappa, d)
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"argument 'n_samples' must be an integer >= 2, got {n_samples!r}")
    taus = np.atleast_1d(np.asarray(tau, dtype=float))
    if taus.ndim != 1 or not np.all((taus >= 0.0) & (taus <= 1.0)):
        raise ValueError(f"argument 'tau' must be in [0, 1], got {tau!r}")
    d, n_samples = int(d), int(n_samples)
    if activation == "linear":
        pair = sphere_inner_product_measure(taus, 1.0, d)
    else:
        grid, values, _ = _unit_sphere_cosine_table(int(depth), activation, float(kappa), d)
        exact = lambda t: _unit_sphere_cosine(int(depth), activation, float(kappa), d, t)  # noqa: E731
        above, below = _beta_measure_above(grid, values, taus, exact, d)
        pair = 0.5 * (above + below)
    M = n_samples * (n_samples - 1) // 2
    upper = np.minimum(1.0, M * pair)
    lower = np.maximum(M * pair - M * (M - 1) / 2 * pair**2, M * pair / (1 + (M - 1) * pair)) if M > 1 else pair
    lower = np.minimum(lower, upper)
    config = dict(depth=depth, activation=activation, kappa=kappa, d=d, labels="random_sign", loss="square")
    scalar = np.ndim(tau) == 0
    pick = (lambda x: float(x[0])) if scalar else (lambda x: np.asarray(x, dtype=float))  # noqa: E731
    return CosineFloor(pick(taus), n_samples, pick(pair), pick(lower), pick(upper), config)
