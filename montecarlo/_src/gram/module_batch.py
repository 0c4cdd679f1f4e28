r"""Per-example gradient Gram blocks of a torch module for a batch of parameter draws (one per chain).

For chains ``c = 1 .. C``, each with its own parameters ``theta_c`` (drawn,
not the module's own) and its own examples ``(x_ci, y_ci)``, ``i = 1 .. N``,
the Gram of chain ``c`` is ``G_c[i, j] = <grad l(f(x_ci; theta_c), y_ci),
grad l(f(x_cj; theta_c), y_cj)>`` (gradients with respect to ``theta_c``,
``l`` one of ``draw.elementwise.LOSSES`` of the module's single output), and
block ``b`` keeps the parameters of one owning module.  The per-example
gradients ``J_c`` (``N x P``) come from ``torch.func``: ``grad`` of one
example's loss through ``functional_call``, ``vmap``-ed over the examples and
again over the chains; ``G_c = sum_b J_cb J_cb^T``.  Exact (autograd),
materialising ``C N P`` numbers a chunk of chains at a time.

Every example is evaluated on its own (a batch of one), so the module must
not couple examples: batch norm in training mode is refused by the caller
(``trials.module``), which evaluates the module in ``eval()`` mode.
"""

from __future__ import annotations

import torch

from ..draw.elementwise import loss_value

MEMORY_PER_CHUNK = 128 * 2**20  # bytes of per-example gradients held at once


def module_gram_blocks(module, params: dict, buffers: dict, X, y, loss: str, groups) -> torch.Tensor:
    """The Gram blocks ``(C, L, N, N)`` of ``module`` under the drawn ``params`` (name -> ``(C, *shape)``).

    ``X`` is ``(C, N, *input_shape)``, ``y`` ``(C, N)``; ``groups`` lists, per
    block, the names of the parameters it holds (every name of ``params`` in
    exactly one group).  ``buffers`` are passed to the module unchanged.
    """
    from torch.func import functional_call, grad, vmap

    def example_loss(theta, x, target):
        out = functional_call(module, {**theta, **buffers}, (x[None],))
        if out.numel() != 1:
            raise ValueError(f"the module must give one output per example (a scalar network output g), got "
                             f"{tuple(out.shape[1:])} for one example")
        return loss_value(loss, out.reshape(()), target, torch)

    per_chain = vmap(vmap(grad(example_loss), in_dims=(None, 0, 0)), in_dims=(0, 0, 0))
    C, N = y.shape[0], y.shape[1]
    P = sum(p[0].numel() for p in params.values())
    chunk = max(1, MEMORY_PER_CHUNK // (3 * 8 * N * max(P, 1)))
    out = []
    for start in range(0, C, chunk):
        part = slice(start, min(start + chunk, C))
        J = per_chain({k: v[part] for k, v in params.items()}, X[part], y[part])
        blocks = []
        for names in groups:
            block = 0
            for name in names:
                flat = J[name].reshape(J[name].shape[0], N, -1)
                block = block + flat @ flat.mT
            blocks.append(block)
        out.append(torch.stack(blocks, 1))
        del J
    return torch.cat(out)
