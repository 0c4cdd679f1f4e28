r"""The per-example gradient Gram of any torch ``nn.Module``, without materialising every per-example gradient.

For a per-example loss ``l_i`` of a model with parameters ``theta``, ``G_ij =
<grad l_i, grad l_j>`` splits into one term per parameter tensor.  One forward
and one backward pass capture, for each layer, its input ``a`` and the gradient
``delta`` of the summed loss with respect to its output (which is example
``i``'s own ``d l_i / d out_i`` when examples do not interact), and each layer
type turns the pair into its block of ``G``:

* ``nn.Linear`` (inputs ``N x ... x n``, positions ``t`` over the middle axes):
  ``G_ij = <Delta_i Delta_j^T, A_i A_j^T>`` over positions, which is
  ``(Delta Delta^T) o (A A^T)`` for 2-d inputs; the bias adds
  ``<sum_t delta_it, sum_s delta_js>``.
* ``nn.Conv2d`` (``groups = 1``, zero padding): with ``U_i`` the unfolded input
  patches (``P x C_in k^2``) and ``Delta_i`` (``P x C_out``), the per-example weight
  gradient is ``Delta_i^T U_i``.  Per layer the cheaper of two exact forms is
  used, by FLOP count: the spatial form ``<Delta_i Delta_j^T, U_i U_j^T>``
  (``~ N^2 P^2 (C_out + C_in k^2)``), or materialising that one layer's
  per-example gradients, contracting them and freeing them
  (``~ N P C_out C_in k^2 + N^2 C_out C_in k^2``), a group of output channels at a
  time so that at most 64 MiB of them exist at once.  Bias: ``sum_p delta_ip``.
* ``nn.BatchNorm1d/2d`` affine parameters: per-example ``d gamma = sum_p delta o xhat``
  and ``d beta = sum_p delta`` (``C`` numbers each) are formed and contracted.
* any other module with parameters of its own: per-example gradients of those
  parameters by ``torch.func.vmap(grad)`` over chunks of examples, contracted
  chunk by chunk.

Batch norm in training mode couples the examples of a batch through its
statistics, so a per-example gradient is not defined by the batch loss alone.
``batchnorm="batch"`` defines it with the batch's statistics held fixed
(each example normalised by the batch mean and variance, treated as
constants); ``batchnorm="eval"`` (the default) uses the running statistics,
as the model does in ``eval()`` mode.  Either way the module is evaluated as a
per-example function and the result is exact for that function.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import validation

FACTORISED = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)
BATCHNORM_MODES = ("eval", "batch")
CONV_FORMS = ("auto", "spatial", "materialise")
MATERIALISE_BYTES = 64 * 2**20  # per-example gradients of one conv layer held at once, at most


@dataclass(frozen=True)
class ModuleGram:
    """``G`` (``N x N``) and, by module name, each module's block (its own parameters)."""

    G: np.ndarray
    blocks: dict
    methods: dict

    @property
    def N(self) -> int:
        return self.G.shape[0]


def _own_parameters(module: nn.Module) -> list:
    return [p for p in module.parameters(recurse=False) if p.requires_grad]


def _conv_supported(module: nn.Conv2d) -> bool:
    return module.groups == 1 and module.padding_mode == "zeros" and isinstance(module.padding, tuple)


def conv_form(module: nn.Conv2d, N: int, positions: int) -> str:
    """The cheaper exact form of a Conv2d block by FLOP count: "spatial" or "materialise"."""
    k = module.in_channels * int(np.prod(module.kernel_size))
    spatial = N * N * positions * positions * (module.out_channels + k)
    materialise = N * positions * module.out_channels * k + N * N * module.out_channels * k
    return "spatial" if spatial < materialise else "materialise"


