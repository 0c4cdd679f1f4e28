"""``montecarlo.register_activation``: one call adds an activation to the finite-width code and to theory's kernels.

Checked against independent references: the Gram of a network with the registered activation against per-example
``torch.autograd`` gradients of the tests' own torch network (``autograd_reference``) with torch's own ``sigmoid``;
theory's quadrature of a registered identity against the closed form of "linear"; the quadrature of the registered
swish against Monte Carlo draws, and the finite-width tangent kernel at a large width against theory's limit.  The
registries are process-wide: every test registers under its own names and the fixture removes them after it
(``montecarlo.testing.unregister_activation``); the last test of the registry checks that nothing is left.  The
pages that show the call (the getting-started section, ``docs/activations.md``) run here as written.
"""

import contextlib
import io
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

import montecarlo as mc
import theory
from autograd_reference import TORCH_ACTIVATIONS, per_example_gradients
from montecarlo.testing import elementwise, resolve_backend, unregister_activation


def swish(z, xp):
    """``z sigmoid(z)``, the sigmoid through tanh (as the package's own declaration of sigmoid)."""
    return z * 0.5 * (1 + xp.tanh(0.5 * z))


def swish_derivative(z, xp):
    s = 0.5 * (1 + xp.tanh(0.5 * z))
    return s + z * s * (1 - s)


def torch_swish(z):
    """The independent reference: torch's own sigmoid, differentiated by autograd."""
    return z * torch.sigmoid(z)


@pytest.fixture
def register(monkeypatch):
    """``register(name, function, derivative=None, **kw)``: registers, gives the name to the autograd reference (as
    ``torch_swish``), and undoes both after the test."""
    names = []

    def register_(name, function, derivative=None, reference=torch_swish, **options):
        names.append(name)
        mc.register_activation(name, function, derivative, **options)
        monkeypatch.setitem(TORCH_ACTIVATIONS, name, reference)
        return name

    yield register_
    for name in names:
        unregister_activation(name)


def relative_error(G, reference):
    scale = np.max(np.abs(reference))
    return np.max(np.abs(G - reference)) / (scale if scale > 0 else 1.0)


def _problem(activation, loss, output_activation, bias):
    net = mc.MLP(5, 7, 3, activation=activation, output_activation=output_activation, bias=bias,
                 bias_std=0.3 if bias else 0.0)
    rng = np.random.default_rng(4)
    params = net.init(rng)
    X = mc.sample_sphere(6, 5, rng)
    y = mc.RandomSigns()(X, rng) if loss == "logistic" else mc.TanhTeacher()(X, rng)
    return net, params, X, y


# -- (a) the Gram against autograd -----------------------------------------------------------------------------------
@pytest.mark.parametrize("derived", [False, True], ids=["given_derivative", "autograd_derivative"])
def test_gram_of_a_registered_activation_equals_autograd_on_numpy_and_torch(register, derived):
    name = register(f"swish_gram_{int(derived)}", swish, None if derived else swish_derivative)
    worst = 0.0
    for loss, output_activation, bias in itertools.product(("square", "logistic"), (True, False), (True, False)):
        net, params, X, y = _problem(name, loss, output_activation, bias)
        J, ranges = per_example_gradients(net, params, X, y, loss)  # one torch.autograd.grad call per example
        for backend in ("numpy", "torch", "auto"):
            G, blocks = mc.gradient_gram(net, params, X, y, loss=loss, backend=backend, per_layer=True)
            worst = max(worst, relative_error(G, J @ J.T))
            for p, (start, stop) in enumerate(ranges):
                Jp = J[:, start:stop]
                assert relative_error(blocks[p], Jp @ Jp.T) < 1e-10, (backend, loss, output_activation, bias, p)
    assert worst < 1e-10, worst


