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
from . import memory

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
                raise ValueError(f"argument 'batchnorm' = 'eval' uses running statistics, but {len(missing)} batch "
                                 f"norm(s) of 'model' have none (track_running_stats=False), which couples the "
                                 f"examples of a batch even in eval mode; use batchnorm='batch' (batch statistics "
                                 f"held fixed)")
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


def _check_arguments(model, loss_fn, inputs, targets) -> None:
    """The kinds and sizes of ``module_gram``'s arguments, each refusal naming the argument."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"argument 'model' must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"argument 'loss_fn' must be callable as loss_fn(outputs, targets) -> one loss per example "
                        f"(e.g. nn.CrossEntropyLoss(reduction='none')), got {type(loss_fn).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 2:
        shown = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"argument 'inputs' must be a torch tensor with N >= 2 examples along its first axis, "
                         f"got {shown}")
    if not torch.all(torch.isfinite(inputs)):
        raise ValueError("argument 'inputs' must be finite")
    if not isinstance(targets, torch.Tensor) or targets.dim() < 1:
        shown = f"a tensor of shape {tuple(targets.shape)}" if isinstance(targets, torch.Tensor) else \
            type(targets).__name__
        raise TypeError(f"argument 'targets' must be a torch tensor with one entry per example along its first "
                        f"axis (N = {inputs.shape[0]}), got {shown}")
    if targets.shape[0] != inputs.shape[0]:
        raise ValueError(f"argument 'targets' must have one entry per example of 'inputs' (N = {inputs.shape[0]}), "
                         f"got {targets.shape[0]}")


@dataclass(frozen=True)
class _Probe:
    """What forward passes on one or two and on two or four examples say about the whole batch: parameters,
    numbers autograd keeps per example for the backward pass (the difference of the two, so that the
    parameters it keeps cancel), and each convolution's input and output shapes (one example)."""

    parameters: int
    saved_per_example: int
    conv_shapes: dict


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _quiet_probe(model, inputs):
    """Batch norms in eval mode (no running statistic moves) and the torch random state untouched (dropout)."""
    norms = [(m, m.training) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    devices = [inputs.device.index or 0] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            for m, _ in norms:
                m.eval()
            yield
        finally:
            for m, training in norms:
                m.train(training)


def _saved_numbers(model, loss_fn, inputs, targets, conv_shapes: dict | None = None) -> int:
    """Numbers autograd keeps for the backward pass of ``loss_fn(model(inputs), targets)`` (each tensor once),
    refusing inputs, targets and losses that do not fit, naming the argument."""
    saved = {}

    def pack(tensor):
        if tensor.is_meta:
            key = id(tensor)
        else:
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        saved[key] = tensor.numel()
        return tensor

    def on_conv(module, args, out):
        conv_shapes.setdefault(module, []).append((tuple(args[0].shape[1:]), tuple(out.shape[1:])))

    handles = [] if conv_shapes is None else \
        [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            try:
                outputs = model(inputs)
            except (RuntimeError, TypeError, ValueError, IndexError) as error:
                raise ValueError(f"argument 'inputs' of examples of shape {tuple(inputs.shape[1:])} ({inputs.dtype} "
                                 f"on {inputs.device}) does not fit 'model' ({type(model).__name__}): its forward "
                                 f"pass on {len(inputs)} of them fails with {type(error).__name__}: "
                                 f"{_first_line(error)}") from None
            try:
                losses = loss_fn(outputs, targets)
            except (RuntimeError, TypeError, ValueError, IndexError) as error:
                shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
                raise ValueError(f"argument 'loss_fn' fails on the model's outputs (shape {shape} for "
                                 f"{len(inputs)} examples) and 'targets' (shape {tuple(targets.shape)}, "
                                 f"{targets.dtype}): {type(error).__name__}: {_first_line(error)}") from None
    finally:
        for handle in handles:
            handle.remove()
    _check_losses(losses, len(inputs), f" for the first {len(inputs)} examples")
    return sum(saved.values())


def probe(model, loss_fn, inputs, targets) -> _Probe:
    """Run ``model`` and ``loss_fn`` on the first few examples (one and two, or two and four), batch norms in eval
    mode and the torch random state kept; on torch's meta device for an estimate without memory."""
    small, large = (2, 4) if len(inputs) >= 4 else (1, 2)
    conv_shapes: dict = {}
    with _quiet_probe(model, inputs):
        first = _saved_numbers(model, loss_fn, inputs[:small], targets[:small])
        second = _saved_numbers(model, loss_fn, inputs[:large], targets[:large], conv_shapes)
    per_example = -(-max(0, second - first) // (large - small))
    return _Probe(sum(p.numel() for p in model.parameters() if p.requires_grad), per_example, conv_shapes)


def peak_bytes(model, loss_fn, inputs, targets, *, conv: str = "auto", chunk_size: int = 32) -> tuple[int, str]:
    """Estimated peak bytes of ``module_gram(model, loss_fn, inputs, targets, ...)`` and what sizes it, in words.

    From :func:`probe` and ``gram.memory.module_gram_bytes``.  Runs on
    torch's meta device too (a model built there, meta inputs of the batch's
    shape): an estimate for a model that does not exist yet.
    """
    named = [(name, m) for name, m in model.named_modules() if _own_parameters(m)]
    if not named:
        raise ValueError("argument 'model' has no parameters that require gradients (module_gram needs at least one)")
    factorised = {name: m for name, m in named if isinstance(m, FACTORISED)
                  and not (isinstance(m, nn.Conv2d) and not _conv_supported(m))}
    fallback = [m for name, m in named if name not in factorised]
    probed = probe(model, loss_fn, inputs, targets)
    N = inputs.shape[0]
    itemsize = _own_parameters(named[0][1])[0].element_size()
    estimate = memory.module_gram_bytes(
        N, itemsize, probed.parameters, probed.saved_per_example, len(named),
        conv=_conv_numbers(factorised, probed, N, conv, chunk_size, itemsize),
        vmap_parameters=sum(p.numel() for m in fallback for p in _own_parameters(m)), chunk_size=chunk_size)
    what = (f"module_gram of {type(model).__name__} ({probed.parameters} parameters, {probed.saved_per_example} "
            f"numbers kept per example for the backward pass) on N = {N} examples")
    return estimate, what


def _check_losses(losses, N: int, what: str = "") -> None:
    """``loss_fn``'s result must be a tensor of ``N`` losses, one per example (``what``: which examples)."""
    if not isinstance(losses, torch.Tensor):
        raise TypeError(f"argument 'loss_fn' must return a tensor of one loss per example, shape ({N},){what}, "
                        f"got {type(losses).__name__}")
    if tuple(losses.shape) != (N,):
        raise ValueError(f"argument 'loss_fn' must return one loss per example, shape ({N},){what}; got "
                         f"{tuple(losses.shape)} (a torch loss needs reduction='none')")


def _conv_numbers(factorised, probed: _Probe, N: int, conv: str, chunk_size: int, itemsize: int) -> int:
    """Numbers the factorised convolutions hold at once at most (``_conv_block``): the spatial form keeps every
    example's unfolded patches and its einsum's ``chunk^2 P^2`` intermediate, the per-example form a chunk's
    patches and its channel group (at most ``MATERIALISE_BYTES``)."""
    largest = 0
    chunk = min(chunk_size, N)
    for module in factorised.values():
        shapes = probed.conv_shapes.get(module)
        if not isinstance(module, nn.Conv2d) or not shapes:
            continue
        k = module.in_channels * int(np.prod(module.kernel_size))
        positions = sum(int(np.prod(out[1:])) for _, out in shapes)
        form = conv_form(module, N, positions) if conv == "auto" else conv
        if form == "spatial":
            numbers = N * (k + module.out_channels) * positions + chunk * chunk * positions * (positions + k)
        else:
            numbers = chunk * (k + module.out_channels) * positions + MATERIALISE_BYTES // itemsize
        largest = max(largest, numbers)
    return largest


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

    Raises
    ------
    TypeError, ValueError
        Bad arguments, each naming the argument and what is accepted.  Before
        the whole batch runs, the model and ``loss_fn`` are run on the first
        two examples (batch norms in eval mode, the torch random state kept):
        ``inputs`` the model cannot take, targets ``loss_fn`` cannot take and
        a ``loss_fn`` that does not return one loss per example are refused
        then, naming the argument; and so is a batch whose estimated peak
        memory (``gram.memory.module_gram_bytes``, from what autograd keeps
        per example in that probe) exceeds the memory available.
    """
    _check_arguments(model, loss_fn, inputs, targets)
    validation.choice("batchnorm", batchnorm, BATCHNORM_MODES)
    validation.choice("conv", conv, CONV_FORMS)
    chunk_size = validation.integer("chunk_size", chunk_size, minimum=1)
    estimate, what = peak_bytes(model, loss_fn, inputs, targets, conv=conv, chunk_size=chunk_size)
    memory.refuse_if_too_large(estimate, f"{what} of 'inputs'", "give fewer examples (the first axis of 'inputs' and "
                               "'targets')", inputs.device)
    named = [(name, m) for name, m in model.named_modules() if _own_parameters(m)]
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
                outputs = model(inputs)
                try:
                    losses = loss_fn(outputs, targets)
                except (RuntimeError, TypeError, ValueError, IndexError) as error:
                    raise ValueError(f"argument 'loss_fn' fails on the model's outputs (shape "
                                     f"{tuple(outputs.shape)}) and 'targets' (shape {tuple(targets.shape)}, "
                                     f"{targets.dtype}): {type(error).__name__}: {_first_line(error)}") from None
                _check_losses(losses, inputs.shape[0])
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
