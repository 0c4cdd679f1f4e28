r"""Beyond confusion: Jacobian, Fisher and Hessian spectra and forward norms of random networks.

For the network of eq. 4 (:class:`MLP`) at one draw of the weights:

* **Input-output Jacobian** (Sokol & Park 2020; Pennington et al. 2017) of the
  hidden stack, ``J(x) = d h_{beta-1} / d x = D_{beta-1} W_{beta-1} ... D_0 W_0``
  with ``D_p = diag(s'(z_p))`` (``width x d``): the map whose singular values
  dynamical isometry is about (the scalar output row ``W_beta`` is left out).
* **Empirical Fisher by duality.**  With per-example gradients ``g_i`` (rows of
  ``A``, ``N x P``), ``F = A^T A / N`` (``P x P``) and ``G / N = A A^T / N``
  share their non-zero eigenvalues, so the top eigenvalue, the trace and the
  whole non-zero spectrum of ``F`` come exactly from the ``N x N`` Gram
  (``fisher_spectrum``).  With ``loss="output"`` this is the Gauss-Newton
  Fisher of the square loss, ``(1/N) sum_i grad g_i grad g_i^T``.
* **Hessian** of the mean loss ``(1/N) sum_i l(g(x_i), y_i)`` in all the
  weights, through Hessian-vector products (double backward in torch):
  Lanczos with full re-orthogonalisation (Ritz values; their weights give the
  stochastic Lanczos quadrature estimate of the spectral density, exact for
  polynomials of degree ``< 2k``) and Hutchinson's trace estimator with
  Rademacher probes.
* **Forward norms**: ``|z_0|^2`` and ``|z_{beta-1}|^2`` (first and last hidden
  pre-activations); for linear Gaussian networks their ratio is a product of
  independent ``chi^2_n / n`` factors (``theory.chi_square_product``), whose mean
  is 1 but whose median vanishes with depth unless width grows like depth, so
  :func:`summarise` reports medians and quantiles beside means.

:func:`sample_spectra` draws independent (network, data, labels) trials,
each a pure function of ``(configuration, seed, trial index)``, and returns one
row per trial.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import validation
from ..draw.data import make_labels, sample_sphere
from ..draw.elementwise import LOSSES, loss_value
from ..gram import gradient_gram
from ..gram.factorised import forward
from ..gram.lazy import hidden_norms
from ..statistics.gram_statistics import fisher_spectrum
from ..statistics.means import mean_se
from ..draw.network import MLP, Parameters
from ..draw.random_source import check_rng, check_seed
from ..trials.base import Trial
from ..trials.mlp import MLPTrial


def _check_net(net) -> MLP:
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    if net.depth < 1:
        raise ValueError("argument 'net' must have depth >= 1 (a hidden layer); depth 0 has no hidden stack")
    return net


def _unwrap_trial(net, n_samples, trials, labels, loss):
    """``(net, n_samples, trials, labels, loss)``: an ``MLPTrial``'s own, or the arguments as given."""
    if not isinstance(net, Trial):
        return net, n_samples, trials, labels, loss
    if not isinstance(net, MLPTrial):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP or an MLPTrial (the spectra are of the paper's "
                        f"network), got a {type(net).__name__}")
    if trials is None:
        n_samples, trials = None, n_samples
    given = [name for name, value in (("n_samples", n_samples), ("labels", labels), ("loss", loss)) if value is not None]
    if given:
        raise ValueError(f"argument(s) {', '.join(map(repr, given))} belong to the MLPTrial: leave them out here")
    if net.data is not None:
        raise ValueError("argument 'net': an MLPTrial with fixed data; sample_spectra draws fresh sphere data")
    return net.net, net.n_samples, trials, net.labels, net.loss


