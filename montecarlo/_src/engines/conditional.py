r"""The conditional (exact-data) estimator of pair-cosine tails: the pair's inner product integrated exactly.

Quantity.  For the paper's network (eq. 4) at initialisation, ``N`` points
iid uniform on ``S^{d-1}`` and labels ``y_i = +-1`` independent of the data,
the tail of the normalised confusion ``Pr[min_{i != j} cos(grad f_i, grad f_j) < -tau]``
and, for one pair, ``p = Pr[cos(grad f_1, grad f_2) < -tau]``.

Why the label sign factors out.  ``grad f_i = a_i grad z_beta(x_i)`` with
``a_i = gamma l'(g_i, y_i) s'(z_beta(x_i))`` (``output_delta``), so
``cos(grad f_i, grad f_j) = sign(a_i a_j) k_W(x_i, x_j)`` with ``k_W`` the
cosine of the gradients of the output pre-activation (the empirical tangent
kernel, normalised).  Under the hypotheses below ``sign(a_i) = -y_i`` for
every input (square loss with ``|g| < 1``: ``g - y`` has the sign of ``-y``;
logistic loss: ``l' = -y sigma(-y g)``; and ``s' > 0`` at the output), so
``cos = y_i y_j k_W(x_i, x_j)`` with ``y_i y_j`` a fair sign independent of
everything else.

Rao-Blackwellisation (the conditional estimator).  Draw the network ``W``, a
point ``x_1`` uniform on the sphere and a direction ``v`` uniform on the unit
sphere orthogonal to ``x_1``; then ``x_2(t) = t x_1 + sqrt(1 - t^2) v`` with
``t`` from the exact law of ``<x_1, x_2>`` -- ``(1 + t)/2 ~ Beta((d-1)/2,
(d-1)/2)`` -- is uniform on the sphere (rotation invariance about ``x_1``).
Given ``(W, x_1, v)`` the pair probability is a one-dimensional integral,

    p(W, x_1, v) = 1/2 Pr_t[k(t) > tau] + 1/2 Pr_t[k(t) < -tau],   k(t) = k_W(x_1, x_2(t)),

(the two label branches ``y_1 y_2 = -1`` and ``+1``), computed exactly (``great_circle``): ``k``
on a grid of ``grid`` angles ``theta`` (``t = cos theta``, uniform in
``theta in [0, pi]``: the great circle through ``x_1`` and ``v``), every
sign change of ``+-k - tau`` between grid angles polished to ``1e-11`` in
``theta`` by the Illinois (modified regula falsi) method on the network
itself, and the Beta law of each piece (``theory.sphere_inner_product_measure``,
from the tail on its side).  Only ``(W, x_1, v)`` are sampled:
``p = E[p(W, x_1, v)]`` by plain Monte Carlo over networks, with the
standard error across networks (the independent unit: ``planes`` planes share
one network).  No activation parity is assumed: both tails are integrated.

What is exact, what is estimated.  Given ``(W, x_1, v)`` the integral is
exact up to rounding and one limitation of any grid: two crossings of
``+-k = tau`` closer together than the grid spacing ``pi / (grid - 1)`` are
not seen (a cell whose ends are both inside counts whole, both outside not at
all).  ``k`` is smooth in ``theta`` (unit speed on the circle), so this
needs a wiggle of ``k`` across ``tau`` within one cell; the tests show that
doubling the grid changes nothing at the estimator's precision.  The mean
over networks is a Monte Carlo estimate with a standard error.

``N > 2`` points.  With ``M = N(N - 1)/2`` pair events ``E_ij`` of equal
probability ``p``, the Bonferroni inequalities bracket the union exactly:

    M p - S_2 <= Pr[min cos < -tau] <= M p,   S_2 = sum over pairs of pairs Pr[E_a and E_b].

At finite width the pair events share the network and are not independent.
Pairs sharing a point ``i`` are independent given ``(W, x_i)``:
``Pr[E_ij and E_ik] = E[q(W, x_i)^2]``, ``q = E_v p(W, x_i, v)``, estimated
without bias by ``p(W, x, v) p(W, x, v')`` (two planes through one point);
disjoint pairs are independent given ``W``: ``E[p_W^2]``, estimated by the
product for two planes through independent points.  So ``planes`` (even,
``>= 4``) come in couples through one point ``x``: ``N (N - 1)(N - 2)/2``
sharing pairs of pairs and the rest disjoint.  The result gives the bracket
and an interval that covers both ends.

Randomness.  Network ``i`` (and its planes) draws from
``SeedSequence(seed, spawn_key=(i,))`` only -- the weights as ``MLP.init``
draws them, then per couple a point ``x`` and two directions -- so network
``i``'s numbers never depend on how many networks were asked for, the batch
size or the order (``first`` starts the count elsewhere, for blocks).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import validation
from ..draw.elementwise import activation_record
from ..draw.network import MLP
from ..draw.random_source import check_seed
from ..provenance import versions
from ..statistics.means import mean_interval, mean_se
from .great_circle import pair_probabilities

#: Activations whose derivative is positive everywhere (the output factor a_i never vanishes nor changes sign).
POSITIVE_SLOPE = ("tanh", "sigmoid", "linear")
#: Output activations bounded by 1 in absolute value (square loss: |g| = gamma |s| < 1 when gamma <= 1).
BOUNDED_BY_ONE = ("tanh", "sigmoid")
#: Activations with |s(z)| <= |z| (with orthogonal layers of gain <= 1 the output is bounded by the input's norm).
CONTRACTING = ("tanh", "relu", "linear")
#: The losses whose derivative has the sign of -y (the "output" loss, l = g, has l' = 1 whatever the label).
EXACT_LOSSES = ("square", "logistic")
#: Bytes of network signals per batch of networks (the batch size follows; it changes no number).
MEMORY_PER_BATCH = 256 * 2**20


def exactness_hypotheses(net: MLP, labels, loss: str) -> tuple[str, ...]:
    """The hypotheses under which the estimator is exact for ``net``, or a ``ValueError`` naming what fails.

    The estimator needs ``sign(a_i) = -y_i`` at every input (module docstring):

    * ``labels="random_sign"``: ``y_i = +-1``, fair and independent of the data
      (a teacher's labels depend on ``x_2(t)``, and their sign with them);
    * a positive output slope: an output activation in ``POSITIVE_SLOPE`` (a
      relu output has ``s' = 0`` where ``z < 0``: zero gradients, undefined
      cosines), or none;
    * for the square loss, ``|g| < 1`` at every input: a tanh or sigmoid
      output with ``gamma <= 1``, or Haar-orthogonal layers with
      ``gamma gain^(beta + 1) <= 1``, biases that start at 0 and a contracting
      activation (``|s(z)| <= |z|``), so that ``|g| <= gamma |z_beta| <= gamma gain^(beta+1) |x|``
      (equality, ``g = y``, only on a null set).  The logistic loss needs nothing
      more (``l' = -y sigma(-y g)``); the "output" loss (``l' = 1``) is refused.

    A relu hidden layer can make the gradient of ``z_beta`` vanish (every unit
    of a layer dead): its cosine is then undefined, and such a pair counts as
    not confused (its inner product is 0), the unconditional convention of
    ``montecarlo.cosine_tail``; the hypotheses say so when it can happen.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    if labels != "random_sign":
        raise ValueError(f"argument 'labels' must be 'random_sign' (fair +-1 labels independent of the data) for the "
                         f"conditional estimator, got {labels!r}: with labels that depend on the data the sign of "
                         f"the gradient cosine changes along the circle and the Beta integral is not the answer")
    loss = validation.choice("loss", loss, EXACT_LOSSES)
    if net.depth < 1:
        raise ValueError(f"argument 'net' must have depth >= 1 (at depth 0 the gradient cosine is the inner product "
                         f"itself, whose law is theory.sphere_inner_product_cdf), got depth {net.depth}")
    held = ["labels iid uniform +-1, independent of the data (labels='random_sign')",
            "data iid uniform on the unit sphere S^{d-1}"]
    if net.output_activation and net.activation not in POSITIVE_SLOPE:
        raise ValueError(f"argument 'net': an output activation {net.activation!r} has s' = 0 somewhere, so "
                         f"gradients vanish and cosines are undefined; the estimator needs an output activation in "
                         f"{POSITIVE_SLOPE} or output_activation=False")
    held.append("output slope s'(z_beta) > 0 everywhere" if net.output_activation else "no output activation")
    if loss == "square":
        bounded = net.output_activation and net.activation in BOUNDED_BY_ONE and net.gamma <= 1
        orthogonal = (net.init_scheme == "orthogonal" and net.bias_std == 0 and net.activation in CONTRACTING
                      and net.gamma * net.gain ** (net.depth + 1) <= 1)
        if not (bounded or orthogonal):
            raise ValueError(
                "argument 'loss' = 'square' needs a bounded output |g| < 1 at every input, so that sign(g - y) = "
                "-y: a tanh or sigmoid output activation with gamma <= 1, or init='orthogonal' with biases starting "
                f"at 0, a contracting activation {CONTRACTING} and gamma * gain^(depth + 1) <= 1; got {net!r} "
                "(or use loss='logistic')")
        held.append("square loss with |g| < 1 at every input: " + (
            f"{net.activation} output, gamma = {net.gamma:g} <= 1" if bounded else
            f"orthogonal layers, gamma gain^(beta+1) = {net.gamma * net.gain ** (net.depth + 1):g} <= 1"))
    else:
        held.append("logistic loss: l' = -y sigma(-y g), sign -y at every output")
    held.append("hence cos(grad f_i, grad f_j) = y_i y_j k_W(x_i, x_j) exactly; no activation parity assumed")
    if net.activation == "relu":
        held.append("relu hidden layers: a gradient of z_beta that vanishes (a layer with every unit dead) leaves the "
                    "cosine undefined; such a pair counts as not confused (inner product 0: the unconditional tail)")
    return tuple(held)


# ------------------------------------------------------------------------------------------------------------------
# The estimator
# ------------------------------------------------------------------------------------------------------------------

def _mean_interval(per_network: np.ndarray, confidence: float):
    """Mean over networks (axis 0), its standard error and the Student-t interval (``R - 1`` degrees of freedom)."""
    mean, se, half = mean_interval(per_network, axis=0, confidence=confidence)
    return mean, se, mean - half, mean + half


@dataclass(frozen=True)
class ConditionalTail:
    """Pair-cosine tails from the conditional estimator (:func:`conditional_cosine_tail`), one entry per ``tau``.

    Attributes
    ----------
    taus : (T,) array
    pair, pair_se : (T,) arrays
        ``p = Pr[cos(grad f_1, grad f_2) < -tau]`` (mean over networks of the
        exact conditional probability) and its standard error across networks.
    pair_interval : ((T,), (T,))
        95% Student-t interval of ``p`` (clipped at 0).
    branches : (T, 2) array
        ``1/2 Pr[k > tau]`` (label branch ``y_1 y_2 = -1``) and ``1/2 Pr[k < -tau]``
        (branch ``+1``): where the pair event lives; they add up to ``pair``.
    union, bonferroni : (T,) arrays
        ``min(1, M p)`` and ``max(0, M p - S_2)``: the exact bracket of
        ``Pr[min cos < -tau]`` for ``N`` points (``S_2`` estimated; module docstring).
    interval : ((T,), (T,))
        95% interval covering both ends of the bracket: the lower limit of
        ``M p - S_2`` and the upper limit of ``M p`` (clipped to [0, 1]).
    intersections : dict
        ``"shared"`` and ``"disjoint"``: the estimates of ``Pr[E_ij and E_ik]``
        and ``Pr[E_ij and E_kl]`` (``(T,)`` each), their standard errors across
        networks (``"shared_se"``, ``"disjoint_se"``) and the counts of such pairs of pairs.
    per_network : (R, T) array
        Each network's mean over its planes: the independent values behind the interval.
    per_plane : (R, P, T, 2) array
        Every plane's two branch measures.
    networks, planes, grid, n_samples, evaluations, seconds, seed
    hypotheses : tuple of str
        What the estimate's exactness rests on (:func:`exactness_hypotheses`).
    config, versions : dict
    """

    taus: np.ndarray
    pair: np.ndarray
    pair_se: np.ndarray
    pair_interval: tuple
    branches: np.ndarray
    union: np.ndarray
    bonferroni: np.ndarray
    interval: tuple
    intersections: dict
    per_network: np.ndarray
    per_plane: np.ndarray
    networks: int
    planes: int
    grid: int
    n_samples: int
    evaluations: int
    seconds: float
    seed: object
    hypotheses: tuple
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    @property
    def relative_se(self) -> np.ndarray:
        """``pair_se / pair``: the estimate's coefficient of variation (the same for ``M p``)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.pair_se / self.pair

    def to_frame(self) -> pd.DataFrame:
        """One row per ``tau``: the pair probability, its interval, the bracket for ``N`` points and its interval."""
        return pd.DataFrame({
            "tau": self.taus, "pair": self.pair, "pair_se": self.pair_se, "pair_lower": self.pair_interval[0],
            "pair_upper": self.pair_interval[1], "branch_minus": self.branches[:, 0],
            "branch_plus": self.branches[:, 1], "union": self.union, "bonferroni": self.bonferroni,
            "lower": self.interval[0], "upper": self.interval[1], "relative_se": self.relative_se,
            "networks": self.networks, "n_samples": self.n_samples})

    def __repr__(self) -> str:
        rows = ", ".join(f"tau={t:g}: {p:.4g} (s.e. {100 * r:.2g}%)" for t, p, r in
                         zip(self.taus, self.union, self.relative_se))
        return (f"ConditionalTail(Pr[min cos < -tau], N = {self.n_samples}, {self.networks} networks x "
                f"{self.planes} planes: {rows})")


def summarise(per_plane: np.ndarray, taus, n_samples: int, confidence: float = 0.95):
    """The estimates of :class:`ConditionalTail` from the per-plane branch measures ``(R, P, T, 2)``."""
    R, P = per_plane.shape[:2]
    if R < 2:
        raise ValueError(f"argument 'networks' must be >= 2 (the interval comes from the spread across networks), "
                         f"got {R}")
    pair_plane = per_plane.mean(axis=-1)  # (R, P, T): p(W, x_1, v)
    per_network = pair_plane.mean(axis=1)
    pair, se, lo, hi = _mean_interval(per_network, confidence)
    couples = P // 2
    shared = np.mean([pair_plane[:, 2 * c] * pair_plane[:, 2 * c + 1] for c in range(couples)], axis=0)  # (R, T)
    disjoint = np.mean([pair_plane[:, i] * pair_plane[:, j] for i in range(P) for j in range(P)
                        if i // 2 < j // 2], axis=0)
    M = n_samples * (n_samples - 1) // 2
    n_shared = n_samples * (n_samples - 1) * (n_samples - 2) // 2
    n_disjoint = M * (M - 1) // 2 - n_shared
    lower_per_network = M * per_network - n_shared * shared - n_disjoint * disjoint
    bonferroni, _, b_lo, _ = _mean_interval(lower_per_network, confidence)
    union_lo, union_hi = M * lo, M * hi
    interval = (np.clip(np.minimum(b_lo, union_lo), 0.0, 1.0), np.clip(union_hi, 0.0, 1.0))
    # the bracket of a probability: the union bound is min(1, M p), the Bonferroni bound max(0, M p - S_2)
    return dict(pair=pair, pair_se=se, pair_interval=(np.maximum(lo, 0.0), hi),
                branches=per_plane.mean(axis=(0, 1)) / 2, union=np.minimum(M * pair, 1.0),
                bonferroni=np.clip(bonferroni, 0.0, 1.0), interval=interval,
                intersections={"shared": shared.mean(axis=0), "disjoint": disjoint.mean(axis=0),
                               "shared_se": mean_se(shared, axis=0)[1], "disjoint_se": mean_se(disjoint, axis=0)[1],
                               "n_shared": n_shared, "n_disjoint": n_disjoint},
                per_network=per_network)


def check_taus(taus) -> np.ndarray:
    """``taus`` as a 1-d float array in ``[0, 1)``; ``ValueError`` naming the argument otherwise."""
    try:
        array = np.atleast_1d(np.asarray(taus, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"argument 'taus' must be a number or a sequence of numbers in [0, 1), got {taus!r}") from None
    if array.ndim != 1 or array.size == 0 or not np.all((array >= 0) & (array < 1)):
        raise ValueError(f"argument 'taus' must be a number or a non-empty sequence of numbers in [0, 1), got {taus!r}")
    return array


def check_arguments(net, n_samples, taus, labels, loss, networks, planes, grid, seed):
    """Validate the arguments of :func:`conditional_cosine_tail` (each error names its argument)."""
    hypotheses = exactness_hypotheses(net, labels, loss)
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    taus = check_taus(taus)
    networks = validation.integer("networks", networks, minimum=2)
    planes = validation.integer("planes", planes, minimum=4)
    if planes % 2:
        raise ValueError(f"argument 'planes' must be even (planes come in couples through one point, for the "
                         f"Bonferroni term), got {planes}")
    grid = validation.integer("grid", grid, minimum=9)
    return hypotheses, n_samples, taus, networks, planes, grid, check_seed(seed)


def batch_size(net: MLP, planes: int, grid: int) -> int:
    """Networks per batch: their signals (``2 (beta + 1)`` arrays of ``planes x grid x width``) within ``MEMORY_PER_BATCH``."""
    per_network = 8 * planes * grid * max(net.width, net.input_dim) * 2 * net.n_layers * 2 \
        + 8 * sum(m * n for m, n in net.layer_shapes)
    return max(1, int(MEMORY_PER_BATCH // per_network))


#: Networks per stored block when a run saves to a results store (``out``): blocks are the unit of resumption.
STORE_BLOCK = 256


def _block_frame(values: np.ndarray) -> pd.DataFrame:
    """One block's per-plane values as a long table (network offset, plane, tau index, branch, value)."""
    index = np.indices(values.shape).reshape(4, -1)
    return pd.DataFrame({"network": index[0], "plane": index[1], "tau": index[2], "branch": index[3],
                         "value": values.reshape(-1)})


def _block_values(frame: pd.DataFrame, shape: tuple, where: str) -> np.ndarray:
    """Inverse of :func:`_block_frame`, refusing a table that does not hold exactly ``shape`` finite values in [0, 1]."""
    from .store import StoreCorrupt

    try:
        index = tuple(frame[c].to_numpy(dtype=np.int64) for c in ("network", "plane", "tau", "branch"))
        value = frame["value"].to_numpy(dtype=np.float64)
        out = np.full(shape, np.nan)
        out[index] = value
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise StoreCorrupt(f"{where}: not a block of conditional-estimator values ({error})") from None
    if len(frame) != math.prod(shape) or not np.all(np.isfinite(out)) or np.any((out < 0) | (out > 1)):
        raise StoreCorrupt(f"{where}: a block of conditional-estimator values must hold {math.prod(shape)} "
                           f"probabilities in [0, 1], one per (network, plane, tau, branch)")
    return out


def conditional_cosine_tail(net, n_samples, taus, *, labels="random_sign", loss="square", networks=1000, planes=4,
                            seed, grid=65, first=0, out=None, progress=False) -> ConditionalTail:
    r"""``Pr[min cos(grad f_i, grad f_j) < -tau]`` by the conditional estimator (module docstring).

    The pair's inner product is integrated exactly against its Beta law;
    only the network, one point and a direction per plane are sampled.
    Exact given those (up to the grid's resolution of crossings) and
    unbiased; the interval comes from the spread across networks.

    Parameters
    ----------
    net : MLP
        Must satisfy :func:`exactness_hypotheses` with ``labels`` and ``loss``
        (refused with a ``ValueError`` naming the argument otherwise).
    n_samples : int >= 2
        ``N``: the union over its ``N (N - 1)/2`` pairs is bracketed (Bonferroni).
    taus : float or sequence of floats in [0, 1)
        Thresholds, all from the same draws (common random numbers).
    labels : "random_sign"
    loss : "square" or "logistic"
    networks : int >= 2
        Independent networks (the unit of the standard error).
    planes : even int >= 4
        Planes ``(x_1, v)`` per network, in couples through one point.
    seed : int >= 0 or a sequence of them
        Network ``i`` draws from ``SeedSequence(seed, spawn_key=(first + i,))``.
    grid : int >= 9
        Angles per great circle where ``k`` is evaluated before the crossings are polished.
    first : int >= 0
        Index of the first network (blocks of one long run).
    out : path-like, optional
        A results store folder: blocks of ``STORE_BLOCK`` networks are saved as
        they finish (atomic, checksummed, with the code's fingerprint) and a
        rerun reads back every verified block of this code instead of
        recomputing it, so an interrupted run loses at most one block.
    progress : bool
        A progress bar over batches of networks.

    Returns
    -------
    ConditionalTail
    """
    hypotheses, n_samples, taus, networks, planes, grid, seed = check_arguments(
        net, n_samples, taus, labels, loss, networks, planes, grid, seed)
    first = validation.integer("first", first, minimum=0)
    progress = validation.flag("progress", progress)
    per_plane = np.empty((networks, planes, taus.size, 2))
    size = batch_size(net, planes, grid)
    start, evaluations = time.perf_counter(), 0
    store = None
    if out is not None:
        from .store import ResultsStore

        out = validation.output_folder("out", out)
        # the block's numbers do not depend on N (the bracket is computed afterwards), so N is not in the key
        # a registered activation's digest (activation_record; nothing for a built-in, whose keys stay as they were)
        configuration = {"kind": "conditional_cosine_tail", "net": net.config(), **activation_record(net.activation),
                         "taus": taus.tolist(),
                         "labels": labels, "loss": loss, "planes": planes, "grid": grid, "seed": seed}
        store = ResultsStore(out, configuration, versions=versions())
    blocks = [(lo, min(STORE_BLOCK, networks - lo)) for lo in range(0, networks, STORE_BLOCK)] if store \
        else [(0, networks)]
    bar = tqdm(total=networks, desc="conditional estimator", disable=not progress, leave=False)
    for lo, count in blocks:
        key = f"networks-{first + lo}-{count}"
        if store is not None and store.is_done(key):
            frame, _ = store.read_point(key)
            per_plane[lo:lo + count] = _block_values(frame, (count, planes, taus.size, 2),
                                                     str(store.points_dir / f"{key}.parquet"))
            bar.update(count)
            continue
        for a in range(lo, lo + count, size):
            n = min(size, lo + count - a)
            values, used = pair_probabilities(net, taus, loss=loss, seed=seed, first=first + a, count=n,
                                              planes=planes, grid=grid)
            per_plane[a:a + n] = values
            evaluations += used
            bar.update(n)
        if store is not None:
            store.write_point(key, _block_frame(per_plane[lo:lo + count]),
                              {"config": store.configuration, "first": first + lo, "count": count})
    bar.close()
    return build_result(net, n_samples, taus, per_plane, labels=labels, loss=loss, planes=planes, grid=grid,
                        seed=seed, first=first, evaluations=evaluations, seconds=time.perf_counter() - start,
                        hypotheses=hypotheses)


def build_result(net, n_samples, taus, per_plane, *, labels, loss, planes, grid, seed, first, evaluations, seconds,
                 hypotheses) -> ConditionalTail:
    """The :class:`ConditionalTail` of computed per-plane values (also for values read back from a store)."""
    parts = summarise(per_plane, taus, n_samples)
    config = {"net": net.config(), **activation_record(net.activation), "n_samples": n_samples, "labels": labels,
              "loss": loss, "planes": planes,
              "grid": grid, "first": first, "networks": per_plane.shape[0], "estimator": "conditional (Beta in t)"}
    return ConditionalTail(taus=taus, **parts, per_plane=per_plane, networks=per_plane.shape[0], planes=planes,
                           grid=grid, n_samples=n_samples, evaluations=evaluations, seconds=seconds, seed=seed,
                           hypotheses=hypotheses, config=config, versions=versions())
