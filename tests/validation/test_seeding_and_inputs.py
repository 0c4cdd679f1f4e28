"""Seeds are validated and trial t is a pure function of (seed, t); sizes that cannot fit, parameters of another
network and bad labelling callables are refused with errors that name the argument (issue 13, items 6 and 7)."""

import time

import numpy as np
import pytest

import montecarlo as mc
from montecarlo import SEED_BLOCK, constant_step_sgd
from montecarlo.testing import drawn_numbers, estimated_peak_bytes, lazy_layers, validation

SPECTRA = dict(labels="tanh", loss="square", lanczos_steps=3, hutchinson_probes=2)


# --- sample_spectra -------------------------------------------------------------------------------------------

def test_sample_spectra_trials_are_a_prefix_whatever_trials_is():
    """The first 3 rows of an 11-trial run are the 3-trial run, every column (the Lanczos start and the probes
    are drawn from the trial's stream too)."""
    net = mc.MLP(4, 5, 2, activation="tanh")
    few = mc.sample_spectra(net, 3, 3, seed=4, **SPECTRA)
    many = mc.sample_spectra(net, 3, 11, seed=4, **SPECTRA)
    assert len(many) == 11
    np.testing.assert_array_equal(few.to_numpy(), many.iloc[:3].to_numpy())
    assert not np.array_equal(many.iloc[3:6].to_numpy(), few.to_numpy())  # later trials are fresh draws


def test_sample_spectra_trial_follows_the_documented_stream():
    """Trial t's first-layer norm |W_0 x_0|^2 recomputed by hand from SeedSequence(seed, spawn_key=(t,))."""
    net = mc.MLP(4, 5, 2, activation="tanh")
    frame = mc.sample_spectra(net, 3, 4, seed=(2, 9), labels="tanh", loss="square", lanczos_steps=0)
    for t in (0, 3):
        rng = np.random.default_rng(np.random.SeedSequence((2, 9), spawn_key=(t,)))
        params = net.init(rng)
        X = mc.sample_sphere(3, 4, rng)
        assert frame["norm_first"].iloc[t] == pytest.approx(np.sum((params.weights[0] @ X[0]) ** 2), rel=1e-13)


@pytest.mark.parametrize("seed", [None, -1, 1.5, True])
def test_sample_spectra_refuses_bad_seeds(seed):
    with pytest.raises(ValueError, match="argument 'seed'"):
        mc.sample_spectra(mc.MLP(4, 5, 2), 3, 2, seed=seed, **SPECTRA)


def test_hutchinson_and_sampling_helpers_refuse_missing_rng():
    diagonal = type("Diagonal", (), {"size": 3, "__matmul__": lambda self, v: v})()
    with pytest.raises(ValueError, match="argument 'rng'"):
        mc.hutchinson_trace(diagonal, 4, None)
    with pytest.raises(ValueError, match="argument 'rng'"):
        mc.sample_sphere(3, 4, None)
    with pytest.raises(ValueError, match="argument 'rng'"):
        mc.RandomSigns()(np.zeros((3, 4)), -2)
    with pytest.raises(ValueError, match="argument 'rng'"):
        mc.TanhTeacher()(np.zeros((3, 4)), None)  # v is drawn: needs a seed
    # a fixed teacher draws nothing, so no rng is needed, and its labels are tanh(<v, x>)
    X = mc.sample_sphere(3, 2, 0)
    np.testing.assert_allclose(mc.TanhTeacher(v=[1.0, 0.0])(X), np.tanh(X[:, 0]), rtol=1e-15)


# --- SGD simulator and the invariant-measure chain ---------------------------------------------------------------

def test_sgd_runs_and_steps_are_prefixes():
    """More runs leave the first runs' paths unchanged, and a shorter run is the start of a longer one."""
    problem = mc.least_squares(6, 3, 1, noise=0.2)
    short = mc.simulate_sgd(problem, 0.2, 40, 3, seed=5, record_every=10)
    long = mc.simulate_sgd(problem, 0.2, 2100, 19, seed=5, record_every=10)  # crosses a STEP_CHUNK of 1024
    np.testing.assert_array_equal(short.loss, long.loss[:3, :5])
    np.testing.assert_array_equal(short.eta, long.eta[:3, :5])
    again = mc.simulate_sgd(problem, 0.2, 2100, 3, seed=5, record_every=10)
    np.testing.assert_array_equal(again.weights, long.weights[:3])
    assert not np.array_equal(long.weights[3], long.weights[0])


