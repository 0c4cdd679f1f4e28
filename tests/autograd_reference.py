"""Independent references for the Gram: brute-force torch.autograd and central finite differences.

Written from the paper's equations directly, with torch's own activations and
losses; nothing here imports the package's forward pass or Gram code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda z: z,
}


def _layers(params):
    weights = list(params.weights)
    biases = list(params.biases) if params.biases is not None else [None] * len(weights)
    return weights, biases


def network_output(net, weights, biases, x):
    """g_W(x) = gamma * s(W_beta s(... s(W_0 x))) for one input vector (eq. 4), in torch."""
    act = TORCH_ACTIVATIONS[net.activation]
    h = x
    for p, (W, b) in enumerate(zip(weights, biases)):
        z = W @ h + (b if b is not None else 0.0)
        h = act(z) if (p < len(weights) - 1 or net.output_activation) else z
    return net.gamma * h[0]


def example_loss(loss, g, y):
    """Square 1/2 (y - g)^2, logistic log(1 + exp(-y g)), or the output g itself."""
    if loss == "square":
        return 0.5 * (y - g) ** 2
    if loss == "output":
        return g
    if loss == "logistic":
        return F.softplus(-y * g)
    raise ValueError(f"no reference for loss {loss!r}: add its formula here")


def per_example_gradients(net, params, X, y, loss):
    """The N x P matrix of per-example gradients, one autograd call per example.

    Columns run over W_0, b_0, W_1, b_1, ...; also returns the list of
    (start, stop) column ranges of each layer (weights and bias together).
    """
    weights, biases = _layers(params)
    tw = [torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True) for w in weights]
    tb = [None if b is None else torch.tensor(np.asarray(b, dtype=np.float64), requires_grad=True) for b in biases]
    leaves = [t for pair in zip(tw, tb) for t in pair if t is not None]
    rows = []
    for xi, yi in zip(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)):
        g = network_output(net, tw, tb, torch.tensor(xi))
        grads = torch.autograd.grad(example_loss(loss, g, torch.tensor(yi)), leaves, allow_unused=True)
        rows.append(torch.cat([gr.reshape(-1) for gr in grads]).numpy())
    ranges, start = [], 0
    for w, b in zip(tw, tb):
        stop = start + w.numel() + (0 if b is None else b.numel())
        ranges.append((start, stop))
        start = stop
    return np.array(rows), ranges


def flat_parameters(params):
    weights, biases = _layers(params)
    return np.concatenate([a.reshape(-1) for pair in zip(weights, biases) for a in pair if a is not None])


def finite_difference_gradients(net, params, X, y, loss, step=1e-5):
    """Per-example gradients by central differences on the flattened parameters (float64)."""
    weights, biases = _layers(params)
    shapes = [a.shape for pair in zip(weights, biases) for a in pair if a is not None]
    theta0 = flat_parameters(params)

    def losses(theta):
        arrays, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            arrays.append(torch.tensor(theta[start:start + size].reshape(shape)))
            start += size
        if biases[0] is not None:
            tw, tb = arrays[0::2], arrays[1::2]
        else:
            tw, tb = arrays, [None] * len(arrays)
        with torch.no_grad():
            return np.array([
                float(example_loss(loss, network_output(net, tw, tb, torch.tensor(xi)), torch.tensor(yi)))
                for xi, yi in zip(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))
            ])

    J = np.empty((len(X), theta0.size))
    for k in range(theta0.size):
        plus, minus = theta0.copy(), theta0.copy()
        plus[k] += step
        minus[k] -= step
        J[:, k] = (losses(plus) - losses(minus)) / (2 * step)
    return J
