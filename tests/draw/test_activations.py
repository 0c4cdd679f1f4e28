"""The activation and loss registries of ``montecarlo`` (``elementwise.REGISTRY``, ``LOSS_REGISTRY``), and the
numba cache guard of its kernel.

Parametrised over the registry, so a declared activation is tested without an
edit here: its derivative against torch.autograd, its function against torch's
own (``autograd_reference.TORCH_ACTIVATIONS``), its numba scalar against the
numpy function.  The Gaussian maps of theory's twin registry are tested in
``tests/engines/test_infinite_width.py``.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import montecarlo as mc
from autograd_reference import TORCH_ACTIVATIONS, example_loss
from montecarlo.testing import cached_kernel, elementwise, numba_kernel

Z = np.concatenate([np.linspace(-8.0, 8.0, 801), [0.0, 1e-12, -1e-12, 30.0, -30.0]])


def test_the_registry_is_the_public_list_and_its_order_gives_the_codes():
    assert mc.ACTIVATIONS == tuple(elementwise.REGISTRY) == elementwise.ACTIVATIONS
    assert elementwise.ACTIVATION_CODE == {name: k for k, name in enumerate(elementwise.REGISTRY)}
    assert numba_kernel.ACTIVATION_CODE is elementwise.ACTIVATION_CODE
    for name in mc.ACTIVATIONS:
        assert mc.MLP(3, 4, 1, activation=name).activation == name


@pytest.mark.parametrize("name", mc.ACTIVATIONS)
def test_derivative_equals_autograd_and_function_equals_torch(name):
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    s, ds = elementwise.REGISTRY[name].with_derivative(z, torch)
    (autograd,) = torch.autograd.grad(s.sum(), z)
    np.testing.assert_allclose(ds.detach().numpy(), autograd.numpy(), rtol=1e-13, atol=1e-15)
    # torch's own function (sigmoid through tanh loses ~1e-13 relative in the left tail)
    np.testing.assert_allclose(s.detach().numpy(), TORCH_ACTIVATIONS[name](z).detach().numpy(), rtol=1e-12,
                               atol=1e-15)
    s_np, ds_np = elementwise.activation_with_derivative(name, Z, np)  # the same formulas (torch's tanh: an ulp off)
    np.testing.assert_allclose(s_np, s.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ds_np, ds.detach().numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", mc.ACTIVATIONS)
def test_numba_scalar_through_activate_equals_the_numpy_function(name, dtype):
    """``elementwise.activate`` with the activation's code (what the numba kernel runs) against numpy, in place."""
    z = Z.astype(dtype).reshape(-1, 2)  # 2-d, as in the kernel
    s, ds = elementwise.activation_with_derivative(name, z, np)
    out, slope = z.copy(), np.full_like(z, np.nan)
    elementwise.activate(out, slope, elementwise.ACTIVATION_CODE[name])
    tolerance = dict(rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).eps)
    np.testing.assert_allclose(out, s, **tolerance)
    np.testing.assert_allclose(slope, ds, **tolerance)


def test_the_loss_registry_is_the_public_list_and_its_order_gives_the_codes():
    assert mc.LOSSES == tuple(elementwise.LOSS_REGISTRY) == ("square", "logistic", "output")
    assert elementwise.LOSS_CODE == {name: k for k, name in enumerate(elementwise.LOSS_REGISTRY)}
    assert numba_kernel.LOSS_CODE is elementwise.LOSS_CODE