@pytest.mark.parametrize("seed", [None, -3])
def test_sgd_refuses_bad_seeds(seed):
    problem = mc.least_squares(5, 3, 0)
    with pytest.raises(ValueError, match="argument 'seed'"):
        mc.simulate_sgd(problem, 0.1, 3, 2, seed=seed)
    with pytest.raises(ValueError, match="argument 'rng'"):
        mc.least_squares(5, 3, seed)


def test_sgd_refuses_non_finite_problems_and_starts():
    problem = mc.least_squares(5, 3, 0)
    with pytest.raises(ValueError, match="argument 'w0' must be finite"):
        mc.simulate_sgd(problem, 0.1, 3, 2, seed=0, w0=[0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match=r"argument 'w0' must have shape \(3,\) or \(2, 3\)"):
        mc.simulate_sgd(problem, 0.1, 3, 2, seed=0, w0=np.zeros(4))
    A = problem.A.copy()
    A[0, 0] = np.nan
    with pytest.raises(ValueError, match="argument 'A' must be finite"):
        mc.LeastSquares(A, problem.b)
    with pytest.raises(ValueError, match="argument 'b' must hold one target per row of A"):
        mc.LeastSquares(problem.A, problem.b[:3])
    with pytest.raises(TypeError, match="argument 'problem'"):
        mc.simulate_sgd((problem.A, problem.b), 0.1, 3, 2, seed=0)


def _chain(steps, seed=3):
    X = np.random.default_rng(0).standard_normal((12, 4))
    y = np.arange(12) % 3
    return constant_step_sgd(X, y, hidden=3, lr=0.1, batch=4, steps=steps, record_every=1, seed=seed)


def test_constant_step_chain_is_a_prefix_of_a_longer_chain():
    records, weights = _chain(5)
    more_records, more_weights = _chain(12)
    np.testing.assert_array_equal(weights, more_weights[:6])
    np.testing.assert_array_equal(records.loss.to_numpy(), more_records.loss.to_numpy()[:6])
    assert not np.array_equal(more_weights[6], more_weights[5])  # it does move


@pytest.mark.parametrize("seed", [None, -1])
def test_constant_step_chain_refuses_bad_seeds(seed):
    with pytest.raises(ValueError, match="argument 'seed'"):
        _chain(2, seed=seed)


def test_constant_step_chain_refuses_non_integer_labels():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="argument 'y' must hold non-negative integer class labels"):
        constant_step_sgd(X, np.array([0.0, 1.5, 1.0]), hidden=2, lr=0.1, batch=2, steps=1, record_every=1, seed=0)
    with pytest.raises(ValueError, match="argument 'y' must hold non-negative integer class labels"):
        constant_step_sgd(X, np.array([0, -1, 1]), hidden=2, lr=0.1, batch=2, steps=1, record_every=1, seed=0)


# --- memory --------------------------------------------------------------------------------------------------------

def test_a_network_that_cannot_fit_is_refused_at_once(monkeypatch):
    """MLP(8, 10^6, 3) draws ~6e7 numbers per trial of N = 10, ~4 GiB per seed block of 8 trials: under a 2 GiB
    limit it is refused before anything is drawn (drawing alone takes tens of seconds)."""
    monkeypatch.setattr(validation, "MEMORY_LIMIT", 2 * 2**30)
    net = mc.MLP(8, 10**6, 3)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"'net' of width 1000000, depth 3 .*'n_samples' = 10 .*'batch_size' = 8 "
                                         r"trials .* GiB at peak, but only 2 GiB"):
        mc.sample_confusion(net, 10, 8, labels="tanh", loss="square", seed=0)
    assert time.perf_counter() - start < 3
    # the estimate holds at least the numbers the seed block draws
    modes = lazy_layers(net, 10)
    assert estimated_peak_bytes(net, 10, modes, SEED_BLOCK) >= 8 * SEED_BLOCK * drawn_numbers(net, 10, modes)


def test_a_normal_size_still_runs_under_a_small_limit(monkeypatch):
    monkeypatch.setattr(validation, "MEMORY_LIMIT", 64 * 2**20)
    net = mc.MLP(4, 6, 2, activation="tanh")
    sample = mc.sample_confusion(net, 5, 10, labels="tanh", loss="square", seed=1)
    assert sample.trials == 10 and np.all(np.isfinite(sample.stats["eta_star"]))
    assert estimated_peak_bytes(net, 5, lazy_layers(net, 5), 16) < 64 * 2**20
    # an explicit batch_size that is too large for the limit names it
    with pytest.raises(ValueError, match="'batch_size' = 800000 trials"):
        mc.sample_confusion(net, 5, 10, labels="tanh", loss="square", seed=1, batch_size=800_000)