def test_auto_picks_a_backend_that_runs_it_and_numba_is_refused(register):
    name = register("swish_auto", swish, swish_derivative)
    assert resolve_backend("auto", activation=name) == ("numpy", None)
    assert resolve_backend("auto", "cpu", activation=name) == ("numpy", None)
    assert resolve_backend("auto", None, "torch", name) == ("torch", None)
    assert resolve_backend("auto", activation="tanh") == ("numba", None)  # the built-ins keep numba
    net = mc.MLP(6, 12, 2, activation=name)
    args = dict(labels="random_sign", loss="square", seed=3)
    sample = mc.sample_confusion(net, 4, 24, **args)
    assert sample.meta["backend"] == "numpy"
    on_torch = mc.sample_confusion(net, 4, 24, backend="torch", **args)
    for key, values in sample.stats.items():
        np.testing.assert_allclose(on_torch.stats[key], values, rtol=1e-9, atol=1e-12, err_msg=key)
    message = (rf"argument 'backend' = 'numba' runs the built-in activations only \(relu, tanh, sigmoid, linear\), "
               rf"not the registered activation '{name}': use backend='numpy' or 'torch'")
    params, X = net.init(0), mc.sample_sphere(3, 6, 0)
    with pytest.raises(ValueError, match=message):
        mc.gradient_gram(net, params, X, np.ones(3), backend="numba")
    with pytest.raises(ValueError, match=message):
        mc.sample_confusion(net, 4, 8, backend="numba", **args)
    with pytest.raises(ValueError, match=message):
        mc.MLPTrial(net, 4, labels="random_sign", loss="square", backend="numba")
    with pytest.raises(ValueError, match=message):
        mc.rare_tail(net, 4, statistic="min_cosine", threshold=-0.9, direction="lower", backend="numba", **args)


def test_the_numba_dispatch_holds_the_builtins_only(register):
    register("swish_numba", swish, swish_derivative)
    assert elementwise.ACTIVATIONS == mc.ACTIVATIONS == ("relu", "tanh", "sigmoid", "linear")
    assert tuple(elementwise.ACTIVATION_CODE) == mc.ACTIVATIONS
    elementwise.activate  # noqa: B018 (compiles the kernel's dispatch, or loads it from numba's cache)
    assert len(elementwise._SCALARS) == len(mc.ACTIVATIONS)
    net, params, X, y = _problem("tanh", "square", True, True)  # the numba kernel is unchanged for a built-in
    np.testing.assert_allclose(mc.gradient_gram(net, params, X, y, backend="numba"),
                               mc.gradient_gram(net, params, X, y, backend="numpy"), rtol=1e-12)


# -- (b) theory: quadrature against closed forms and Monte Carlo --------------------------------------------------
COVARIANCES = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (1.5, 0.8, 1.0), (2.0, 2.0, 2.0), (0.7, 0.7, 0.0)]


def test_a_registered_identity_by_quadrature_equals_the_linear_closed_form(register):
    name = register("identity_by_quadrature", lambda z, xp: z, lambda z, xp: xp.ones_like(z),
                    reference=lambda z: z)
    assert theory.activation_names()[-1] == name == mc.activation_names()[-1]
    for a, b, c in COVARIANCES:
        value, derivative = theory.activation_moments(name, a, b, c)  # no closed form: Gauss-Hermite quadrature
        assert abs(value - c) < 1e-10 and abs(derivative - 1) < 1e-10, (a, b, c, value, derivative)
    X = mc.sample_sphere(6, 5, 0) * np.linspace(0.5, 1.5, 6)[:, None]
    for depth, bias_std in ((1, 0.0), (3, 0.4)):
        mine = theory.infinite_width_kernels(X, depth, name, kappa=2.0, bias_std=bias_std)
        linear = theory.infinite_width_kernels(X, depth, "linear", kappa=2.0, bias_std=bias_std)
        for M, L in ((mine.theta_hat, linear.theta_hat), (mine.theta_fixed, linear.theta_fixed),
                     *zip(mine.sigmas, linear.sigmas)):
            np.testing.assert_allclose(M, L, rtol=1e-10, atol=1e-12)
    floor, linear_floor = (theory.infinite_width_cosine_floor(0.4, 2, a, 8, n_samples=4) for a in (name, "linear"))
    assert floor.upper == pytest.approx(linear_floor.upper, rel=1e-8)