@pytest.mark.parametrize("name", mc.LOSSES)
def test_loss_value_equals_the_independent_reference_and_derivative_equals_autograd(name):
    """value against ``autograd_reference.example_loss`` (the tests' own formulas), dl/dg against autograd of it."""
    g = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(np.where(np.arange(Z.size) % 2, 1.0, -1.0) * (0.3 if name == "square" else 1.0))
    reference = torch.stack([example_loss(name, gi, yi) for gi, yi in zip(g, y)])
    (autograd,) = torch.autograd.grad(reference.sum(), g)
    value = elementwise.loss_value(name, g, y, torch)
    np.testing.assert_allclose(value.detach().numpy(), reference.detach().numpy(), rtol=1e-13, atol=1e-15)
    derivative = elementwise.loss_derivative(name, g.detach(), y, torch)
    np.testing.assert_allclose(derivative.numpy(), autograd.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(elementwise.loss_derivative(name, Z, y.numpy(), np), autograd.numpy(), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", mc.LOSSES)
def test_numba_loss_derivative_at_equals_the_numpy_derivative(name, dtype):
    """``elementwise.loss_derivative_at`` with the loss's code (what the numba kernel runs) against numpy."""
    g = Z.astype(dtype)
    y = np.where(np.arange(Z.size) % 2, 1.0, -1.0).astype(dtype)
    expected = elementwise.loss_derivative(name, g, y, np)
    code = elementwise.LOSS_CODE[name]
    got = np.array([elementwise.loss_derivative_at(gi, yi, code) for gi, yi in zip(g, y)])
    np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).eps)


def _njit_modules(start) -> set:
    """Every module holding an njit function that ``start``'s functions can reach through module globals."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module.__name__ in seen:
            continue
        seen.add(module.__name__)
        values = list(vars(module).values())
        values += [v for t in values if isinstance(t, tuple) for v in t]
        for value in values:
            if isinstance(value, numba_kernel.Dispatcher):
                todo.append(sys.modules[value.py_func.__module__])
    return seen


def test_the_cache_guard_covers_every_module_the_kernel_inlines():
    reached = _njit_modules(numba_kernel) - {numba_kernel.__name__}
    assert reached == {m.__name__ for m in numba_kernel.INLINED_MODULES}
    stamp = Path(cached_kernel._cache._cache_path) / "numba_kernel.inlined-sources.sha256"
    assert stamp.read_text() == hashlib.sha256(Path(elementwise.__file__).read_bytes()).hexdigest()


_NEW_ACTIVATION = '''

@njit(cache=True)
def _double_scalar(v):
    return 2.0 * v, 2.0


REGISTRY = {**REGISTRY, "double": Activation("double", lambda z, xp: (2 * z, 2 + 0 * z), _double_scalar)}
ACTIVATIONS = tuple(REGISTRY)
ACTIVATION_CODE = {name: code for code, name in enumerate(ACTIVATIONS)}
_SCALARS = tuple(activation.scalar for activation in REGISTRY.values())
'''

_CHECK = '''
import numpy as np
import {kernel} as nk

for name, expected in {names}.items():
    z = np.linspace(-2.0, 2.0, 6).reshape(2, 3)
    out = z.copy()
    slope = nk._layer_activation(out, nk.ACTIVATION_CODE[name], True)
    s, ds = eval(expected)
    assert np.allclose(out, s) and np.allclose(slope, ds), (name, out, slope)
print("ok")
'''


def test_an_edit_of_elementwise_recompiles_the_cached_kernel(tmp_path):
    """numba's cache keys a kernel on its own file: after a new activation is declared in ``elementwise.py``
    the cached kernel would run the old code (garbage for the new code).  The guard in ``numba_kernel.py``
    must empty that cache.  A copy of the two real files as a package, a private cache, three processes:
    compile, declare an activation, run the kernel with it."""
    package = tmp_path / "pkg"

    def copy(module) -> Path:
        """The module's file at its own place in ``pkg`` (``montecarlo.a.b`` -> ``pkg/a/b.py``), as the kernel's
        relative imports need."""
        target = package.joinpath(*module.__name__.split(".")[1:]).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module.__file__, target)
        return target

    elementwise_copy = copy(elementwise)
    copy(numba_kernel)
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    kernel = ".".join(["pkg", *numba_kernel.__name__.split(".")[1:]])
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path))

    def check(names):
        script = textwrap.dedent(_CHECK).format(names=names, kernel=kernel)
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr

    check({"tanh": "(np.tanh(z), 1 - np.tanh(z) ** 2)"})  # compiles and caches the kernel
    with open(elementwise_copy, "a") as handle:
        handle.write(_NEW_ACTIVATION)
    check({"double": "(2 * z, 2 + 0 * z)", "tanh": "(np.tanh(z), 1 - np.tanh(z) ** 2)"})