def _linear_block(module, calls):
    """Gram block of ``nn.Linear`` from its inputs ``a`` and output gradients ``delta`` (exact).

    Several calls of a shared layer, like extra input axes, are positions ``t``.
    """
    N = calls[0][0].shape[0]
    a = torch.cat([a.reshape(N, -1, a.shape[-1]) for a, _ in calls], dim=1)
    delta = torch.cat([d.reshape(N, -1, d.shape[-1]) for _, d in calls], dim=1)
    if a.shape[1] == 1:
        a2, d2 = a[:, 0], delta[:, 0]
        block = (d2 @ d2.T) * (a2 @ a2.T)
        bias = d2 @ d2.T
    else:  # <Delta_i Delta_j^T, A_i A_j^T> summed over positions
        block = torch.einsum("itc,jsc,itk,jsk->ij", delta, delta, a, a)
        summed = delta.sum(1)
        bias = summed @ summed.T
    return block + bias if module.bias is not None and module.bias.requires_grad else block


def _conv_block(module, calls, form, chunk_size):
    """Gram block of ``nn.Conv2d`` (exact), by the spatial form or by materialising this layer's gradients.

    The unfolded patches ``U`` (``N x C_in k^2 x P``) are the largest arrays, so
    they are built ``chunk_size`` examples at a time.
    """
    N = calls[0][0].shape[0]
    k = module.in_channels * int(np.prod(module.kernel_size))

    def unfold(index):  # (chunk x C_in k^2 x P), (chunk x C_out x P) over every call of the layer
        U = torch.cat([F.unfold(a[index], module.kernel_size, dilation=module.dilation, padding=module.padding,
                                stride=module.stride) for a, _ in calls], dim=-1)
        D = torch.cat([d[index].reshape(len(d[index]), module.out_channels, -1) for _, d in calls], dim=-1)
        return U, D

    chunks = [slice(start, start + chunk_size) for start in range(0, N, chunk_size)]
    positions = sum(d[0].numel() // module.out_channels for _, d in calls)
    if form == "auto":
        form = conv_form(module, N, positions)
    if form == "spatial":
        block = torch.empty((N, N), dtype=calls[0][0].dtype, device=calls[0][0].device)
        unfolded = [unfold(chunk) for chunk in chunks] if len(chunks) > 1 else None
        for a_index, first in enumerate(chunks):
            Ua, Da = unfold(first) if unfolded is None else unfolded[a_index]
            for b_index, second in enumerate(chunks):
                Ub, Db = (Ua, Da) if unfolded is None else unfolded[b_index]
                block[first, second] = torch.einsum("icp,jcq,ikp,jkq->ij", Da, Db, Ua, Ub)
    else:
        # Per-example gradients of a group of output channels at a time (at most MATERIALISE_BYTES), contracted
        # and freed before the next group.
        itemsize = calls[0][0].element_size()
        group = max(1, min(module.out_channels, MATERIALISE_BYTES // (N * k * itemsize)))
        block = 0
        for c0 in range(0, module.out_channels, group):
            channels = slice(c0, min(c0 + group, module.out_channels))
            per_example = torch.empty((N, channels.stop - c0, k), dtype=calls[0][0].dtype, device=calls[0][0].device)
            for chunk in chunks:
                U, D = unfold(chunk)
                per_example[chunk] = torch.einsum("icp,ikp->ick", D[:, channels], U)
            flat = per_example.reshape(N, -1)
            block = block + flat @ flat.T
            del per_example, flat
    if module.bias is not None and module.bias.requires_grad:
        summed = torch.cat([d.reshape(N, module.out_channels, -1) for _, d in calls], dim=-1).sum(-1)
        block = block + summed @ summed.T
    return block, form


def _batchnorm_block(module, calls):
    """Gram block of a batch norm's affine parameters: per-example ``d gamma``, ``d beta`` (C numbers each)."""
    per_example = 0
    for a, delta in calls:
        shape = (1, -1) + (1,) * (a.dim() - 2)
        xhat = (a - module.running_mean.reshape(shape)) / torch.sqrt(module.running_var.reshape(shape) + module.eps)
        N = a.shape[0]
        parts = []
        if module.weight is not None and module.weight.requires_grad:
            parts.append((delta * xhat).reshape(N, module.num_features, -1).sum(-1))
        if module.bias is not None and module.bias.requires_grad:
            parts.append(delta.reshape(N, module.num_features, -1).sum(-1))
        per_example = per_example + torch.cat(parts, dim=1)
    return per_example @ per_example.T


def _block(module, calls, conv, chunk_size):
    """``(block, method)`` of one factorised layer from its ``(input, output gradient)`` calls."""
    if isinstance(module, nn.Linear):
        return _linear_block(module, calls), "linear"
    if isinstance(module, nn.Conv2d):
        block, form = _conv_block(module, calls, conv, chunk_size)
        return block, f"conv:{form}"
    return _batchnorm_block(module, calls), "batchnorm"


@contextlib.contextmanager
def _per_example_batchnorm(model, inputs, mode):
    """Evaluate batch norms per example: with their running statistics, or with this batch's held fixed."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    clone = lambda t: None if t is None else t.clone()  # noqa: E731
    saved = [(m, m.training, clone(m.running_mean), clone(m.running_var), clone(m.num_batches_tracked))
             for m in norms]
    try:
        if mode == "eval":
            missing = [m for m in norms if m.running_mean is None]
            if missing:
                raise ValueError("a batch norm without running statistics couples the examples of a batch even in "
                                 "eval mode; use batchnorm='batch' (batch statistics held fixed)")
        elif norms:
            captured = {}
            handles = [m.register_forward_pre_hook(
                lambda mod, args, captured=captured: captured.__setitem__(mod, args[0].detach())) for m in norms]
            was_training = model.training
            model.train()
            try:
                with torch.no_grad():
                    model(inputs)
            finally:
                model.train(was_training)
                for handle in handles:
                    handle.remove()
            for m in norms:
                x = captured[m]
                dims = [0] + list(range(2, x.dim()))
                m.running_mean, m.running_var = x.mean(dims), x.var(dims, unbiased=False)
        for m in norms:
            m.eval()
        yield norms
    finally:
        for m, training, mean, var, count in saved:
            m.train(training)
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count


def _fallback_block(model, module_name, loss_fn, inputs, targets, chunk_size):
    """Gram block of one module's own parameters by ``vmap(grad)`` over chunks of examples."""
    from torch.func import functional_call, grad, vmap

    params = dict(model.named_parameters())
    own = {name: p for name, p in params.items() if name.rpartition(".")[0] == module_name and p.requires_grad}
    others = {name: p.detach() for name, p in params.items() if name not in own}
    buffers = dict(model.named_buffers())

    def example_loss(own_params, x, target):
        out = functional_call(model, {**others, **own_params, **buffers}, (x[None],))
        return loss_fn(out, target[None]).sum()

    detached = {k: v.detach() for k, v in own.items()}
    per_example = []
    for start in range(0, inputs.shape[0], chunk_size):
        chunk = vmap(grad(example_loss), in_dims=(None, 0, 0))(detached, inputs[start:start + chunk_size],
                                                               targets[start:start + chunk_size])
        per_example.append(torch.cat([g.reshape(g.shape[0], -1) for g in chunk.values()], dim=1))
    J = torch.cat(per_example)
    return J @ J.T


def module_gram(model: nn.Module, loss_fn, inputs, targets, *, batchnorm: str = "eval", conv: str = "auto",
                chunk_size: int = 32) -> ModuleGram:
    """Exact per-example gradient Gram of ``model`` under a per-example loss.

    Parameters
    ----------
    model : nn.Module
        Evaluated as it is (its dtype and device); parameters with
        ``requires_grad=False`` are left out.
    loss_fn : callable
        ``loss_fn(outputs, targets)`` returning one loss per example (shape
        ``(N,)``), e.g. ``nn.CrossEntropyLoss(reduction="none")``.
    inputs, targets : tensors with ``N >= 2`` examples along the first axis.
    batchnorm : "eval" (running statistics) or "batch" (this batch's statistics, held fixed).
    conv : "auto" (cheaper form per layer), "spatial" or "materialise" for every Conv2d.
    chunk_size : examples per chunk of unfolded convolution patches and of the ``vmap`` fallback.

    Returns
    -------
    ModuleGram with ``G`` (numpy ``N x N``, the model's dtype), ``blocks``
    (module name -> its block) and ``methods`` (module name -> how its block
    was computed: "linear", "conv:spatial", "conv:materialise", "batchnorm",
    "vmap").  The model's training flag and batch-norm statistics are restored.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"argument 'model' must be a torch.nn.Module, got {type(model).__name__}")
    validation.choice("batchnorm", batchnorm, BATCHNORM_MODES)
    validation.choice("conv", conv, CONV_FORMS)
    chunk_size = validation.integer("chunk_size", chunk_size, minimum=1)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 2:
        raise ValueError("argument 'inputs' must be a tensor with N >= 2 examples along its first axis")
    if not torch.all(torch.isfinite(inputs)):
        raise ValueError("argument 'inputs' must be finite")
    if len(targets) != inputs.shape[0]:
        raise ValueError(f"argument 'targets' must have one entry per example (N = {inputs.shape[0]}), got {len(targets)}")
    named = [(name, m) for name, m in model.named_modules() if _own_parameters(m)]
    if not named:
        raise ValueError("the model has no parameters that require gradients")
    factorised = {name: m for name, m in named if isinstance(m, FACTORISED)
                  and not (isinstance(m, nn.Conv2d) and not _conv_supported(m))}
    fallback = [name for name, _ in named if name not in factorised]

    with _per_example_batchnorm(model, inputs, batchnorm):
        # Each layer's block is computed inside the backward pass, as soon as the gradients of all its
        # calls are known, and its output gradients are dropped then: memory stays near one backward pass.
        calls: dict = {name: [] for name in factorised}
        blocks, methods = {}, {}

        def on_output_gradient(name, index, grad):
            calls[name][index][1] = grad.detach()
            if all(delta is not None for _, delta in calls[name]):
                with torch.no_grad():
                    blocks[name], methods[name] = _block(factorised[name], [tuple(c) for c in calls[name]], conv,
                                                         chunk_size)
                calls[name] = []

        def on_forward(module, args, out, name):
            calls[name].append([args[0].detach(), None])
            if out.requires_grad:
                index = len(calls[name]) - 1
                out.register_hook(lambda grad: on_output_gradient(name, index, grad))

        handles = [m.register_forward_hook(lambda mod, args, out, name=name: on_forward(mod, args, out, name))
                   for name, m in factorised.items()]
        try:
            with torch.enable_grad():
                losses = loss_fn(model(inputs), targets)
                if losses.shape != (inputs.shape[0],):
                    raise ValueError(f"loss_fn must return one loss per example, shape ({inputs.shape[0]},); "
                                     f"got {tuple(losses.shape)} (use reduction='none')")
                # Every layer's output lies between its own parameters and the loss, so asking for the
                # parameters' gradients (P numbers, discarded) runs every hook.
                params = [p for _, m in named for p in _own_parameters(m)]
                torch.autograd.grad(losses.sum(), params, allow_unused=True)
        finally:
            for handle in handles:
                handle.remove()
        for name in factorised:
            if name not in blocks:  # the layer does not reach the loss: its parameters' gradients vanish
                blocks[name] = torch.zeros((inputs.shape[0],) * 2, dtype=losses.dtype, device=losses.device)
                methods[name] = "unused"
        if fallback:
            # functional_call on a copy: on models with tied weights it can leave the swapped-in
            # tensors behind (torch 2.13), which must not happen to the caller's model.
            functional_model = copy.deepcopy(model)
        for name in fallback:
            blocks[name] = _fallback_block(functional_model, name, loss_fn, inputs, targets, chunk_size).detach()
            methods[name] = "vmap"
    numpy_blocks = {name: block.detach().cpu().numpy() for name, block in blocks.items()}
    return ModuleGram(G=sum(numpy_blocks.values()), blocks=numpy_blocks, methods=methods)