def _check_params(net: MLP, params) -> Parameters:
    """Require ``params`` to be one draw (no trial axis) of exactly this network's layers.

    ``Parameters`` records no configuration, only arrays, so what can be
    checked is the number of layers, every weight and bias shape against
    ``net.layer_shapes``, whether biases are present, and finiteness.  Two
    networks with the same shapes (for instance differing only in activation
    or ``gamma``) cannot be told apart from their parameters.
    """
    if not isinstance(params, Parameters):
        raise TypeError(f"argument 'params' must be a montecarlo.Parameters (from net.init), got "
                        f"{type(params).__name__}")
    if len(params.weights) != net.n_layers:
        raise ValueError(f"argument 'params' holds {len(params.weights)} weight matrices, but 'net' (depth "
                         f"{net.depth}) has beta + 1 = {net.n_layers}: the parameters belong to another network")
    if net.bias != (params.biases is not None):
        raise ValueError(f"argument 'params' {'has no' if net.bias else 'carries'} biases, but 'net' has "
                         f"bias={net.bias}: the parameters belong to another network")
    for p, shape in enumerate(net.layer_shapes):
        w = validation.finite_array(f"params.weights[{p}]", params.weights[p], ndim=(2, 3))
        if w.shape != shape:
            raise ValueError(f"argument 'params' does not match 'net': weights[{p}] has shape {w.shape}, but W_{p} "
                             f"of this network (input_dim {net.input_dim}, width {net.width}, depth {net.depth}) is "
                             f"{shape} (one draw, no trial axis)")
        if params.biases is not None:
            b = validation.finite_array(f"params.biases[{p}]", params.biases[p], ndim=(1, 2))
            if b.shape != shape[:1]:
                raise ValueError(f"argument 'params' does not match 'net': biases[{p}] has shape {b.shape}, "
                                 f"expected {shape[:1]}")
    return params


def _check_X(net: MLP, X) -> np.ndarray:
    X = validation.finite_array("X", X, ndim=(2,))
    if X.shape[1] != net.input_dim:
        raise ValueError(f"argument 'X' must have input_dim = {net.input_dim} columns, got shape {X.shape}")
    return X


def _torch_parameters(params: Parameters, device="cpu") -> list:
    """Weights then biases of every layer as float64 torch leaves (requires_grad), in layer order."""
    tensors = []
    for p, w in enumerate(params.weights):
        tensors.append(torch.as_tensor(np.asarray(w, dtype=np.float64), device=device).requires_grad_(True))
        if params.biases is not None:
            tensors.append(torch.as_tensor(np.asarray(params.biases[p], dtype=np.float64),
                                           device=device).requires_grad_(True))
    return tensors


def _forward(net, tensors, X):
    """Pre-activations ``z_p`` (``N x n_p``), derivatives ``s'(z_p)`` and the output ``g`` (eq. 4), in torch.

    The forward pass of the Gram (``gram.factorised.forward``), on the tensors of
    :func:`_torch_parameters`; the derivative at an output without activation is None.
    """
    step = 2 if net.bias else 1
    weights = tensors[::step]
    biases = tensors[1::2] if net.bias else None
    passes = list(forward(torch, net, weights, biases, X))
    return [p.z for p in passes], [p.slope for p in passes], net.gamma * passes[-1].out[:, 0]


def input_output_jacobian(net: MLP, params: Parameters, X) -> np.ndarray:
    """``J(x_i) = d h_{beta-1} / d x_i`` for every row of ``X``: ``N x width x d`` (module docstring).

    Parameters
    ----------
    net : MLP
        The network, depth >= 1.
    params : Parameters
        One draw of ``net``'s weights (``net.init(rng)``); parameters of
        another network (other depth, width, input dimension or bias) are
        refused with a ``ValueError`` naming 'params'.
    X : array, ``N x input_dim``
        Finite inputs.

    Returns
    -------
    numpy.ndarray
        ``N x width x input_dim``.
    """
    _check_net(net)
    _check_params(net, params)
    X = _check_X(net, X)
    with torch.no_grad():
        zs, slopes, _ = _forward(net, _torch_parameters(params), torch.as_tensor(X))
        W = [torch.as_tensor(np.asarray(w, dtype=np.float64)) for w in params.weights]
        J = slopes[0][:, :, None] * W[0]
        for p in range(1, net.depth):
            J = slopes[p][:, :, None] * (W[p] @ J)
    return J.numpy()


def forward_norms(net: MLP, params: Parameters, X) -> tuple[np.ndarray, np.ndarray]:
    """``(|z_0|^2, |z_{beta-1}|^2)`` per row of ``X``: the first and last hidden pre-activations.

    ``params`` must be one draw of ``net`` (checked as in :func:`input_output_jacobian`).
    """
    _check_net(net)
    _check_params(net, params)
    X = _check_X(net, X)
    return hidden_norms(net.activation, params.weights, params.biases, X, net.depth, np)


