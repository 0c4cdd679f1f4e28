r"""The conditional estimator's integral along a great circle: ``p(W, x_1, v)`` for blocks of networks.

For a network ``W``, a point ``x_1`` and a unit direction ``v`` orthogonal to
it, ``x_2(t) = t x_1 + sqrt(1 - t^2) v`` with ``t = cos theta`` runs over the
great circle through ``x_1`` and ``v``, and the pair probability given
``(W, x_1, v)`` is the one-dimensional integral (``engines.conditional``, its
module docstring)

    p(W, x_1, v) = 1/2 Pr_t[k(t) > tau] + 1/2 Pr_t[k(t) < -tau],   k(t) = k_W(x_1, x_2(t)),

with ``(1 + t)/2 ~ Beta((d-1)/2, (d-1)/2)``, the exact law of ``<x_1, x_2>``.
It is computed here: ``k`` on a grid of ``grid`` angles ``theta`` in
``[0, pi]`` (uniform in ``theta``), every sign change of ``+-k - tau`` between
grid angles polished to ``THETA_TOLERANCE`` in ``theta`` by the Illinois
(modified regula falsi) method on the network itself, started from an inverse
cubic interpolation, and the Beta law of each piece
(``theory.sphere_inner_product_measure``, from the tail on its side).  Cells
with no crossing count whole or not at all.

Network ``i`` of a block draws its weights, points and directions from
``SeedSequence(seed, spawn_key=(i,))`` only (:func:`pair_probabilities`).
"""

from __future__ import annotations

import numpy as np

from ..draw.network import MLP
from ..draw.random_source import NormalSource, unit_rows
from ..gram.factorised import layer_signals
from ..gram.lazy import DENSE, LayerDraw

#: Convergence of the crossings: Illinois iterations stop when the bracket in theta is this narrow.
THETA_TOLERANCE = 1e-11
MAX_ITERATIONS = 100


def _draw(net: MLP, seed, index: int, couples: int):
    """Network ``index``'s weights (and biases), its ``couples`` points and ``2 couples`` directions, from its stream."""
    source = NormalSource.numpy(np.random.SeedSequence(seed, spawn_key=(index,)))
    params = net.init(source)
    d = net.input_dim
    x, v = np.empty((2 * couples, d)), np.empty((2 * couples, d))
    for c in range(couples):
        point = unit_rows(source.normal((d,)), np)
        for j in (2 * c, 2 * c + 1):
            g = source.normal((d,))
            g = g - (g @ point) * point
            x[j], v[j] = point, unit_rows(g, np)
    return params, x, v