def test_sample_spectra_refuses_a_trial_that_cannot_fit(monkeypatch):
    """Width 20000 at depth 2 has 4e8 weights (3 GiB): refused under 1 GiB, quickly; a small net still runs."""
    monkeypatch.setattr(validation, "MEMORY_LIMIT", 2**30)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"'net' of width 20000, depth 2 .* GiB at peak"):
        mc.sample_spectra(mc.MLP(8, 20000, 2), 4, 2, seed=0, **SPECTRA)
    assert time.perf_counter() - start < 3
    assert len(mc.sample_spectra(mc.MLP(4, 5, 2), 3, 2, seed=0, **SPECTRA)) == 2


def test_memory_limit_overrides(monkeypatch):
    monkeypatch.setenv(validation.MEMORY_LIMIT_ENV, "12345")
    assert validation.available_memory() == 12345
    monkeypatch.setattr(validation, "MEMORY_LIMIT", 777)
    assert validation.available_memory() == 777
    monkeypatch.setattr(validation, "MEMORY_LIMIT", None)
    monkeypatch.setenv(validation.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=validation.MEMORY_LIMIT_ENV):
        validation.available_memory()


# --- parameters of another network ----------------------------------------------------------------------------

@pytest.mark.parametrize("other", [mc.MLP(4, 6, 2), mc.MLP(4, 5, 3), mc.MLP(3, 5, 2), mc.MLP(4, 5, 2, bias=True)])
def test_parameters_of_another_network_are_refused(other):
    net = mc.MLP(4, 5, 2, activation="tanh")
    X = mc.sample_sphere(3, 4, 0)
    params = other.init(1)
    with pytest.raises(ValueError, match="argument 'params'"):
        mc.input_output_jacobian(net, params, X)
    with pytest.raises(ValueError, match="argument 'params'"):
        mc.forward_norms(net, params, X)
    with pytest.raises(ValueError, match="argument 'params'"):
        mc.HessianOperator(net, params, X, np.zeros(3), "square")


def test_jacobian_refuses_batched_parameters_and_wrong_inputs():
    net = mc.MLP(4, 5, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"argument 'params' does not match 'net'.*one draw"):
        mc.input_output_jacobian(net, net.init(0, batch=2), mc.sample_sphere(3, 4, 0))
    with pytest.raises(ValueError, match="argument 'X' must have input_dim = 4 columns"):
        mc.input_output_jacobian(net, net.init(0), mc.sample_sphere(3, 5, 0))
    with pytest.raises(TypeError, match="argument 'params'"):
        mc.input_output_jacobian(net, list(net.init(0).weights), mc.sample_sphere(3, 4, 0))


# --- labelling callables ----------------------------------------------------------------------------------------

NET = mc.MLP(4, 6, 2, activation="tanh")


@pytest.mark.parametrize("labels, message", [
    (lambda X, rng: np.full(X.shape[:-1], np.nan), "argument 'labels' returned NaN or infinite labels"),
    (lambda X, rng: np.full(X.shape[:-1], np.inf), "argument 'labels' returned NaN or infinite labels"),
    (lambda X, rng: np.zeros(X.shape[-2] + 1), r"argument 'labels' must return one label per example, an array of "
                                           r"shape \(8, 5\)"),
    (lambda X, rng: X, r"argument 'labels' must return one label per example"),
])
def test_bad_labelling_callables_are_refused_before_numba(labels, message):
    with pytest.raises(ValueError, match=message):
        mc.sample_confusion(NET, 5, 3, labels=labels, loss="square", seed=0)
    with pytest.raises(ValueError, match="argument 'labels'"):
        mc.sample_spectra(NET, 5, 1, labels=labels, loss="square", seed=0, lanczos_steps=0)


def test_complex_labels_are_refused():
    with pytest.raises(TypeError, match="argument 'labels' must return real numbers"):
        mc.sample_confusion(NET, 5, 3, labels=lambda X, rng: np.zeros(X.shape[:-1]) + 1j, loss="square", seed=0)


def test_a_valid_callable_gives_the_same_numbers_as_the_equivalent_teacher():
    """labels = x_0 is LinearTeacher(v = e_0); neither draws, so the checked callable must give identical trials,
    and the configuration records the callable's own repr."""
    def first_coordinate(X, rng):
        return X[..., 0]

    v = np.eye(4)[0]
    by_callable = mc.sample_confusion(NET, 5, 10, labels=first_coordinate, loss="square", seed=2)
    by_teacher = mc.sample_confusion(NET, 5, 10, labels=mc.LinearTeacher(v=v), loss="square", seed=2)
    np.testing.assert_array_equal(by_callable.stats["eta_star"], by_teacher.stats["eta_star"])
    assert by_callable.config["labels"] == repr(first_coordinate)
