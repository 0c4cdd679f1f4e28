"""Peak memory of every computation an entry point starts, estimated before anything is allocated, and the refusal.

One home for the byte counts, so that every entry refuses what cannot fit
the same way: ``gradient_gram``, ``module_gram``, ``sample_confusion``,
``sample_grams``, ``rare_tail``, ``train_run``, sweeps and the command line
gather their sizes (a network's shapes, trials, examples, a population) and
ask the functions here; :func:`refuse_if_too_large` compares the estimate
with the memory available (``validation.available_memory``: ``MemAvailable``
of ``/proc/meminfo`` under a container's limit, or a set limit) and raises a
``ValueError`` that names the arguments to lower, the estimate and the memory
available.

The estimates count the arrays each computation allocates, phase by phase
(drawing, the forward and backward pass, the Gram blocks, their statistics,
the results kept), in bytes: within one computation the largest phase, and
the sum of what follows one another in a run (a batch, the reduction of its
Grams, the results kept), which is at most twice the larger.  They are
estimates for refusing what cannot fit, not measurements: tests hold them
within a factor 2 of the peak measured on small configurations (numpy's
arrays by ``tracemalloc``, torch's by the process's peak resident size).
Each function says what it counts.
"""

from __future__ import annotations

import math

from .. import validation

FLOAT64 = 8

__all__ = ["refuse_if_too_large", "factorised_numbers", "mlp_gram_bytes", "mlp_batch_bytes", "statistics_bytes",
           "subset_simulation_bytes", "module_gram_bytes", "training_bytes"]


def refuse_if_too_large(estimate: int, what: str, lower: str, device=None) -> None:
    """Raise ``ValueError`` before anything is allocated when ``estimate`` bytes exceed the memory available.

    Parameters
    ----------
    estimate : int
        Estimated peak bytes.
    what : str
        The computation and the arguments that size it (``"'trials' = 10**9 trials of ..."``).
    lower : str
        What to do about it, naming the arguments to lower (``"lower 'trials'"``).
    device : torch device, optional
        A CUDA device is checked against its own free memory (unless
        ``validation.MEMORY_LIMIT`` is set, which then stands for every device).
    """
    if device is not None and getattr(device, "type", None) == "cuda" and validation.MEMORY_LIMIT is None:
        import torch

        validation.fits_in_memory(estimate, f"{what} on {device}", torch.cuda.mem_get_info(device)[0], lower=lower)
        return
    validation.fits_in_memory(estimate, what, lower=lower)


# --- the paper's network (the factorised Gram of ``factorised.py``, the numba kernel) -------------------------------

def factorised_numbers(net, n_samples: int, modes) -> int:
    """Working numbers of one trial's forward and backward pass and its Gram blocks (``factorised.gram_blocks``),
    besides the stacked blocks themselves (``L N^2``, counted as the output).

    Two phases, the larger counts.  The passes: per layer of shape ``m x n``
    (fan-out, fan-in) its input ``H`` (``N n``), ``s'(z)`` and the backward
    signal ``Delta`` (``2 N m``), for a lazily drawn layer its frame ``U``
    (``n N``) and ``R`` (``N^2``), and the backward step's temporaries through
    the widest fan-in (``2 N n``; about ``4 N n`` through a lazy layer).  The blocks: ``H`` and ``Delta`` of
    every layer (``N (n + m)``), the blocks computed so far and three
    ``N x N`` temporaries of the one being computed, then the list of blocks
    beside their stack: ``max(2, L) N^2`` beyond the stack.
    """
    N = n_samples
    passes = signals = step = 0
    for (m, n), mode in zip(net.layer_shapes, modes):
        frame = n * N + N * N if mode != 0 else 0  # lazy: the frame U and R of the layer input's QR
        passes += N * (n + 2 * m) + frame
        signals += N * (n + m)
        step = max(step, (4 if mode != 0 else 2) * N * n)  # Delta W and s'(z) o ..., more for a lazy layer
    return max(passes + step, signals + max(2, net.n_layers) * N * N)


def mlp_gram_bytes(net, n_samples: int, modes, trials: int, at_once: int, itemsize: int = FLOAT64,
                   blocks_kept: bool = True) -> int:
    """Bytes of computing the Gram blocks of ``trials`` trials of ``net`` whose layers are already drawn.

    ``at_once`` trials are computed together (a whole batch on numpy and
    torch, a thread's trial at a time on numba), each with
    :func:`factorised_numbers` working numbers; the output holds ``trials``
    stacks of ``L = beta + 1`` blocks (one summed block when not
    ``blocks_kept``), in ``itemsize`` bytes.
    """
    blocks = net.n_layers if blocks_kept else 1
    return int(itemsize * (at_once * factorised_numbers(net, n_samples, modes) + trials * blocks * n_samples**2))


