r"""The fluctuation constants of the tangent-kernel cosine: ``s^2(t) = lim l Var k_l(t)``, ``mu(t) = lim l (E k_l(t) - f(t))``.

``k_l(t)`` is the cosine of the gradients of the output pre-activation (the empirical tangent kernel,
normalised) of a width-``l`` network at two unit inputs with inner product ``t``; ``f(t)`` its infinite-width
limit (``theory``'s kernel recursion).  These are the inputs of the finite-width law of the confusion tail
(``theory.finite_width_excess``: ``log(Pr_l / floor) = C(tau) / l``).

Estimator.  For each width, ``networks`` independent networks at one fixed set of inputs (``x_1`` and points
``x_2(t_j) = t_j x_1 + sqrt(1 - t_j^2) x_perp``: the law of ``k_l(t)`` depends on the inputs only through ``t``,
by the rotation invariance of Strategy 4.1) through ``sample_grams`` with the loss ``"output"`` and no output
activation, so the Gram is ``gamma^2`` times the tangent kernel and its cosines are ``k_l`` exactly (lazy
sampling, exact in law).  Per width and ``t``: ``l Var k`` and ``l (mean k - f)``.  Their limits are the
intercepts of least squares in ``1/l`` (the ``o(1/l)`` corrections of the expansion): ``l Var k`` with equal
weights and a ``C/l^2`` term from four widths on; ``l (mean k - f)``, whose variance grows like ``l``, with weights
``1/l`` and a line.  At least three widths.  ``s^2``, ``(s^2)'`` and ``mu`` at any ``t`` come from quadratic fits
in ``t`` of those intercepts on each side (``t > 0``, ``t < 0``) separately.  Intervals: a bootstrap over the
networks of every width (resampled independently; the ``t`` values of one network stay together, since they
share it), repeating every step above, including the prediction of ``C(tau)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .. import validation
from ..draw.elementwise import activation_record
from ..draw.network import MLP
from ..draw.random_source import check_seed
from .sampling import sample_grams

#: Bootstrap resamples behind every interval of this module.
BOOTSTRAP = 200


def _inputs(d: int, t: np.ndarray) -> np.ndarray:
    """``x_1 = e_1`` and ``x_2(t_j) = t_j e_1 + sqrt(1 - t_j^2) e_2``: unit rows, ``<x_1, x_2(t_j)> = t_j``."""
    X = np.zeros((t.size + 1, d))
    X[0, 0] = 1.0
    X[1:, 0] = t
    X[1:, 1] = np.sqrt(1.0 - t * t)
    return X


def _extrapolate(widths: np.ndarray, values: np.ndarray, powers: int, weights=None) -> np.ndarray:
    """Intercepts ``A`` of ``values[w, j] = A_j + B_j / width_w (+ C_j / width_w^2 when powers = 3)``.

    Least squares over widths with ``weights`` (inverse variances up to a constant; equal by default).
    """
    design = np.vstack([widths ** -float(k) for k in range(powers)]).T
    w = np.ones_like(widths) if weights is None else np.asarray(weights, dtype=float)
    coef, *_ = np.linalg.lstsq(design * np.sqrt(w)[:, None], values * np.sqrt(w)[:, None], rcond=None)
    return coef[0]


def _side_fit(t: np.ndarray, values: np.ndarray, degree: int):
    """Per side (sign of ``t``), polynomial coefficients of ``values`` against ``t`` (``{+1: coef, -1: coef}``)."""
    out = {}
    for side in (+1, -1):
        mask = np.sign(t) == side
        if mask.sum() >= 2:
            out[side] = np.polyfit(t[mask], values[mask], min(degree, int(mask.sum()) - 1))
    return out


@dataclass(frozen=True)
class CosineFluctuations:
    """Samples of ``k_l(t)`` at several widths and the fluctuation constants extrapolated from them.

    Attributes
    ----------
    t : (m,) array
        The inner products.
    widths : (W,) array
    samples : list of W arrays (networks, m)
        ``k_l(t_j)`` of every network.
    limit : (m,) array
        ``f(t)`` (``theory``'s infinite-width cosine).
    table : pandas.DataFrame
        Per width and ``t``: ``mean``, ``var``, ``s2 = width var`` and ``mu = width (mean - f)`` with standard
        errors, and the extrapolated ``s2_limit``, ``mu_limit`` with bootstrap standard errors.
    config : dict
    """

    t: np.ndarray
    widths: np.ndarray
    samples: list
    limit: np.ndarray
    table: pd.DataFrame
    config: dict = field(default_factory=dict)

    def constants(self, samples=None) -> tuple[np.ndarray, np.ndarray]:
        """``(s2, mu)`` extrapolated to infinite width at each ``t`` (from ``samples``, default the data)."""
        samples = self.samples if samples is None else samples
        s2 = np.array([w * k.var(axis=0, ddof=1) for w, k in zip(self.widths, samples)])
        mu = np.array([w * (k.mean(axis=0) - self.limit) for w, k in zip(self.widths, samples)])
        # l Var k has about the same relative error at every width (sqrt(2 / networks)), so equal weights, and a
        # curvature term from four widths on: the first layer's fixed part of the kernel gives the variance a
        # factor (1 + d/l)^-2 for a linear network (0.64 at l = 64, d = 16), which a line in 1/l through widths
        # 64-256 extrapolates 3% low.  l (mean k - f) has variance l s^2 / networks, growing with the width: weights
        # 1/l, and a line (the mean's shift is noisy: an equally weighted fit let the widest width, the noisiest,
        # set mu, and moved C by 30% at depth 1)
        s2_limit = _extrapolate(self.widths, s2, 3 if self.widths.size >= 4 else 2)
        mu_limit = _extrapolate(self.widths, mu, 2, weights=1.0 / self.widths)
        return s2_limit, mu_limit

    def fluctuation(self, samples=None, degree: int = 2):
        """A callable ``t -> (s2, ds2, mu)`` for ``theory.finite_width_excess``: quadratic fits in ``t`` per side."""
        s2, mu = self.constants(samples)
        fit_s2, fit_mu = _side_fit(self.t, s2, degree), _side_fit(self.t, mu, degree)

        def model(t):
            t = np.asarray(t, dtype=float)
            out = [np.full(t.shape, np.nan) for _ in range(3)]
            for side in (+1, -1):
                mask = np.sign(t) == side
                if side not in fit_s2 or not mask.any():
                    continue
                out[0][mask] = np.polyval(fit_s2[side], t[mask])
                out[1][mask] = np.polyval(np.polyder(fit_s2[side]), t[mask])
                out[2][mask] = np.polyval(fit_mu[side], t[mask])
            return tuple(out)

        return model

    def bootstrap(self, statistic, resamples: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
        """``statistic(samples)`` on ``resamples`` bootstrap resamples of the networks of every width (rows)."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(resamples):
            resampled = [k[rng.integers(0, k.shape[0], k.shape[0])] for k in self.samples]
            out.append(np.asarray(statistic(resampled), dtype=float))
        return np.array(out)

    def predict_excess(self, tau, resamples: int = BOOTSTRAP, seed: int = 0) -> dict:
        """``C(tau)`` of the finite-width law from these constants, with a bootstrap standard error and 95% interval.

        Returns ``{"tau", "C", "se", "lower", "upper", "floor", "law"}`` (``law``: the ``theory.ExcessConstant``).
        """
        import theory

        c = self.config
        law = theory.finite_width_excess(tau, c["depth"], c["activation"], c["d"], c["kappa"],
                                         fluctuation=self.fluctuation())
        boot = self.bootstrap(lambda samples: law.constant(self.fluctuation(samples)), resamples, seed)
        lower, upper = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        return dict(tau=law.tau, C=law.C, se=np.nanstd(boot, axis=0, ddof=1), lower=lower, upper=upper,
                    floor=law.floor, law=law)


def _stored_samples(store, key: str, shape: tuple, where: str):
    """A width's samples read back from the store, or ``None``; a table of another shape is refused."""
    from .store import StoreCorrupt

    if not store.is_done(key):
        return None
    frame, _ = store.read_point(key)
    try:
        values = frame["k"].to_numpy(dtype=np.float64)
    except (KeyError, ValueError, TypeError) as error:
        raise StoreCorrupt(f"{where}: not a table of cosine samples ({error})") from None
    if values.size != shape[0] * shape[1] or not np.all(np.abs(values) <= 1 + 1e-12):
        raise StoreCorrupt(f"{where}: must hold {shape[0]} x {shape[1]} cosines in [-1, 1]")
    return values.reshape(shape)


def cosine_fluctuations(d: int, depth: int, activation: str, *, t, widths, networks: int, seed, kappa: float = 1.0,
                        out=None, progress: bool = False) -> CosineFluctuations:
    r"""Estimate ``s^2(t)`` and ``mu(t)`` of the tangent-kernel cosine by Monte Carlo at several widths (module docstring).

    Parameters
    ----------
    d : int >= 3
        Input dimension.
    depth : int >= 1
    activation : str
        One of ``montecarlo.ACTIVATIONS``, or a name added with ``montecarlo.register_activation`` (its
        functions' digest is then part of the store's configuration).
    t : sequence of floats in (-1, 1)
        Inner products (at most ``min(widths) - 2`` of them, for lazy sampling; typically around the crossings
        ``f(t) = +-tau``).
    widths : sequence of at least 3 distinct ints
    networks : int >= 20
        Networks per width.
    seed : int >= 0 or a sequence of them
        Width ``l`` draws with ``sample_grams(..., seed=(*seed, l))``.
    kappa : float > 0
    out : path-like, optional
        A results store folder: each width's samples are saved when drawn (atomic, checksummed, with the code's
        fingerprint) and read back by a rerun instead of drawn again.
    progress : bool

    Returns
    -------
    CosineFluctuations
    """
    from theory._src.infinite_width import _unit_sphere_cosine

    d = validation.integer("d", d, minimum=3)
    depth = validation.integer("depth", depth, minimum=1)
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if t.ndim != 1 or t.size == 0 or not np.all(np.abs(t) < 1):
        raise ValueError(f"argument 't' must be a non-empty sequence of inner products in (-1, 1), got {t!r}")
    widths = np.asarray(sorted({validation.integer("widths", w, minimum=1) for w in np.atleast_1d(widths)}),
                        dtype=float)
    if widths.size < 3:
        raise ValueError(f"argument 'widths' must hold at least 3 distinct widths (the 1/width extrapolation), got "
                         f"{widths.tolist()}")
    networks = validation.integer("networks", networks, minimum=20)
    seed = check_seed(seed)
    base = seed if isinstance(seed, tuple) else (seed,)  # width l draws from (*seed, l)
    X = _inputs(d, t)
    y = np.ones(t.size + 1)
    limit = np.asarray(_unit_sphere_cosine(depth, activation, float(kappa), d, t), dtype=float)
    store = None
    if out is not None:
        from .sampling import versions
        from .store import ResultsStore

        out = validation.output_folder("out", out)
        store = ResultsStore(out, {"kind": "cosine_fluctuations", "d": d, "depth": depth, "activation": activation,
                                   **activation_record(activation), "kappa": float(kappa), "t": t.tolist(), "networks": networks, "seed": seed},
                             versions=versions())
    samples, rows = [], []
    for width in widths.astype(int):
        key = f"width-{int(width)}"
        k = None if store is None else _stored_samples(store, key, (networks, t.size),
                                                        str(store.points_dir / f"{key}.parquet"))
        if k is None:
            net = MLP(d, int(width), depth, activation, output_activation=False, kappa=kappa)
            G = sample_grams(net, t.size + 1, networks, labels="random_sign", loss="output", seed=(*base, int(width)),
                             data=(X, y), progress=progress).G
            k = G[:, 0, 1:] / np.sqrt(G[:, 0, 0][:, None] * np.diagonal(G, axis1=1, axis2=2)[:, 1:])
            if store is not None:
                store.write_point(key, pd.DataFrame({"k": k.reshape(-1)}), {"config": store.configuration,
                                                                            "width": int(width)})
        samples.append(k)
        centred = k - k.mean(axis=0)
        var = k.var(axis=0, ddof=1)
        var_se = np.sqrt(np.maximum((centred**4).mean(axis=0) - var**2, 0.0) / networks)
        for j in range(t.size):
            rows.append(dict(width=int(width), t=t[j], mean=k[:, j].mean(), var=var[j],
                             s2=width * var[j], s2_se=width * var_se[j],
                             mu=width * (k[:, j].mean() - limit[j]), mu_se=width * np.sqrt(var[j] / networks),
                             networks=networks))
    result = CosineFluctuations(t=t, widths=widths, samples=samples, limit=limit, table=pd.DataFrame(rows),
                                config=dict(d=d, depth=depth, activation=activation, kappa=float(kappa),
                                            networks=networks, seed=seed))
    s2, mu = result.constants()
    boot = result.bootstrap(lambda s: np.concatenate(result.constants(s)))
    se = boot.std(axis=0, ddof=1)
    limits = pd.DataFrame({"t": t, "s2_limit": s2, "s2_limit_se": se[:t.size], "mu_limit": mu,
                           "mu_limit_se": se[t.size:]})
    return replace(result, table=result.table.merge(limits, on="t"))