def test_a_given_closed_form_is_used(register):
    calls = []

    def moments(a, b, c):
        calls.append(1)
        return c, np.ones_like(c)

    name = register("identity_closed_form", lambda z, xp: z, lambda z, xp: xp.ones_like(z), moments=moments,
                    reference=lambda z: z)
    calls.clear()
    assert theory.activation_moments(name, 1.0, 1.0, 0.25) == (0.25, 1.0)
    assert calls == [1]


def test_the_swish_quadrature_equals_monte_carlo(register):
    """Both Gaussian moments of the registered swish against 400 000 draws with torch's own sigmoid, within 4
    standard errors family-wise over the 10 moments."""
    name = register("swish_theory", swish, swish_derivative)
    rng = np.random.default_rng(5)
    bound = float(stats.norm.isf(stats.norm.sf(4.0) / 10))

    def s(x):
        return (torch_swish(torch.from_numpy(x))).numpy()

    def ds(x):
        z = torch.from_numpy(x).requires_grad_(True)
        return torch.autograd.grad(torch_swish(z).sum(), z)[0].numpy()

    for a, b, c in COVARIANCES:
        u, v = rng.multivariate_normal([0.0, 0.0], [[a, c], [c, b]], size=400_000).T
        for f, exact in zip((s, ds), theory.activation_moments(name, a, b, c)):
            product = f(u) * f(v)
            error = abs(product.mean() - float(exact))
            assert error <= bound * product.std(ddof=1) / np.sqrt(product.size), (a, b, c, error)


def test_the_finite_width_tangent_kernel_tends_to_theorys_limit(register):
    """The tangent kernel of wide networks with the registered swish (montecarlo) against theory's
    ``width theta_hat + theta_fixed`` for it: the two sides of the one registration meet."""
    name = register("swish_limit", swish, swish_derivative)
    width, networks = 1024, 24
    X = mc.sample_sphere(4, 6, 1)
    net = mc.MLP(6, width, 2, activation=name, output_activation=False)
    grams = mc.sample_grams(net, 4, networks, labels="random_sign", loss="output", seed=2, data=(X, np.ones(4)))
    assert grams.meta["backend"] == "numpy"
    limit = theory.infinite_width_kernels(X, 2, name).theta(width)
    mean = grams.G.mean(axis=0)
    se = grams.G.std(axis=0, ddof=1) / np.sqrt(networks)
    # within 5 standard errors of the mean, plus 1% for the O(1/width) bias of the finite-width mean
    assert np.all(np.abs(mean - limit) < 5 * se + 0.01 * np.abs(limit)), (mean, limit, se)
    assert relative_error(mean, limit) < 0.1  # a gross check too: 0.025 with this seed


def test_cosine_fluctuations_takes_a_registered_name_and_its_store_records_the_digest(register, tmp_path):
    name = register("swish_fluctuations", swish, swish_derivative)
    result = mc.cosine_fluctuations(4, 1, name, t=[0.3], widths=[8, 9, 10], networks=20, seed=0,
                                    out=tmp_path / "store")
    configuration = json.loads((tmp_path / "store" / "manifest.json").read_text())["configuration"]
    assert configuration["activation"] == name
    assert configuration["activation_source"] == elementwise.activation_record(name)["activation_source"]
    assert result.limit.shape == (1,) and np.all(np.abs(result.samples[0]) <= 1)


# -- (c) the derivative by autograd --------------------------------------------------------------------------------
def test_the_autograd_derivative_equals_the_given_one(register):
    given = register("swish_given", swish, swish_derivative)
    derived = register("swish_derived", swish)
    z = np.concatenate([np.linspace(-8.0, 8.0, 401), [0.0, 30.0, -30.0]]).reshape(-1, 2)
    for xp, array in ((np, z), (torch, torch.from_numpy(z)), (np, z.astype(np.float32))):
        s1, d1 = elementwise.activation_with_derivative(given, array, xp)
        s2, d2 = elementwise.activation_with_derivative(derived, array, xp)
        assert type(d2) is type(array) and d2.shape == array.shape and d2.dtype == array.dtype
        tolerance = 1e-6 if array.dtype in (np.float32, torch.float32) else 1e-13
        np.testing.assert_allclose(np.asarray(d2), np.asarray(d1), rtol=tolerance, atol=tolerance)
    # on a tensor that requires grad the derivative stays differentiable: s'' against autograd of torch's sigmoid
    t = torch.from_numpy(z).requires_grad_(True)
    _, slope = elementwise.activation_with_derivative(derived, t, torch)
    (second,) = torch.autograd.grad(slope.sum(), t)
    reference = t.detach().clone().requires_grad_(True)
    (first,) = torch.autograd.grad(torch_swish(reference).sum(), reference, create_graph=True)
    (expected,) = torch.autograd.grad(first.sum(), reference)
    np.testing.assert_allclose(second.numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)
    # theory got the same derivative
    assert theory.activation_moments(derived, 1.0, 0.5, 0.2)[1] == pytest.approx(
        theory.activation_moments(given, 1.0, 0.5, 0.2)[1], rel=1e-12)