class _Batch:
    """Networks ``first .. first + B - 1`` with their planes: evaluates ``k(theta)`` at any angles, plane by plane."""

    def __init__(self, net: MLP, loss: str, seed, first: int, count: int, couples: int):
        self.net, self.loss = net, loss
        drawn = [_draw(net, seed, first + b, couples) for b in range(count)]
        self.layers = [LayerDraw(DENSE, np.stack([params.weights[p] for params, _, _ in drawn]))
                       for p in range(net.n_layers)]
        self.biases = None if not net.bias else [np.stack([params.biases[p] for params, _, _ in drawn])
                                                 for p in range(net.n_layers)]
        self.x = np.stack([x for _, x, _ in drawn])  # (B, P, d)
        self.v = np.stack([v for _, _, v in drawn])
        self.evaluations = 0
        # the reference point of each plane (theta = 0): its signals, and its kernel K(x_1, x_1), kept for every
        # later evaluation
        self.reference = self._signals(self.x)
        self.reference_kernel = self._kernel(self.reference, self.reference)

    def _kernel(self, signals, others):
        """``K = sum_p <delta_p, delta_p'> (<h_p, h_p'> + [1 with biases])`` row by row (``B x Q``)."""
        bias = self.biases is not None
        total = 0.0
        for (h, delta), (h1, delta1) in zip(signals, others):
            hh = np.sum(h * h1, -1)
            total = total + np.sum(delta * delta1, -1) * (hh + 1.0 if bias else hh)
        return total

    def _signals(self, X):
        """Per layer ``(h_p, delta_p)`` of the points ``X`` (``B x Q x d``), labels +1 (then every a_i < 0)."""
        y = np.ones(X.shape[:-1])
        signals = layer_signals(np, self.net, self.layers, self.biases, X, y, self.loss)
        a = signals[-1][1][..., 0]
        if not np.all(a < 0):
            raise RuntimeError("the output factor a_i = gamma l'(g_i, +1) s'(z_i) is not negative at every point: the "
                               "estimator's hypotheses (exactness_hypotheses) do not hold for this network")
        self.evaluations += int(np.prod(X.shape[:-1]))
        return signals

    def cosines(self, plane: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``k(theta)`` for points given as ``plane`` (``B x Q``, indices into each network's planes) and angles."""
        take = lambda a: np.take_along_axis(a, plane[..., None], axis=1)  # noqa: E731  (B, Q, .)
        X = np.cos(theta)[..., None] * take(self.x) + np.sin(theta)[..., None] * take(self.v)
        signals = self._signals(X)
        reference = [(take(h1), take(delta1)) for h1, delta1 in self.reference]
        cross = self._kernel(signals, reference)
        own = self._kernel(signals, signals)
        with np.errstate(invalid="ignore", divide="ignore"):  # a vanishing gradient (relu): NaN, never inside
            return cross / np.sqrt(np.take_along_axis(self.reference_kernel, plane, axis=1) * own)

    def cosines_on_grid(self, theta: np.ndarray) -> np.ndarray:
        """``k`` at the angles ``theta`` (``G``) on every plane of every network: ``B x P x G``."""
        B, P, d = self.x.shape
        X = np.cos(theta)[:, None] * self.x[:, :, None, :] + np.sin(theta)[:, None] * self.v[:, :, None, :]
        signals = [(h.reshape(B, P, theta.size, -1), delta.reshape(B, P, theta.size, -1))
                   for h, delta in self._signals(X.reshape(B, P * theta.size, d))]
        reference = [(h1[:, :, None, :], delta1[:, :, None, :]) for h1, delta1 in self.reference]
        cross = self._kernel(signals, reference)
        own = self._kernel(signals, signals)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cross / np.sqrt(self.reference_kernel[:, :, None] * own)


def _crossings(batch: _Batch, values, grid_theta, taus) -> np.ndarray:
    """Polished angles of every sign change of ``side * k - tau`` between grid angles (Illinois method).

    ``values`` is ``k`` on the grid (``B x P x G``).  Returns the arrays of the
    brackets (network, plane, tau index, side index, cell) and their roots.
    """
    B, P, G = values.shape
    sides = np.array([1.0, -1.0])
    g = sides[:, None, None, None, None] * values[None, None] - taus[None, :, None, None, None]  # (2, T, B, P, G)
    inside = g > 0
    s, t, b, p, k = np.nonzero(inside[..., 1:] != inside[..., :-1])
    lo, hi = grid_theta[k].copy(), grid_theta[k + 1].copy()
    g_lo, g_hi = g[s, t, b, p, k].copy(), g[s, t, b, p, k + 1].copy()
    root = 0.5 * (lo + hi)
    active = np.ones(lo.shape, dtype=bool)
    side_lo = np.zeros(lo.shape, dtype=np.int8)  # which end was kept last (Illinois halves its value)
    # first guess: inverse cubic interpolation through the four grid angles around the cell (theta as a function
    # of g, Lagrange form), which is close to the root when g is smooth; Illinois steps from there
    window = np.clip(k[:, None] + np.arange(-1, 3)[None, :], 0, G - 1)
    window = np.where(k[:, None] == 0, np.arange(4)[None, :], window)
    window = np.where(k[:, None] >= G - 2, G - 4 + np.arange(4)[None, :], window)
    gw, tw = g[s[:, None], t[:, None], b[:, None], p[:, None], window], grid_theta[window]
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.zeros(lo.shape)
        for m in range(4):
            others = [n for n in range(4) if n != m]
            weight = np.prod([(0.0 - gw[:, n]) / (gw[:, m] - gw[:, n]) for n in others], axis=0)
            first = first + weight * tw[:, m]
    use_first = np.isfinite(first) & (first > lo) & (first < hi)
    for iteration in range(MAX_ITERATIONS):
        if not active.any():
            break
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN ends (undefined cosines) bisect instead
            active, lo, hi, g_lo, g_hi, root, side_lo = _illinois_step(
                batch, iteration, active, lo, hi, g_lo, g_hi, root, side_lo, first, use_first, sides, taus,
                s, t, b, p, B)
    else:
        raise RuntimeError(f"{int(active.sum())} crossings did not converge in {MAX_ITERATIONS} Illinois iterations")
    return s, t, b, p, k, root


def _illinois_step(batch, iteration, active, lo, hi, g_lo, g_hi, root, side_lo, first, use_first, sides, taus,
                   s, t, b, p, B):
    """One Illinois step for every active bracket (all networks' guesses evaluated in one batched call)."""
    i = np.flatnonzero(active)
    guess = (lo[i] * g_hi[i] - hi[i] * g_lo[i]) / (g_hi[i] - g_lo[i])
    if iteration == 0:
        guess = np.where(use_first[i], first[i], guess)
    guess = np.where(np.isfinite(guess) & (guess > lo[i]) & (guess < hi[i]), guess, 0.5 * (lo[i] + hi[i]))
    # evaluate the guesses network by network (padded to the largest count of one network)
    counts = np.bincount(b[i], minlength=B)
    Q = int(counts.max())
    order = np.argsort(b[i], kind="stable")
    slot = np.empty(i.size, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(i.size) - np.repeat(starts, counts)
    plane = np.zeros((B, Q), dtype=np.int64)
    theta = np.zeros((B, Q))
    plane[b[i], slot] = p[i]
    theta[b[i], slot] = guess
    k_new = batch.cosines(plane, theta)[b[i], slot]
    g_new = sides[s[i]] * k_new - taus[t[i]]
    root[i] = guess
    # the ends are told apart by "inside" (g > 0), as the cells were: an undefined cosine (NaN) is outside
    same_as_lo = (g_new > 0) == (g_lo[i] > 0)
    # Illinois: replace the end whose sign the new point shares; if the same end is replaced twice running,
    # halve the other end's value (keeps the convergence superlinear where regula falsi would stall)
    keep_hi = same_as_lo
    lo_i, hi_i, glo_i, ghi_i = lo[i], hi[i], g_lo[i], g_hi[i]
    repeated = side_lo[i] == np.where(keep_hi, 1, -1)
    lo_i = np.where(keep_hi, guess, lo_i)
    glo_i = np.where(keep_hi, g_new, glo_i)
    hi_i = np.where(keep_hi, hi_i, guess)
    ghi_i = np.where(keep_hi, ghi_i, g_new)
    ghi_i = np.where(keep_hi & repeated, 0.5 * ghi_i, ghi_i)
    glo_i = np.where(~keep_hi & repeated, 0.5 * glo_i, glo_i)
    side_lo[i] = np.where(keep_hi, 1, -1)
    lo[i], hi[i], g_lo[i], g_hi[i] = lo_i, hi_i, glo_i, ghi_i
    # converged when the bracket is narrow, or when the secant step from the new point (its distance to the
    # root to first order, |g| / slope) is below the tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.abs(g_new) * (hi_i - lo_i) / np.abs(ghi_i - glo_i)
    done = (hi_i - lo_i <= THETA_TOLERANCE) | (g_new == 0) | (step <= THETA_TOLERANCE)
    active[i[done]] = False
    return active, lo, hi, g_lo, g_hi, root, side_lo


def pair_probabilities(net: MLP, taus, *, loss: str, seed, first: int, count: int, planes: int, grid: int):
    """``p(W, x_1, v)`` of networks ``first .. first + count - 1``, per plane, tau and label branch.

    The integral of the module docstring, ``p = 1/2 Pr_t[k(t) > tau] + 1/2 Pr_t[k(t) < -tau]``,
    each term as the Beta measure of the angles where it holds.  Returns ``(values, evaluations)``: ``values`` has shape ``(count, planes,
    len(taus), 2)``, the Beta measure of ``{k > tau}`` (branch ``y_1 y_2 = -1``)
    and of ``{k < -tau}`` (branch ``+1``); the pair probability is their mean.
    ``evaluations`` counts the points at which the network was evaluated.
    """
    from theory import sphere_inner_product_measure

    taus = np.asarray(taus, dtype=float)
    batch = _Batch(net, loss, seed, first, count, planes // 2)
    theta = np.linspace(0.0, np.pi, grid)
    values = batch.cosines_on_grid(theta)
    # the measure of each whole cell of the grid: the same for every plane (exact, from its tail side)
    cells = sphere_inner_product_measure(np.cos(theta[1:]), np.cos(theta[:-1]), net.input_dim)
    sides = np.array([1.0, -1.0])
    inside = sides[:, None, None, None, None] * values[None, None] > taus[None, :, None, None, None]
    out = np.einsum("stbpk,k->bpts", (inside[..., 1:] & inside[..., :-1]).astype(float), cells)
    s, t, b, p, k, root = _crossings(batch, values, theta, taus)
    # a cell with one crossing: the part on the inside end of the cell
    starts_inside = inside[s, t, b, p, k]
    low = np.where(starts_inside, theta[k], root)
    high = np.where(starts_inside, root, theta[k + 1])
    part = sphere_inner_product_measure(np.cos(high), np.cos(low), net.input_dim)
    np.add.at(out, (b, p, t, s), part)
    return out, batch.evaluations