class HessianOperator:
    """Hessian-vector products of the mean loss ``(1/N) sum_i l(g(x_i), y_i)`` in all weights (flattened).

    Parameters are flattened in layer order, weights (row-major) before
    biases.  ``H @ v`` is one double-backward pass.
    """

    def __init__(self, net: MLP, params: Parameters, X, y, loss: str, device="cpu"):
        _check_net(net)
        _check_params(net, params)
        loss = validation.choice("loss", loss, LOSSES)
        X = _check_X(net, X)
        y = validation.finite_array("y", y, ndim=(1,))
        if y.shape != (X.shape[0],):
            raise ValueError(f"argument 'y' must have one label per row of X (N = {X.shape[0]}), got shape {y.shape}")
        self.tensors = _torch_parameters(params, device)
        X = torch.as_tensor(X, device=device)
        y = torch.as_tensor(y, device=device)
        _, _, g = _forward(net, self.tensors, X)
        mean_loss = loss_value(loss, g, y, torch).mean()
        self._grads = torch.autograd.grad(mean_loss, self.tensors, create_graph=True)
        self.size = sum(t.numel() for t in self.tensors)
        self.device = device

    def __matmul__(self, v) -> np.ndarray:
        v = torch.as_tensor(np.asarray(v, dtype=np.float64), device=self.device)
        pieces, start = [], 0
        for t in self.tensors:
            pieces.append(v[start:start + t.numel()].reshape(t.shape))
            start += t.numel()
        dot = sum((g * piece).sum() for g, piece in zip(self._grads, pieces))
        hv = torch.autograd.grad(dot, self.tensors, retain_graph=True, allow_unused=True)
        return torch.cat([(h if h is not None else torch.zeros_like(t)).reshape(-1)
                          for h, t in zip(hv, self.tensors)]).cpu().numpy()


def lanczos(operator, steps: int, start) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos iterations (full re-orthogonalisation) on a symmetric ``operator`` from ``start``.

    Returns the Ritz values ``theta_k`` and weights ``tau_k^2`` (squared first
    components of the Ritz vectors): ``sum_k tau_k^2 f(theta_k)`` is the Gauss
    quadrature of ``u^T f(H) u`` (``u`` the unit start vector), exact for
    polynomials of degree ``< 2 steps``.  Stops early on an invariant subspace.
    """
    steps = validation.integer("steps", steps, minimum=1)
    q = validation.finite_array("start", start, ndim=(1,))
    size = getattr(operator, "size", q.size)
    if q.shape != (size,) or not np.any(q):
        raise ValueError(f"argument 'start' must be a non-zero vector of the operator's size {size}, got shape "
                         f"{q.shape}" + ("" if np.any(q) else " (all zeros)"))
    basis = np.empty((steps, size))  # row k: the k-th Lanczos vector (filled in place, not restacked each step)
    basis[0] = q / np.linalg.norm(q)
    alphas, betas = [], []
    for k in range(steps):
        w = operator @ basis[k]
        alphas.append(float(basis[k] @ w))
        Q = basis[:k + 1]
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)  # twice is enough (Kahan-Parlett)
        beta = float(np.linalg.norm(w))
        if k == steps - 1 or beta <= 1e-12 * max(1.0, abs(alphas[-1])):
            break
        betas.append(beta)
        basis[k + 1] = w / beta
    T = np.diag(alphas) + np.diag(betas[:len(alphas) - 1], 1) + np.diag(betas[:len(alphas) - 1], -1)
    values, vectors = np.linalg.eigh(T)
    return values, vectors[0] ** 2


def hutchinson_trace(operator, probes: int, rng) -> tuple[float, float]:
    """Hutchinson's estimate of ``trace(H)``: the mean of ``v^T H v`` over Rademacher ``v``, with its s.e."""
    probes = validation.integer("probes", probes, minimum=2)
    rng = np.random.default_rng(check_rng(rng))
    values = np.array([v @ (operator @ v) for v in rng.choice([-1.0, 1.0], size=(probes, operator.size))])
    mean, se = mean_se(values)
    return float(mean), float(se)


