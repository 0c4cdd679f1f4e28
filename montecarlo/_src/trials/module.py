r"""``ModuleTrial``: a trial of any torch module -- parameters drawn from declared laws, data on the sphere.

A trial draws every parameter of the module, in ``named_parameters()``
order, from its :class:`ParameterLaw` (built from the trial's standard
normals, so replaying them replays the trial), then ``N`` points uniform on
``S^{d-1}`` (``d`` the product of the input shape, reshaped to it), then
their labels; its Gram blocks -- one per module that owns parameters -- come
from ``gram.module_batch`` (exact, by ``torch.func``, batched over trials).

Laws: a parameter named in ``laws`` (exact name, or an ``fnmatch`` pattern
such as ``"*.weight"``) follows the law given there -- a
:class:`ParameterLaw` (``ParameterLaw.gaussian``, ``.uniform``,
``.orthogonal``, ``.constant``) or a callable ``f(z)`` that maps
standard normals ``z`` of shape ``(count, *parameter.shape)`` to the
parameter.  Every other parameter follows torch's default initialisation of
its module, written as a law of normals:

* ``nn.Linear``, ``nn.Conv1d/2d/3d``: weight and bias uniform on
  ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` (``kaiming_uniform_(a=sqrt(5))``
  gives that bound for the weight, ``fan_in = in_channels / groups * kernel
  size``), drawn as ``b (2 Phi(z) - 1)``;
* ``nn.LayerNorm``, ``nn.BatchNorm*``, ``nn.GroupNorm``: weight 1, bias 0;
* ``nn.Embedding``: ``N(0, 1)``.

A parameter of any other module needs a law in ``laws``.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import validation
from ..draw.data import make_labels, sample_sphere
from ..draw.elementwise import LOSSES
from ..draw.network import haar_semi_orthogonal
from .base import Trial, TrialDraw


@dataclass(frozen=True)
class ParameterLaw:
    """How one parameter tensor is drawn: ``draw(source, count, shape)`` -> ``(count, *shape)`` from standard normals.

    ``name`` describes the law in a trial's config (``"uniform(0.25)"``).  The
    laws of torch's initialisers are built by :meth:`gaussian`,
    :meth:`uniform`, :meth:`orthogonal` and :meth:`constant`.
    """

    name: str
    draw: Callable

    def __repr__(self) -> str:
        return self.name

    @staticmethod
    def gaussian(std: float) -> "ParameterLaw":
        """Entries ``N(0, std^2)``: ``std z``."""
        std = validation.nonnegative_real("std", std)
        return ParameterLaw(f"gaussian({std:g})",
                            lambda source, count, shape: source.scaled_normal((count, *shape), std))

    @staticmethod
    def uniform(bound: float) -> "ParameterLaw":
        """Entries uniform on ``[-bound, bound]``: ``bound (2 Phi(z) - 1)`` with ``Phi`` the normal CDF."""
        bound = validation.nonnegative_real("bound", bound)

        def draw(source, count, shape):
            z = source.normal((count, *shape))
            if source.xp is np:
                from scipy.special import ndtr

                return bound * (2 * ndtr(z) - 1)
            return bound * (2 * source.xp.special.ndtr(z) - 1)

        return ParameterLaw(f"uniform({bound:g})", draw)

    @staticmethod
    def constant(value: float) -> "ParameterLaw":
        """Every entry ``value`` (draws no normals)."""
        value = float(value)

        def draw(source, count, shape):
            return source.zeros((count, *shape)) + value

        return ParameterLaw(f"constant({value:g})", draw)

    @staticmethod
    def orthogonal(gain: float = 1.0) -> "ParameterLaw":
        """``gain`` times a Haar (semi-)orthogonal matrix of shape ``(out, prod(rest))``, reshaped (torch's
        ``orthogonal_`` law, drawn exactly: ``draw.network.haar_semi_orthogonal``)."""
        gain = validation.positive_real("gain", gain)

        def draw(source, count, shape):
            if len(shape) < 2:
                raise ValueError(f"an orthogonal law needs a parameter of at least 2 dimensions, got shape {shape}")
            flat = haar_semi_orthogonal(source, (count, shape[0], math.prod(shape[1:])))
            return gain * flat.reshape((count, *shape))

        return ParameterLaw(f"orthogonal({gain:g})", draw)


def _from_callable(function, name: str) -> ParameterLaw:
    def draw(source, count, shape):
        out = function(source.normal((count, *shape)))
        if tuple(out.shape) != (count, *shape):
            raise ValueError(f"the law of parameter {name!r} must map normals of shape {(count, *shape)} to the same "
                             f"shape, got {tuple(out.shape)}")
        return out

    return ParameterLaw(getattr(function, "__name__", "callable"), draw)


def torch_default_law(module, parameter: str) -> ParameterLaw | None:
    """Torch's default initialisation of ``module``'s own parameter ``parameter`` as a law (module docstring)."""
    from torch import nn

    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        fan_in = module.weight[0].numel()
        return ParameterLaw.uniform(1 / math.sqrt(fan_in)) if fan_in > 0 else ParameterLaw.constant(0.0)
    norms = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)
    if isinstance(module, norms):
        return ParameterLaw.constant(1.0 if parameter == "weight" else 0.0)
    if isinstance(module, nn.Embedding):
        return ParameterLaw.gaussian(1.0)
    return None


class ModuleTrial(Trial):
    """A trial of a torch module: its parameters drawn from laws, ``N`` sphere points reshaped to its input, labels.

    Parameters
    ----------
    module : torch.nn.Module, or a callable returning one
        Evaluated per example in ``eval()`` mode on a copy (its own
        parameter values are never used: every trial draws them; buffers
        such as batch-norm running statistics are used as they are).  It
        must give one output per example (the network output ``g``).
    n_samples : int >= 2
        ``N``, examples per trial.
    labels : "linear", "tanh", "random_sign" or a callable ``labels(X, source)``
        Of the flattened inputs ``X`` (``count x N x d``), as for ``MLPTrial``.
    loss : "square", "logistic" or "output"
        ``l(g, y)`` per example (``draw.elementwise.LOSSES``).
    input_shape : tuple of int, optional
        The shape of one example; by default ``(in_features,)`` when the
        first module with parameters is an ``nn.Linear``.  Data are uniform on ``S^{d-1}``, ``d = prod(input_shape)``.
    laws : dict, optional
        Parameter name or ``fnmatch`` pattern -> :class:`ParameterLaw` or a
        callable ``f(z)`` of standard normals ``(count, *shape)``; every other
        parameter follows torch's default law for its module (module docstring).
    dtype : "float64" or "float32"
    device : torch device (default CPU); the normals are drawn by numpy and moved there.
    data : optional pair ``(X, y)`` (``N x d`` and ``N``) used by every trial.
    """

    def __init__(self, module, n_samples, *, labels, loss, input_shape=None, laws=None, dtype="float64",
                 device=None, data=None):
        import torch
        from torch import nn

        if not isinstance(module, nn.Module) and callable(module):
            module = module()
        if not isinstance(module, nn.Module):
            raise TypeError(f"argument 'module' must be a torch.nn.Module or a callable returning one, got "
                            f"{type(module).__name__}")
        self.n_samples = validation.integer("n_samples", n_samples, minimum=2)
        self.loss = validation.choice("loss", loss, LOSSES)
        self.dtype = validation.dtype("dtype", dtype)
        self.labels = make_labels(labels)
        self.device = torch.device("cpu" if device is None else device)
        torch_dtype = torch.float64 if self.dtype == np.float64 else torch.float32
        self.module = copy.deepcopy(module).to(dtype=torch_dtype, device=self.device).eval()
        self.torch_dtype = torch_dtype
        if input_shape is None:
            first = next((m for m in self.module.modules() if list(m.parameters(recurse=False))), None)
            if not isinstance(first, nn.Linear):
                raise ValueError(f"argument 'input_shape' is needed: the module's first layer is a "
                                 f"{type(first).__name__}, not an nn.Linear whose in_features would give it")
            input_shape = (first.in_features,)
        if not isinstance(input_shape, (tuple, list)) or not input_shape:
            raise ValueError(f"argument 'input_shape' must be a non-empty tuple of positive integers, got "
                             f"{input_shape!r}")
        self.input_shape = tuple(validation.integer("input_shape", n, minimum=1) for n in input_shape)
        self.input_dim = math.prod(self.input_shape)
        if self.input_dim < 2:
            raise ValueError(f"argument 'input_shape' must give d >= 2 inputs (data on S^(d-1)), got {input_shape}")
        self.names = [name for name, p in self.module.named_parameters() if p.requires_grad]
        if not self.names:
            raise ValueError("argument 'module' has no parameters that require gradients")
        self.laws = self._laws(laws or {})
        owners = {}
        for name in self.names:
            owners.setdefault(name.rpartition(".")[0], []).append(name)
        self.groups = list(owners.values())
        self._block_names = tuple(owner or "(root)" for owner in owners)
        self.shapes = {name: tuple(p.shape) for name, p in self.module.named_parameters() if name in self.names}
        self.buffers = dict(self.module.named_buffers())
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is None
               for m in self.module.modules()):
            raise ValueError("argument 'module' has a batch norm without running statistics: evaluated per example "
                             "it would couple nothing and normalise by one example; use track_running_stats=True")
        self.data = None
        if data is not None:
            from .mlp import check_data

            self.data = check_data(data, self.n_samples, self.input_dim)

    def _laws(self, given: dict) -> dict:
        if not isinstance(given, dict):
            raise TypeError(f"argument 'laws' must be a dict of parameter name (or pattern) -> law, got "
                            f"{type(given).__name__}")
        modules = dict(self.module.named_modules())
        unknown = [key for key in given if not any(fnmatch.fnmatchcase(n, key) for n in self.names)]
        if unknown:
            raise ValueError(f"argument 'laws' names {unknown}, which match no parameter of the module "
                             f"({', '.join(self.names)})")
        laws = {}
        for name in self.names:
            key = name if name in given else next((k for k in given if fnmatch.fnmatchcase(name, k)), None)
            if key is not None:
                law = given[key]
                if not isinstance(law, ParameterLaw):
                    if not callable(law):
                        raise TypeError(f"argument 'laws[{key!r}]' must be a ParameterLaw or a callable f(z), got "
                                        f"{law!r}")
                    law = _from_callable(law, name)
                laws[name] = law
                continue
            owner, _, own = name.rpartition(".")
            law = torch_default_law(modules[owner], own)
            if law is None:
                raise ValueError(f"parameter {name!r} of a {type(modules[owner]).__name__} has no default law: give "
                                 f"one in argument 'laws' (a ParameterLaw or a callable of standard normals)")
            laws[name] = law
        return laws

    def config(self) -> dict:
        return {"module": type(self.module).__name__, "architecture": repr(self.module),
                "input_shape": list(self.input_shape), "n_samples": self.n_samples,
                "labels": getattr(self.labels, "name", repr(self.labels)), "loss": self.loss,
                "dtype": self.dtype.name, "laws": {name: law.name for name, law in self.laws.items()}}

    def meta(self) -> dict:
        return {"backend": "torch.func", "device": str(self.device),
                "parameters": int(sum(math.prod(s) for s in self.shapes.values())),
                "blocks": list(self._block_names)}

    def block_names(self) -> tuple:
        return self._block_names

    def draw(self, source, count: int) -> TrialDraw:
        params = {name: self.laws[name].draw(source, count, self.shapes[name]) for name in self.names}
        if self.data is not None:
            return TrialDraw(params, *self.data)
        X = sample_sphere(self.n_samples, self.input_dim, source, batch=count)
        return TrialDraw(params, X, self.labels(X, source))

    def _tensor(self, array):
        import torch

        if isinstance(array, torch.Tensor):
            return array.to(dtype=self.torch_dtype, device=self.device)
        return torch.as_tensor(np.asarray(array), dtype=self.torch_dtype, device=self.device)

    def blocks(self, draw: TrialDraw) -> np.ndarray:
        from ..gram.module_batch import module_gram_blocks

        params = {name: self._tensor(value) for name, value in draw.network.items()}
        count = next(iter(params.values())).shape[0]
        X = self._tensor(draw.X)
        y = self._tensor(draw.y)
        if X.dim() == 2:  # fixed data, shared by every trial
            X, y = X.expand(count, *X.shape), y.expand(count, *y.shape)
        X = X.reshape(count, self.n_samples, *self.input_shape)
        blocks = module_gram_blocks(self.module, params, self.buffers, X, y, self.loss, self.groups)
        return blocks.detach().cpu().numpy()

    def _bytes_per_trial(self) -> int:
        """Draws, data, labels and Gram blocks of one trial, float64, twice (drawn, then as tensors)."""
        P = sum(math.prod(s) for s in self.shapes.values())
        N, L = self.n_samples, len(self.groups)
        return 2 * 8 * (P + N * self.input_dim + N + L * N * N)

    def peak_bytes(self, batch_trials: int) -> int:
        from ..gram.module_batch import MEMORY_PER_CHUNK

        return int(batch_trials * self._bytes_per_trial() + MEMORY_PER_CHUNK)  # + one chunk of per-example gradients
