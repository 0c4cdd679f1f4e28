"""Numba backend of the factorised Gram (same equation as ``factorised.py``).

Trials run in parallel with ``prange``; inside a trial the products go to
BLAS (scipy's OpenBLAS, through numba's ``np.dot``).  While trials run in
parallel, BLAS is held to one thread so the two levels of threading do not
oversubscribe the cores; a single trial runs outside the parallel region and
lets BLAS use every core.  float64 and float32 compile to separate
specialisations; the Gram accumulates in the input precision.

Activations and losses come from ``elementwise.py``'s registries
(``elementwise.activate`` and ``elementwise.loss_derivative_at``, by code =
position in the registry), so a declared activation or loss reaches the
kernel without an edit here; :func:`_flush_if_inlined_code_changed` keeps
numba's cache from serving kernels compiled against an older ``elementwise.py``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (load numba's BLAS now, so threadpoolctl can limit it)
from numba import njit, prange
from numba.core.dispatcher import Dispatcher
from numba.typed import List
from threadpoolctl import ThreadpoolController

from ..draw import elementwise
from ..draw.elementwise import ACTIVATION_CODE, LOSS_CODE, activate, loss_derivative_at

#: The modules whose njit functions the kernels here call, and so compile into their own cached machine code.
INLINED_MODULES = (elementwise,)

# Built once: enumerating the loaded libraries costs about a millisecond, limiting them then costs microseconds.
_THREADPOOLS = ThreadpoolController()


@njit(cache=True)
def _layer_activation(z, activation, apply):
    """``s'(z)``, and ``z <- s(z)`` in place; ``s' = 1`` and ``z`` kept when not ``apply`` (an output without activation)."""
    s_prime = np.empty_like(z)
    if apply:
        activate(z, s_prime, activation)
    else:
        s_prime[:] = 1.0
    return s_prime


@njit(cache=True)
def _pick(array, t):
    """Trial ``t`` of an array whose leading axis is 1 (shared by every trial) or T."""
    return array[t if array.shape[0] > 1 else 0]


@njit(cache=True)
def _eigh_psd(matrix):
    """Eigenvalues (rounding-level ones set to 0, as ``lazy._eigh_psd``) and C-contiguous eigenvectors."""
    values, vectors = np.linalg.eigh(matrix)
    n = values.shape[0]
    cutoff = values[n - 1] * (n * np.finfo(matrix.dtype).eps)
    for j in range(n):
        if values[j] <= cutoff:
            values[j] = 0.0
    return values, np.ascontiguousarray(vectors)


@njit(cache=True)
def _symmetric_sqrt(matrix):
    """``V Lambda^{1/2} V^T``, the unique PSD square root (``lazy.symmetric_sqrt``)."""
    values, vectors = _eigh_psd(matrix)
    scaled = vectors.copy()
    for j in range(values.shape[0]):
        scaled[:, j] *= np.sqrt(values[j])
    return np.dot(scaled, vectors.T)


@njit(cache=True)
def _top_factor(matrix, k):
    """``V_k Lambda_k^{1/2}`` with sign-fixed eigenvectors (``lazy.top_factor``)."""
    values, vectors = _eigh_psd(matrix)
    n = values.shape[0]
    out = np.empty((n, k), dtype=matrix.dtype)
    for j in range(k):
        column = vectors[:, n - k + j]
        sign = 1.0 if column[np.argmax(np.abs(column))] >= 0 else -1.0
        out[:, j] = column * (sign * np.sqrt(values[n - k + j]))
    return out


@njit(cache=True)
def _cholesky_lower(matrix):
    """``(L, True)`` with ``L L^T = matrix``, ``L`` lower triangular; ``(_, False)`` when a pivot is not positive."""
    n = matrix.shape[0]
    lower = np.zeros_like(matrix)
    for j in range(n):
        pivot = matrix[j, j]
        for k in range(j):
            pivot -= lower[j, k] * lower[j, k]
        if not pivot > 0:
            return lower, False
        root = np.sqrt(pivot)
        lower[j, j] = root
        for i in range(j + 1, n):
            value = matrix[i, j]
            for k in range(j):
                value -= lower[i, k] * lower[j, k]
            lower[i, j] = value / root
    return lower, True


@njit(cache=True)
def _frame(h):
    """``(U, R, H H^T)`` with ``H^T = U R`` (``lazy.frame``: ``U`` orthonormal, ``R``'s diagonal >= 0).

    For full-rank ``H`` this factorisation is unique, and Cholesky QR2 computes
    it from four ``N x N x n`` products (``H H^T = L_1 L_1^T``,
    ``U_1^T = L_1^{-1} H``, ``U_1^T U_1 = L_2 L_2^T``, ``U^T = L_2^{-1} U_1^T``,
    ``R = (L_1 L_2)^T``): about ten times faster than Householder QR for a tall,
    skinny ``H^T``.  The second pass restores orthogonality to rounding when
    ``cond(H) < eps^{-1/2}``; when a Cholesky pivot fails, ``R``'s diagonal
    spans more than ``eps^{-1/2}`` (``H`` is rank-deficient or nearly) or ``U``
    is not orthonormal to ``100 N eps``, Householder QR is used instead, with
    the same sign convention.
    """
    gram = np.dot(h, h.T)
    n = gram.shape[0]
    eps = np.finfo(h.dtype).eps
    first, ok = _cholesky_lower(gram)
    if ok:
        diagonal = np.diag(first)
        ok = diagonal.min() > diagonal.max() * np.sqrt(eps)
    if ok:
        u1_t = np.dot(np.linalg.inv(first), h)
        second, ok = _cholesky_lower(np.dot(u1_t, u1_t.T))
        if ok:
            u_t = np.dot(np.linalg.inv(second), u1_t)
            error = np.abs(np.dot(u_t, u_t.T) - np.eye(n, dtype=h.dtype)).max()
            if error <= 100 * n * eps:
                return np.ascontiguousarray(u_t.T), np.ascontiguousarray(np.dot(first, second).T), gram
    U, R = np.linalg.qr(np.ascontiguousarray(h.T))
    for j in range(n):
        if R[j, j] < 0:
            R[j, :] *= -1.0
            U[:, j] *= -1.0
    return np.ascontiguousarray(U), np.ascontiguousarray(R), gram  # one layout for both branches (no "A" arrays)


@njit(cache=True)
def _lazy_backward(delta, delta_gram, a, g1, g2, U, mode, scale):
    """``Delta W`` of a lazily drawn layer, exactly in law (equations in ``lazy.py``, in the regrouped form there).

    ``delta_gram`` is ``Delta Delta^T``, which the layer's Gram block has already formed.
    """
    delta_a = np.dot(delta, a)
    if mode == 1:
        root = _symmetric_sqrt(delta_gram)
        out = np.dot(root, g1.T) + np.dot(delta_a - np.dot(root, np.dot(g1.T, U)), U.T)
    else:
        delta_f = delta_a / scale
        m_t = _top_factor(delta_gram - np.dot(delta_f, delta_f.T), g1.shape[1])
        g1_u = np.dot(U.T, g1)  # U^T G_1, N x k
        gram_y = np.dot(g1.T, g1) - np.dot(g1_u.T, g1_u)
        if g2.shape[0] > 0:
            gram_y += np.dot(g2.T, g2)
        lower = np.linalg.cholesky(gram_y)
        factor = scale * np.linalg.solve(lower.T, m_t.T).T  # scale M^T L^{-1}, N x k
        out = np.dot(factor, g1.T) + np.dot(delta_a - np.dot(factor, g1_u.T), U.T)
    for i in range(delta.shape[0]):  # exactly zero backward signal -> exactly zero row (lazy.input_gradient)
        if not np.any(delta[i] != 0):
            out[i, :] = 0.0
    return out


@njit(cache=True)
def _trial(weights, g1s, g2s, modes, scales, biases, has_bias, t, x, y, activation, output_activation, loss,
           gamma, out):
    """Accumulate one trial's Gram blocks into ``out`` (``n_blocks x N x N``).

    ``out`` has one block per layer, or a single block that receives the sum.
    Layer ``p`` is dense (``modes[p] == 0``: ``weights[p]`` is ``W``) or lazy
    (1 Gaussian, 2 orthogonal: ``weights[p]`` is ``A = W U`` and ``g1s[p]``,
    ``g2s[p]`` are the normals of its backward pass; see ``lazy.py``).
    """
    n_layers = len(weights)
    n = x.shape[0]
    input_grams = List()
    derivatives = List()
    frames = List()
    h = x
    for p in range(n_layers):
        w = _pick(weights[p], t)
        if modes[p] == 0:
            z = np.dot(h, w.T)
            frames.append(np.zeros((1, 1), dtype=x.dtype))
            input_grams.append(np.dot(h, h.T))
        else:
            U, R, gram = _frame(h)
            z = np.dot(R.T, w.T)
            frames.append(U)
            input_grams.append(gram)
        if has_bias:
            b = _pick(biases[p], t)
            for i in range(n):
                for j in range(z.shape[1]):
                    z[i, j] += b[j]
        derivatives.append(_layer_activation(z, activation, p < n_layers - 1 or output_activation))
        h = z
    delta = np.empty((n, 1), dtype=x.dtype)
    last = derivatives[n_layers - 1]
    for i in range(n):
        delta[i, 0] = gamma * loss_derivative_at(gamma * h[i, 0], y[i], loss) * last[i, 0]
    bias_term = 1.0 if has_bias else 0.0
    for p in range(n_layers - 1, -1, -1):
        input_gram = input_grams[p]
        delta_gram = np.dot(delta, delta.T)
        block = out[p if out.shape[0] > 1 else 0]
        for i in range(n):
            for j in range(n):
                block[i, j] += delta_gram[i, j] * (input_gram[i, j] + bias_term)
        if p > 0:
            w = _pick(weights[p], t)
            if modes[p] == 0:
                delta_w = np.dot(delta, w)
            else:
                delta_w = _lazy_backward(delta, delta_gram, w, _pick(g1s[p], t), _pick(g2s[p], t), frames[p],
                                         modes[p], scales[p])
            delta = delta_w * derivatives[p - 1]


@njit(cache=True)
def _trial_at(weights, g1s, g2s, modes, scales, biases, has_bias, t, X, Y, activation, output_activation, loss,
              gamma, out):
    """Trial ``t``: inputs with a leading axis of 1 are shared by every trial."""
    _trial(weights, g1s, g2s, modes, scales, biases, has_bias, t, _pick(X, t), _pick(Y, t), activation,
           output_activation, loss, gamma, out[t])


@njit(cache=True, parallel=True)
def _trials_parallel(weights, g1s, g2s, modes, scales, biases, has_bias, X, Y, activation, output_activation, loss,
                     gamma, out):
    for t in prange(out.shape[0]):
        _trial_at(weights, g1s, g2s, modes, scales, biases, has_bias, np.int64(t), X, Y, activation,
                  output_activation, loss, gamma, out)


@njit(cache=True)
def _trials_serial(weights, g1s, g2s, modes, scales, biases, has_bias, X, Y, activation, output_activation, loss,
                   gamma, out):
    for t in range(out.shape[0]):
        _trial_at(weights, g1s, g2s, modes, scales, biases, has_bias, np.int64(t), X, Y, activation,
                  output_activation, loss, gamma, out)


def _dispatchers(module) -> list:
    """The njit functions defined in ``module``."""
    return [v for v in vars(module).values() if isinstance(v, Dispatcher) and v.py_func.__module__ == module.__name__]


def _flush_if_inlined_code_changed() -> None:
    """Empty the numba cache of every kernel here when the source of an ``INLINED_MODULES`` module has changed.

    numba keys a cached function on its own file only: after an edit of
    ``elementwise.py`` (a new activation, a changed formula) the kernels here
    would load machine code that inlined the old one and silently run it.  So
    a stamp, the sha256 of those sources, sits beside the cache; when it is
    missing or differs, the cache index of every njit function here and in
    those modules is emptied (they recompile on first call) and the stamp is
    rewritten, atomically (two processes doing this at once is harmless).
    """
    digest = hashlib.sha256()
    for module in INLINED_MODULES:
        digest.update(Path(module.__file__).read_bytes())
    stamp = digest.hexdigest()
    cache_path = Path(_trials_parallel._cache._cache_path)
    stamp_file = cache_path / f"{__name__.rsplit('.', 1)[-1]}.inlined-sources.sha256"
    try:
        if stamp_file.read_text() == stamp:
            return
    except OSError:
        pass
    try:
        for dispatcher in [d for module in (sys.modules[__name__], *INLINED_MODULES) for d in _dispatchers(module)]:
            dispatcher._cache.flush()
        cache_path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache_path, prefix=stamp_file.name, delete=False) as handle:
            handle.write(stamp)
        os.replace(handle.name, stamp_file)
    except OSError:
        pass  # an unwritable cache: numba does not cache there either, so nothing can be stale


_flush_if_inlined_code_changed()


def gram_numba(net, layers, biases, X, y, loss, per_layer, n_trials, dtype):
    """Gram blocks for ``n_trials`` trials: array ``(T, n_blocks, N, N)``.

    ``layers`` are ``lazy.LayerDraw`` (a dense weight is one with mode
    ``DENSE``).  Every input array carries a leading axis of 1 (shared by all
    trials) or T.  ``n_blocks`` is ``beta + 1`` with ``per_layer`` and 1 (the
    total, accumulated in place) otherwise.
    """
    n = X.shape[-2]
    as_dtype = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    placeholder = np.zeros((1, 1, 1), dtype=dtype)
    weight_list = List([as_dtype(layer.weight) for layer in layers])
    g1_list = List([placeholder if layer.g1 is None else as_dtype(layer.g1) for layer in layers])
    g2_list = List([placeholder if layer.g2 is None else as_dtype(layer.g2) for layer in layers])
    modes = np.array([layer.mode for layer in layers], dtype=np.int64)
    scales = np.array([layer.scale for layer in layers], dtype=dtype)
    bias_list = List([np.zeros((1, 0), dtype=dtype)] if biases is None else [as_dtype(b) for b in biases])
    n_blocks = len(weight_list) if per_layer else 1
    out = np.zeros((n_trials, n_blocks, n, n), dtype=dtype)
    args = (weight_list, g1_list, g2_list, modes, scales, bias_list, biases is not None, as_dtype(X), as_dtype(y),
            ACTIVATION_CODE[net.activation], net.output_activation, LOSS_CODE[loss], dtype.type(net.gamma), out)
    if n_trials == 1 or numba.get_num_threads() == 1:
        _trials_serial(*args)
    else:
        with _THREADPOOLS.limit(limits=1, user_api="blas"):
            _trials_parallel(*args)
    return out


def layer_blocks(net, layers, biases, X, y, loss, *, dtype, device=None, per_layer=True) -> np.ndarray:
    """Gram blocks ``(T, beta + 1, N, N)``, or ``(T, 1, N, N)`` (the total) without ``per_layer``.

    The contract of ``gram.GRAM_BACKENDS``; ``T`` is the longest leading axis of the inputs.
    """
    X, y = (X, y) if X.ndim == 3 else (X[None], y[None])  # data shared by every trial
    leading = [a.shape[0] for layer in layers for a in (layer.weight, layer.g1, layer.g2) if a is not None]
    n_trials = max(leading + [a.shape[0] for a in (X, y, *(biases or ()))])
    return gram_numba(net, layers, biases, X, y, loss, per_layer, n_trials, np.dtype(dtype))
