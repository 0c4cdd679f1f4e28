"""Numba backend of the factorised Gram (same equation as ``factorised.py``).

Trials run in parallel with ``prange``; inside a trial the products go to
BLAS (scipy's OpenBLAS, through numba's ``np.dot``).  While trials run in
parallel, BLAS is held to one thread so the two levels of threading do not
oversubscribe the cores; a single trial runs outside the parallel region and
lets BLAS use every core.  float64 and float32 compile to separate
specialisations; the Gram accumulates in the input precision.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (load numba's BLAS now, so threadpoolctl can limit it)
from numba import njit, prange
from numba.typed import List
from threadpoolctl import threadpool_limits

from ..elementwise import ACTIVATIONS, LOSSES

ACTIVATION_CODE = {name: code for code, name in enumerate(ACTIVATIONS)}
LOSS_CODE = {name: code for code, name in enumerate(LOSSES)}
assert ACTIVATION_CODE == {"relu": 0, "tanh": 1, "sigmoid": 2, "linear": 3}
assert LOSS_CODE == {"square": 0, "logistic": 1}


@njit(cache=True)
def _activate(z, s_prime, activation):
    """In place: ``z <- s(z)`` and ``s_prime <- s'(z)`` (codes as ``ACTIVATION_CODE``)."""
    rows, cols = z.shape
    for i in range(rows):
        for j in range(cols):
            v = z[i, j]
            if activation == 0:
                if v > 0:
                    s_prime[i, j] = 1.0
                else:
                    z[i, j] = 0.0
                    s_prime[i, j] = 0.0
            elif activation == 1:
                s = np.tanh(v)
                z[i, j] = s
                s_prime[i, j] = 1.0 - s * s
            elif activation == 2:
                s = 0.5 * (1.0 + np.tanh(0.5 * v))
                z[i, j] = s
                s_prime[i, j] = s * (1.0 - s)
            else:
                s_prime[i, j] = 1.0


@njit(cache=True)
def _loss_derivative(g, y, loss):
    """``dl/dg``: square ``g - y``; logistic ``-y / (1 + exp(y g))`` (codes as ``LOSS_CODE``)."""
    if loss == 0:
        return g - y
    return -y * 0.5 * (1.0 - np.tanh(0.5 * y * g))


@njit(cache=True)
def _trial(weights, biases, has_bias, t, x, y, activation, output_activation, loss, gamma, out):
    """Accumulate one trial's Gram blocks into ``out`` (``n_blocks x N x N``).

    ``out`` has one block per layer, or a single block that receives the sum.
    Arrays in ``weights``/``biases`` carry a leading axis of 1 (shared) or T.
    """
    n_layers = len(weights)
    n = x.shape[0]
    inputs = List()
    derivatives = List()
    h = x
    for p in range(n_layers):
        w = weights[p][t if weights[p].shape[0] > 1 else 0]
        inputs.append(h)
        z = np.dot(h, w.T)
        if has_bias:
            b = biases[p][t if biases[p].shape[0] > 1 else 0]
            for i in range(n):
                for j in range(z.shape[1]):
                    z[i, j] += b[j]
        s_prime = np.empty_like(z)
        if p < n_layers - 1 or output_activation:
            _activate(z, s_prime, activation)
        else:
            s_prime[:] = 1.0
        derivatives.append(s_prime)
        h = z
    delta = np.empty((n, 1), dtype=x.dtype)
    last = derivatives[n_layers - 1]
    for i in range(n):
        delta[i, 0] = gamma * _loss_derivative(gamma * h[i, 0], y[i], loss) * last[i, 0]
    bias_term = 1.0 if has_bias else 0.0
    for p in range(n_layers - 1, -1, -1):
        hp = inputs[p]
        input_gram = np.dot(hp, hp.T)
        delta_gram = np.dot(delta, delta.T)
        block = out[p if out.shape[0] > 1 else 0]
        for i in range(n):
            for j in range(n):
                block[i, j] += delta_gram[i, j] * (input_gram[i, j] + bias_term)
        if p > 0:
            w = weights[p][t if weights[p].shape[0] > 1 else 0]
            delta = np.dot(delta, w) * derivatives[p - 1]


@njit(cache=True)
def _trial_at(weights, biases, has_bias, t, X, Y, activation, output_activation, loss, gamma, out):
    """Trial ``t``: inputs with a leading axis of 1 are shared by every trial."""
    x = X[t if X.shape[0] > 1 else 0]
    y = Y[t if Y.shape[0] > 1 else 0]
    _trial(weights, biases, has_bias, t, x, y, activation, output_activation, loss, gamma, out[t])


@njit(cache=True, parallel=True)
def _trials_parallel(weights, biases, has_bias, X, Y, activation, output_activation, loss, gamma, out):
    for t in prange(out.shape[0]):
        _trial_at(weights, biases, has_bias, np.int64(t), X, Y, activation, output_activation, loss, gamma, out)


@njit(cache=True)
def _trials_serial(weights, biases, has_bias, X, Y, activation, output_activation, loss, gamma, out):
    for t in range(out.shape[0]):
        _trial_at(weights, biases, has_bias, np.int64(t), X, Y, activation, output_activation, loss, gamma, out)


def gram_numba(net, weights, biases, X, y, loss, per_layer, n_trials, dtype):
    """Gram blocks for ``n_trials`` trials: array ``(T, n_blocks, N, N)``.

    Every input array carries a leading axis of 1 (shared by all trials) or T.
    ``n_blocks`` is ``beta + 1`` with ``per_layer`` and 1 (the total) otherwise.
    """
    n = X.shape[-2]
    weight_list = List([np.ascontiguousarray(w, dtype=dtype) for w in weights])
    if biases is None:
        bias_list = List([np.zeros((1, 0), dtype=dtype)])
    else:
        bias_list = List([np.ascontiguousarray(b, dtype=dtype) for b in biases])
    n_blocks = len(weights) if per_layer else 1
    out = np.zeros((n_trials, n_blocks, n, n), dtype=dtype)
    args = (
        weight_list,
        bias_list,
        biases is not None,
        np.ascontiguousarray(X, dtype=dtype),
        np.ascontiguousarray(y, dtype=dtype),
        ACTIVATION_CODE[net.activation],
        net.output_activation,
        LOSS_CODE[loss],
        dtype.type(net.gamma),
        out,
    )
    if n_trials == 1 or numba.get_num_threads() == 1:
        _trials_serial(*args)
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            _trials_parallel(*args)
    return out