# -- (d) refusals ----------------------------------------------------------------------------------------------------
def test_a_taken_or_malformed_name_is_refused(register):
    name = register("swish_taken", swish, swish_derivative)
    for taken in (name, "relu"):
        with pytest.raises(ValueError, match=rf"argument 'name': '{taken}' is already registered \(names taken: "
                                             rf"'relu', 'tanh', 'sigmoid', 'linear', .*'{name}'\)"):
            mc.register_activation(taken, swish, swish_derivative)
    for bad in ("", "3x", "with-dash", "two words", 5, None):
        with pytest.raises(ValueError, match=r"argument 'name' must be a non-empty identifier"):
            mc.register_activation(bad, swish, swish_derivative)
        with pytest.raises(ValueError, match=r"argument 'name' must be a non-empty identifier"):
            theory.register_activation(bad, np.tanh, lambda z: 1 - np.tanh(z) ** 2)


def test_bad_functions_are_refused_naming_the_argument_and_nothing_is_registered(register):
    before = (mc.activation_names(), theory.activation_names())
    cases = [
        (dict(function=3), TypeError, r"argument 'function' must be callable, got int"),
        (dict(derivative="tanh"), TypeError, r"argument 'derivative' must be callable or None, got str"),
        (dict(function=lambda z, xp: xp.no_such_function(z)), ValueError,
         r"argument 'function' failed on a test array of shape \(2, 3\): AttributeError"),
        (dict(function=lambda z: z), ValueError, r"argument 'function' failed on a test array .*TypeError"),
        (dict(function=lambda z, xp: z.sum()), ValueError,
         r"argument 'function' must act elementwise: on an array of shape \(2, 3\) it returned shape \(\)"),
        (dict(derivative=lambda z, xp: xp.log(z)), ValueError, r"argument 'derivative' returned non-finite values"),
        (dict(moments=7), TypeError, r"argument 'moments' must be callable or None, got int"),
        (dict(moments=lambda a, b, c: c), ValueError, r"argument 'moments' must return a pair"),
    ]
    for k, (change, error, message) in enumerate(cases):
        arguments = dict(function=swish, derivative=swish_derivative, moments=None, **{})
        arguments.update(change)
        with pytest.raises(error, match=message):
            mc.register_activation(f"refused_{k}", arguments["function"], arguments["derivative"],
                                   moments=arguments["moments"])
        assert (mc.activation_names(), theory.activation_names()) == before, change  # neither side registered
    with pytest.raises(TypeError, match=r"argument 'derivative' must be callable, got int"):
        theory.register_activation("refused_theory", np.tanh, 1)
    with pytest.raises(ValueError, match=r"argument 'function' returned non-finite values"):
        theory.register_activation("refused_theory", np.log, np.ones_like)


