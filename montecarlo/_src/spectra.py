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

from . import validation
from .data import make_labels, sample_sphere
from .elementwise import LOSSES, activation_with_derivative, loss_value
from .gram import gradient_gram
from .gram_statistics import fisher_spectrum
from .network import MLP, Parameters


def _check_net(net) -> MLP:
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    if net.depth < 1:
        raise ValueError("argument 'net' must have depth >= 1 (a hidden layer); depth 0 has no hidden stack")
    return net


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
    """Pre-activations ``z_p`` (``N x n_p``), derivatives ``s'(z_p)`` and the output ``g`` (eq. 4), in torch."""
    step = 2 if net.bias else 1
    h, zs, slopes = X, [], []
    for p in range(net.n_layers):
        z = h @ tensors[step * p].mT
        if net.bias:
            z = z + tensors[step * p + 1]
        zs.append(z)
        if p < net.n_layers - 1 or net.output_activation:
            h, slope = activation_with_derivative(net.activation, z, torch)
        else:
            h, slope = z, torch.ones_like(z)
        slopes.append(slope)
    return zs, slopes, net.gamma * h[:, 0]


def input_output_jacobian(net: MLP, params: Parameters, X) -> np.ndarray:
    """``J(x_i) = d h_{beta-1} / d x_i`` for every row of ``X``: ``N x width x d`` (module docstring)."""
    _check_net(net)
    X = validation.finite_array("X", X, ndim=(2,))
    with torch.no_grad():
        zs, slopes, _ = _forward(net, _torch_parameters(params), torch.as_tensor(X))
        W = [torch.as_tensor(np.asarray(w, dtype=np.float64)) for w in params.weights]
        J = slopes[0][:, :, None] * W[0]
        for p in range(1, net.depth):
            J = slopes[p][:, :, None] * (W[p] @ J)
    return J.numpy()


def forward_norms(net: MLP, params: Parameters, X) -> tuple[np.ndarray, np.ndarray]:
    """``(|z_0|^2, |z_{beta-1}|^2)`` per row of ``X``: the first and last hidden pre-activations."""
    _check_net(net)
    X = validation.finite_array("X", X, ndim=(2,))
    with torch.no_grad():
        zs, _, _ = _forward(net, _torch_parameters(params), torch.as_tensor(X))
    return (zs[0] ** 2).sum(-1).numpy(), (zs[net.depth - 1] ** 2).sum(-1).numpy()


class HessianOperator:
    """Hessian-vector products of the mean loss ``(1/N) sum_i l(g(x_i), y_i)`` in all weights (flattened).

    Parameters are flattened in layer order, weights (row-major) before
    biases.  ``H @ v`` is one double-backward pass.
    """

    def __init__(self, net: MLP, params: Parameters, X, y, loss: str, device="cpu"):
        _check_net(net)
        loss = validation.choice("loss", loss, LOSSES)
        self.tensors = _torch_parameters(params, device)
        X = torch.as_tensor(validation.finite_array("X", X, ndim=(2,)), device=device)
        y = torch.as_tensor(np.asarray(y, dtype=np.float64), device=device)
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
    q = np.asarray(start, dtype=np.float64)
    q = q / np.linalg.norm(q)
    basis, alphas, betas = [q], [], []
    for k in range(steps):
        w = operator @ basis[-1]
        alphas.append(float(basis[-1] @ w))
        Q = np.array(basis)
        w = w - Q.T @ (Q @ w)
        w = w - Q.T @ (Q @ w)  # twice is enough (Kahan-Parlett)
        beta = float(np.linalg.norm(w))
        if k == steps - 1 or beta <= 1e-12 * max(1.0, abs(alphas[-1])):
            break
        betas.append(beta)
        basis.append(w / beta)
    T = np.diag(alphas) + np.diag(betas[:len(alphas) - 1], 1) + np.diag(betas[:len(alphas) - 1], -1)
    values, vectors = np.linalg.eigh(T)
    return values, vectors[0] ** 2


def hutchinson_trace(operator, probes: int, rng) -> tuple[float, float]:
    """Hutchinson's estimate of ``trace(H)``: the mean of ``v^T H v`` over Rademacher ``v``, with its s.e."""
    probes = validation.integer("probes", probes, minimum=2)
    rng = np.random.default_rng(rng)
    values = np.array([v @ (operator @ v) for v in rng.choice([-1.0, 1.0], size=(probes, operator.size))])
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(probes))


def sample_spectra(net: MLP, n_samples: int, trials: int, *, labels, loss: str, seed, lanczos_steps: int = 20,
                   hutchinson_probes: int = 0, progress: bool = False) -> pd.DataFrame:
    """One row per trial (fresh weights, sphere data, labels): Jacobian, Fisher, Hessian and norm statistics.

    Columns: ``jacobian_sigma_max_sq`` (largest ``sigma_max(J(x_i))^2`` over the
    batch), ``fisher_lambda_max`` and ``fisher_trace`` (exact, from the Gram of
    ``loss``), ``hessian_lambda_max`` (Lanczos, ``lanczos_steps``; 0 skips it),
    ``hessian_trace`` and ``hessian_trace_se`` (Hutchinson, when
    ``hutchinson_probes > 0``), ``norm_first`` and ``norm_last`` (``|z_0|^2``,
    ``|z_{beta-1}|^2`` of the first example, so that each column is a sample of
    the law over networks), ``norm_ratio`` (their ratio) and
    ``grad_norm_sq`` (``|grad l_1|^2``).  Trial ``t`` draws from
    ``SeedSequence(seed, spawn_key=(t,))``.
    """
    from tqdm.auto import tqdm

    _check_net(net)
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    trials = validation.integer("trials", trials, minimum=1)
    loss = validation.choice("loss", loss, LOSSES)
    label_fn = make_labels(labels)
    rows = []
    for t in tqdm(range(trials), disable=not progress, desc="spectra"):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(t,)))
        params = net.init(rng)
        X = sample_sphere(n_samples, net.input_dim, rng)
        y = np.asarray(label_fn(X, rng), dtype=np.float64)
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


def summarise(values, quantiles=(0.1, 0.5, 0.9)) -> dict:
    """Mean with its s.e., median and quantiles of a sample: heavy-tailed laws need all of them."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    out = {"mean": values.mean(), "mean_se": values.std(ddof=1) / np.sqrt(values.size)}
    out.update({f"q{q:g}": float(np.quantile(values, q)) for q in quantiles})
    return out