def _spectra_peak_bytes(net: MLP, n_samples: int, lanczos_steps: int, hutchinson_probes: int) -> int:
    """Estimated peak bytes of one trial of :func:`sample_spectra` (float64, every array dense).

    Counted: the weights and one transient copy of the largest layer while it
    is drawn; the Jacobian ``N x width x d`` about four times (the product,
    its next layer, the slope scaling and the SVD's copy); activations and
    gradients of the Gram (``4 N max(width, d)`` per layer); with a Hessian,
    its double-backward graph (about 4 ``P``); the Lanczos basis twice
    (``steps x P``, stacked once more for each re-orthogonalisation) and the
    Rademacher probes twice (``probes x P`` and their indices).  An estimate for
    refusing sizes that cannot fit, not a measurement.
    """
    P = net.n_params
    largest = max(m * n for m, n in net.layer_shapes)
    numbers = (P + largest + 4 * n_samples * net.width * net.input_dim
               + net.n_layers * 4 * n_samples * max(net.width, net.input_dim) + 2 * n_samples**2)
    if lanczos_steps or hutchinson_probes:
        numbers += 4 * P + 2 * lanczos_steps * P + 2 * hutchinson_probes * P
    return 8 * numbers


def sample_spectra(net, n_samples=None, trials=None, *, labels=None, loss=None, seed, lanczos_steps: int = 20,
                   hutchinson_probes: int = 0, progress: bool = False) -> pd.DataFrame:
    """One row per trial (fresh weights, sphere data, labels): Jacobian, Fisher, Hessian and norm statistics.

    Columns: ``jacobian_sigma_max_sq`` (largest ``sigma_max(J(x_i))^2`` over the
    batch), ``fisher_lambda_max`` and ``fisher_trace`` (exact, from the Gram of
    ``loss``), ``hessian_lambda_max`` (Lanczos, ``lanczos_steps``; 0 skips it),
    ``hessian_trace`` and ``hessian_trace_se`` (Hutchinson, when
    ``hutchinson_probes > 0``), ``norm_first`` and ``norm_last`` (``|z_0|^2``,
    ``|z_{beta-1}|^2`` of the first example, so that each column is a sample of
    the law over networks), ``norm_ratio`` (their ratio) and
    ``grad_norm_sq`` (``|grad l_1|^2``).

    Parameters
    ----------
    net : MLP or MLPTrial
        Depth >= 1 (the Jacobian is that of the hidden stack).  An
        ``MLPTrial`` brings its network, ``n_samples``, labels and loss (then
        ``sample_spectra(trial, trials, seed=...)``); other Trials are refused:
        the Jacobian and Hessian here are those of the paper's network.
    n_samples : int >= 2
    trials : int >= 1
    labels : "linear", "tanh", "random_sign" or a callable ``labels(X, rng)``
    loss : "square", "logistic" or "output"
    seed : int >= 0 (or a sequence of them)
        Trial ``t`` draws everything (weights, data, labels, the Lanczos
        start, the probes) from its own ``SeedSequence(seed, spawn_key=(t,))``,
        so trial ``t`` is a pure function of ``(arguments, seed, t)`` and the
        first ``k`` rows do not depend on ``trials``.  (Per trial rather than
        per block of ``SEED_BLOCK`` as in ``sample_confusion``: trials here run
        one at a time and nothing is drawn for a whole block.)  ``None`` and
        negative seeds are refused.
    lanczos_steps : int >= 0
    hutchinson_probes : int >= 0 (0, or >= 2)
    progress : bool

    Returns
    -------
    pandas.DataFrame
        One row per trial, ``trial`` first.

    Raises
    ------
    ValueError
        Also before anything is drawn when one trial's estimated peak memory
        (weights, the dense ``N x width x d`` Jacobian, the Hessian graph, the
        Lanczos basis and probes) exceeds the memory available.
    """
    from tqdm.auto import tqdm

    net, n_samples, trials, labels, loss = _unwrap_trial(net, n_samples, trials, labels, loss)
    _check_net(net)
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    trials = validation.integer("trials", trials, minimum=1)
    loss = validation.choice("loss", loss, LOSSES)
    seed = check_seed(seed)
    lanczos_steps = validation.integer("lanczos_steps", lanczos_steps, minimum=0)
    hutchinson_probes = validation.integer("hutchinson_probes", hutchinson_probes, minimum=0)
    if hutchinson_probes == 1:
        raise ValueError("argument 'hutchinson_probes' must be 0 (no trace) or >= 2 (a standard error needs two)")
    progress = validation.flag("progress", progress)
    label_fn = make_labels(labels)
    validation.fits_in_memory(
        _spectra_peak_bytes(net, n_samples, lanczos_steps, hutchinson_probes),
        f"one trial of sample_spectra with 'net' of width {net.width}, depth {net.depth} and input_dim "
        f"{net.input_dim} ({net.n_params} parameters), 'n_samples' = {n_samples}, 'lanczos_steps' = "
        f"{lanczos_steps} and 'hutchinson_probes' = {hutchinson_probes}")
    rows = []
    for t in tqdm(range(trials), disable=not progress, desc="spectra"):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(t,)))
        params = net.init(rng)
        X = sample_sphere(n_samples, net.input_dim, rng)
        y = np.asarray(label_fn(X, rng), dtype=np.float64)  # checked (finite, one per example) by make_labels
        G = gradient_gram(net, params, X, y, loss=loss, backend="numpy")
        spectrum = fisher_spectrum(G)
        J = input_output_jacobian(net, params, X)
        first, last = forward_norms(net, params, X[:1])
        row = {"trial": t, "jacobian_sigma_max_sq": float(np.linalg.norm(J, ord=2, axis=(1, 2)).max() ** 2),
               "fisher_lambda_max": float(spectrum[0]), "fisher_trace": float(spectrum.sum()),
               "norm_first": float(first[0]), "norm_last": float(last[0]), "norm_ratio": float(last[0] / first[0]),
               "grad_norm_sq": float(G[0, 0])}
        if lanczos_steps or hutchinson_probes:
            H = HessianOperator(net, params, X, y, loss)
            if lanczos_steps:
                values, _ = lanczos(H, lanczos_steps, rng.standard_normal(H.size))
                row["hessian_lambda_max"] = float(values[-1])
            if hutchinson_probes:
                row["hessian_trace"], row["hessian_trace_se"] = hutchinson_trace(H, hutchinson_probes, rng)
        rows.append(row)
    return pd.DataFrame(rows)