def test_a_name_theory_already_has_is_refused_and_montecarlo_does_not_register_it(register):
    theory.register_activation("theory_only", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    try:
        with pytest.raises(ValueError, match=r"argument 'name': 'theory_only' is already registered"):
            mc.register_activation("theory_only", swish, swish_derivative)
        assert "theory_only" not in mc.activation_names()
        with pytest.raises(ValueError, match=r"argument 'activation' must be one of .*; got 'theory_only'"):
            mc.MLP(3, 4, 1, activation="theory_only")
    finally:
        unregister_activation("theory_only")


def test_an_unknown_name_lists_the_registered_ones(register):
    name = register("swish_listed", swish, swish_derivative)
    names = ", ".join(map(repr, (*mc.ACTIVATIONS, name)))
    with pytest.raises(ValueError, match=re.escape(f"argument 'activation' must be one of {names}; got 'softmax'")):
        mc.MLP(3, 4, 1, activation="softmax")
    with pytest.raises(ValueError, match=rf"argument 'activation' must be one of .*{name}.*; got 'softmax'"):
        theory.infinite_width_kernels(np.eye(3), 1, "softmax")


# -- (e) reproducibility ----------------------------------------------------------------------------------------------
def test_a_stored_config_records_the_functions_digest(register):
    def first(z, xp):
        return z * 0.5 * (1 + xp.tanh(0.5 * z))

    def second(z, xp):
        return z * 0.5 * (1 + xp.tanh(0.5 * z)) + 0.0 * z

    def config(function):
        register("swish_stored", function)
        try:
            net = mc.MLP(5, 6, 1, activation="swish_stored")
            trial = mc.MLPTrial(net, 3, labels="random_sign", loss="square")
            sample = mc.sample_confusion(net, 3, 8, labels="random_sign", loss="square", seed=0)
            assert sample.config == trial.config()
            return trial.config()
        finally:
            unregister_activation("swish_stored")

    a, b, a_again = config(first), config(second), config(first)
    assert a["activation"] == b["activation"] == "swish_stored"
    assert a["activation_source"] != b["activation_source"] and a == a_again
    assert re.fullmatch(r"[0-9a-f]{16}", a["activation_source"])
    builtin = mc.MLPTrial(mc.MLP(5, 6, 1, activation="tanh"), 3, labels="random_sign", loss="square").config()
    assert "activation_source" not in builtin  # the package fingerprint covers the built-ins


def test_the_registrations_are_undone():
    assert mc.activation_names() == mc.ACTIVATIONS == theory.activation_names()
    assert tuple(elementwise.REGISTRY) == mc.ACTIVATIONS


# -- the pages that show the call run as written ---------------------------------------------------------------------
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def undo_registrations():
    """Remove whatever the page's code registers."""
    before = set(mc.activation_names())
    yield
    for name in set(mc.activation_names()) - before:
        unregister_activation(name)


def _run(code: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "page", "exec"), namespace)
    return out.getvalue()


def test_the_getting_started_section_runs_and_prints_what_it_says(undo_registrations):
    """The section's block is fenced as a code-block directive (the getting-started test runs the page's two
    python blocks); it runs here, after ``import montecarlo as mc`` as on the page."""
    page = (DOCS / "getting_started.md").read_text()
    (code,) = re.findall(r"## Add an activation\n.*?```\{code-block\} python\n(.*?)```", page, re.S)
    printed = _run(code, {"mc": mc}).split()
    assert "# 0.017 at width 256; 0.0147 in the limit" in code
    assert float(printed[0]) == 0.017 and round(float(printed[1]), 4) == 0.0147


def test_the_how_to_page_runs_and_its_numbers_are_what_it_says(undo_registrations):
    page = (DOCS / "activations.md").read_text()
    namespace: dict = {}
    for code in re.findall(r"```python\n(.*?)```", page, re.S):
        _run(code, namespace)
    G, K, sample, floor = (namespace[k] for k in ("G", "K", "sample", "floor"))
    assert np.abs(mc.cosine_matrix(G) - K.cosines()).max() < 0.06  # "agree to a few hundredths"
    assert round(relative_error(G, K.theta(2048)), 2) == 0.14 and "about 0.14 here" in page
    assert [(sample.stats["min_cosine"] < -tau).mean() for tau in (0.3, 0.5)] == [0.087, 0.014]
    assert np.round(floor.pair, 4).tolist() == [0.0895, 0.0105] and "`0.087, 0.014`" in page
    np.testing.assert_allclose(theory.activation_moments("gelu_autograd", 1.0, 0.8, 0.5),
                               theory.activation_moments("gelu", 1.0, 0.8, 0.5), rtol=1e-12)
    assert np.round(theory.activation_moments("leaky_relu", 1.0, 1.0, 0.3), 4).tolist() == [0.2255, 0.3418]