def mlp_batch_bytes(net, n_samples: int, modes, drawn: int, batch_trials: int, *, seed_block: int, backend: str,
                    merged: bool, threads: int, itemsize: int = FLOAT64) -> int:
    """Peak bytes of drawing and computing one batch of ``batch_trials`` MLP trials (``Trial.peak_bytes``).

    Two phases, the larger counts:

    * drawing: the batch's ``drawn`` weight normals per trial plus its data and
      labels (``N (d + 1)``), float64, every seed block drawn before any is
      computed, with one transient copy of the largest layer per block drawn
      concurrently (``min(blocks, threads)``); merged blocks (``merged``: one
      call for the batch) are copied together, so they are held twice;
    * computing: the draws, a copy in the working precision when it is not
      float64, and :func:`mlp_gram_bytes` of the trials computed at once (the
      whole batch when merged, else one seed block; numba: at most
      ``threads`` trials), whose blocks (one seed block's when not merged) are
      the output.
    """
    N = n_samples
    per_trial = drawn + N * (net.input_dim + 1) + (sum(m for m, _ in net.layer_shapes) if net.bias else 0)
    blocks = math.ceil(batch_trials / seed_block)
    largest = max(m * n if mode == 0 else (2 * m + n) * N for (m, n), mode in zip(net.layer_shapes, modes))
    draws = FLOAT64 * batch_trials * per_trial
    drawing = draws * (2 if merged else 1) + FLOAT64 * min(blocks, threads) * seed_block * largest
    out_trials = batch_trials if merged else min(batch_trials, seed_block)
    at_once = min(out_trials, threads) if backend == "numba" else out_trials
    cast = 0 if itemsize == FLOAT64 else itemsize * out_trials * per_trial
    computing = draws + cast + mlp_gram_bytes(net, N, modes, out_trials, at_once, itemsize)
    return int(max(drawing, computing))


def statistics_bytes(trials: int, layers: int, n_samples: int) -> int:
    """Bytes of reducing ``trials`` stacks of ``layers`` float64 Gram blocks to their statistics (``gram_statistics``).

    The summed ``G`` (``N^2`` per trial) and the per-layer statistics'
    temporaries, measured at about ``4 L N^2`` per trial (normalised blocks,
    masks, the cosines of every pair).
    """
    return int(FLOAT64 * trials * (1 + 4 * layers) * n_samples**2)


# --- rare tails: subset simulation in the space of a trial's normals ----------------------------------------------

def subset_simulation_bytes(dimension: int, population: int, seeds: int, evaluation: int) -> int:
    """Peak bytes of one repeat of subset simulation with ``population`` members of ``dimension`` normals each.

    A level holds the population (``n D``) and builds the next one (``n D``)
    from the seeds' chains (``m D``) and their proposals (``m D``), float64;
    plus ``evaluation``, the peak of evaluating the statistic on one chunk of
    members (``Trial.peak_bytes`` of the chunk).
    """
    return int(FLOAT64 * dimension * (2 * population + 2 * seeds) + evaluation)


# --- any torch module (``module_gram``) and training ----------------------------------------------------------------

def module_gram_bytes(examples: int, itemsize: int, parameters: int, saved_per_example: int, blocks: int, *,
                      conv: int = 0, vmap_parameters: int = 0, chunk_size: int = 32) -> int:
    """Peak bytes of ``module_gram`` on ``examples`` examples, from a probe of the model on two of them.

    Parameters
    ----------
    examples : int
        ``N``.
    itemsize : int
        Bytes per number of the model's dtype.
    parameters : int
        The model's parameters: their gradients are formed once (``P``).
    saved_per_example : int
        Numbers autograd keeps per example for the backward pass (the
        probe counts them): the forward graph holds ``N`` times as many, and
        the backward pass makes gradients and temporaries of about twice
        that (measured: within 10% of the peak of an MLP and of CNNs with
        and without batch norm).
    blocks : int
        Modules with parameters of their own: one ``N x N`` block each (the
        numpy block shares the torch tensor's memory), ``G``, and three
        ``N x N`` temporaries of the block being computed (``Delta Delta^T``,
        ``A A^T``, their product).
    conv : int
        Numbers the convolutions' blocks hold at once at most (their unfolded patches).
    vmap_parameters : int
        Parameters of the modules computed by ``vmap``: their per-example
        gradients for all examples, twice (chunks, then joined), and a copy of the model.
    chunk_size : int
        Examples per chunk of the ``vmap`` fallback.
    """
    N = examples
    numbers = (parameters + 3 * N * saved_per_example + conv
               + (2 * N + chunk_size) * vmap_parameters + (parameters if vmap_parameters else 0))
    return int(itemsize * (numbers + (blocks + 4) * N * N))


def training_bytes(*, data: int, parameters: int, activations: int, batch: int, probe: int, itemsize: int) -> int:
    """Peak bytes of one training run (``train_run``), besides its probe's ``module_gram``.

    ``data`` numbers of the training and test sets converted to the working
    precision; the parameters, their gradients, the gradients autograd
    returns and the two flattened minibatch gradients of a pair (``5 P``);
    the activations of the largest minibatch or evaluation chunk (``batch``
    examples of ``activations`` numbers kept for the backward pass, and as
    many gradients and temporaries); the probe set's examples.
    """
    numbers = data + 5 * parameters + 3 * batch * activations + probe
    return int(itemsize * numbers)