def sample_forward_norms(net: MLP, n_samples: int, trials: int, *, seed, progress: bool = False) -> pd.DataFrame:
    """The forward-norm columns of :func:`sample_spectra` alone: the same draws, many times faster.

    Trial ``t`` draws its weights and then its ``n_samples`` sphere points from
    ``SeedSequence(seed, spawn_key=(t,))`` exactly as :func:`sample_spectra`
    does, and evaluates the forward pass of eq. 4 on the first point with
    numpy matrix-vector products (labels, the Gram, the Jacobian and the
    Hessian, drawn or computed after them there, are skipped; torch's
    per-operation cost, not the arithmetic, dominates a pass of one point).
    So ``norm_first``, ``norm_last`` and ``norm_ratio`` are
    :func:`sample_spectra`'s columns up to the rounding of the products
    (relative 1e-12 in the tests).  For laws over networks of the forward
    norms (``theory.chi_square_product``).

    Parameters
    ----------
    net : MLP
        Depth >= 1.
    n_samples : int >= 2
        Points drawn per trial (only the first enters; the number fixes the
        stream, so that the rows match :func:`sample_spectra` with the same
        ``n_samples``).
    trials : int >= 1
    seed : int >= 0 (or a sequence of them)
    progress : bool

    Returns
    -------
    pandas.DataFrame
        Columns ``trial``, ``norm_first`` (``|z_0|^2``), ``norm_last``
        (``|z_{beta-1}|^2``) and ``norm_ratio`` (their ratio).
    """
    from tqdm.auto import tqdm

    _check_net(net)
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    trials = validation.integer("trials", trials, minimum=1)
    seed = check_seed(seed)
    progress = validation.flag("progress", progress)
    first, last = np.empty(trials), np.empty(trials)
    for t in tqdm(range(trials), disable=not progress, desc="forward norms"):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(t,)))
        params = net.init(rng)
        X = sample_sphere(n_samples, net.input_dim, rng)[:1]
        (first[t],), (last[t],) = hidden_norms(net.activation, params.weights, params.biases, X, net.depth, np)
    return pd.DataFrame({"trial": np.arange(trials), "norm_first": first, "norm_last": last,
                         "norm_ratio": last / first})


def summarise(values, quantiles=(0.1, 0.5, 0.9)) -> dict:
    """Mean with its s.e., median and quantiles of a sample: heavy-tailed laws need all of them."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    mean, se = mean_se(values)
    out = {"mean": mean, "mean_se": se}
    out.update({f"q{q:g}": float(np.quantile(values, q)) for q in quantiles})
    return out
