"""Jacobian, Fisher-by-duality, Hessian (Lanczos, Hutchinson) and the chi-square product laws, each against an
independent reference: brute-force autograd, the dense P x P matrices, exact identities, or direct chi-square draws."""

import numpy as np
import pytest
import torch
from scipy import stats

import montecarlo as mc
import theory
from autograd_reference import TORCH_ACTIVATIONS, example_loss, flat_parameters, network_output, \
    per_example_gradients


def _problem(activation="tanh", bias=True, loss="square", seed=0, depth=2, width=5, d=4, N=6):
    net = mc.MLP(d, width, depth, activation=activation, bias=bias, bias_std=0.3, gamma=1.3,
                 output_activation=activation != "relu")  # a relu output can be dead for every example
    rng = np.random.default_rng(seed)
    params = net.init(rng)
    X = mc.sample_sphere(N, d, rng)
    y = rng.choice([-1.0, 1.0], N) if loss == "logistic" else rng.standard_normal(N)
    return net, params, X, y


def _dense_hessian(net, params, X, y, loss):
    """Hessian of the mean loss in the flattened parameters by torch.autograd.functional.hessian."""
    theta0 = torch.tensor(flat_parameters(params))
    shapes = [a.shape for p in range(net.n_layers)
              for a in ((params.weights[p],) + ((params.biases[p],) if net.bias else ()))]

    def mean_loss(theta):
        pieces, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            pieces.append(theta[start:start + size].reshape(shape))
            start += size
        weights = pieces[::2] if net.bias else pieces
        biases = pieces[1::2] if net.bias else [None] * len(pieces)
        return sum(example_loss(loss, network_output(net, weights, biases, torch.tensor(x)), torch.tensor(t))
                   for x, t in zip(X, y)) / len(X)

    return torch.autograd.functional.hessian(mean_loss, theta0).numpy()


@pytest.mark.parametrize("loss", ["square", "logistic", "output"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_fisher_by_duality_equals_the_dense_fisher(activation, loss):
    """Non-zero eigenvalues of G / N (N x N) against those of F = A^T A / N (P x P) from autograd gradients."""
    net, params, X, y = _problem(activation, loss=loss)
    A, _ = per_example_gradients(net, params, X, y, loss)
    dense = np.sort(np.linalg.eigvalsh(A.T @ A / len(X)))[::-1][:len(X)]
    dual = mc.fisher_spectrum(mc.gradient_gram(net, params, X, y, loss=loss))
    assert A.shape[1] > 5 * len(X)
    np.testing.assert_allclose(dual, dense, rtol=0, atol=1e-10 * dense[0])
    assert abs(dual.sum() - np.trace(A.T @ A) / len(X)) < 1e-10 * dense[0]


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
def test_input_output_jacobian_against_autograd(activation):
    net, params, X, _ = _problem(activation, depth=3, width=7)
    act = TORCH_ACTIVATIONS[activation]
    W = [torch.tensor(w) for w in params.weights]
    b = [torch.tensor(v) for v in params.biases]

    def hidden(x):
        h = x
        for p in range(net.depth):
            h = act(W[p] @ h + b[p])
        return h

    for i, x in enumerate(X):
        reference = torch.autograd.functional.jacobian(hidden, torch.tensor(x)).numpy()
        np.testing.assert_allclose(mc.input_output_jacobian(net, params, X)[i], reference, atol=1e-13)


@pytest.mark.parametrize("loss", ["square", "logistic"])
def test_hessian_vector_products_lanczos_and_quadrature_against_the_dense_hessian(loss):
    net, params, X, y = _problem("tanh", loss=loss)
    H = _dense_hessian(net, params, X, y, loss)
    op = mc.HessianOperator(net, params, X, y, loss)
    v = np.random.default_rng(1).standard_normal(op.size)
    np.testing.assert_allclose(op @ v, H @ v, rtol=0, atol=1e-12 * np.abs(H).max() * np.abs(v).sum())
    exact = np.linalg.eigvalsh(H)
    values, weights = mc.lanczos(op, op.size, v)
    assert abs(values[-1] - exact[-1]) < 1e-8 * np.abs(exact).max()
    # Gauss quadrature: sum tau_k^2 theta_k^m = u^T H^m u for m < 2k (here k = 6 steps, m up to 11)
    values, weights = mc.lanczos(op, 6, v)
    u = v / np.linalg.norm(v)
    for m in range(12):
        assert abs(weights @ values**m - u @ np.linalg.matrix_power(H, m) @ u) < 1e-8 * np.abs(exact).max() ** m


def test_hutchinson_is_exact_on_diagonals_and_unbiased():
    """Rademacher probes: v^T D v = trace D exactly for diagonal D; for a dense Hessian the mean over probes lies
    within 3 standard errors of the trace."""
    diagonal = type("Diagonal", (), {"size": 7, "__matmul__": lambda self, v: np.arange(1.0, 8.0) * v})()
    assert mc.hutchinson_trace(diagonal, 3, 0) == (28.0, 0.0)
    net, params, X, y = _problem("tanh")
    H = _dense_hessian(net, params, X, y, "square")
    estimate, se = mc.hutchinson_trace(mc.HessianOperator(net, params, X, y, "square"), 2000, 2)
    assert se > 0 and abs(estimate - np.trace(H)) < 3 * se


def _log_moment_z(values, mean, variance):
    """z-scores of the sample mean and sample variance of ``values`` against exact values."""
    n = values.size
    centred = values - values.mean()
    se_var = np.sqrt((np.mean(centred**4) - np.var(values) ** 2) / n)
    return (values.mean() - mean) / np.sqrt(variance / n), (values.var(ddof=1) - variance) / se_var


@pytest.mark.parametrize("depth,width", [(5, 8), (9, 4), (3, 32)])
def test_norm_ratio_of_linear_gaussian_networks_follows_the_chi_square_product_law(depth, width):
    """|z_{beta-1}|^2/|z_0|^2 of linear Strategy-4.1 networks has the exact laws of theory.CHI_SQUARE_PRODUCT with
    L = beta - 1 factors: mean, variance, mean and variance of the log within 3 s.e.; the median within the 99.9%
    order-statistic interval of 10^6 direct chi-square products (scipy draws, no network)."""
    net = mc.MLP(6, width, depth, activation="linear")
    frame = mc.sample_forward_norms(net, 2, 4000, seed=depth)  # sample_spectra's columns (next test)
    ratio = frame["norm_ratio"].to_numpy()
    values = dict(beta=depth - 1, width=width)
    mean, var = (theory.chi_square_product_mean.evaluate(**values), theory.chi_square_product_variance.evaluate(**values))
    log_mean = theory.chi_square_product_log_mean.evaluate(**values)
    log_var = theory.chi_square_product_log_variance.evaluate(**values)
    z_mean, _ = _log_moment_z(ratio, mean, var)
    z_log_mean, z_log_var = _log_moment_z(np.log(ratio), log_mean, log_var)
    assert max(abs(z_mean), abs(z_log_mean), abs(z_log_var)) < 3, (z_mean, z_log_mean, z_log_var)
    direct = np.prod(stats.chi2.rvs(width, size=(10**6, depth - 1), random_state=9) / width, axis=1)
    k = np.arange(1, ratio.size + 1)
    lo, hi = stats.binom.ppf([0.0005, 0.9995], ratio.size, 0.5).astype(int)
    target = np.median(direct)
    sorted_ratio = np.sort(ratio)
    assert sorted_ratio[lo - 1] <= target <= sorted_ratio[hi - 1], (target, np.median(ratio), k.size)


@pytest.mark.parametrize("net", [mc.MLP(6, 8, 5, activation="linear"),
                                 mc.MLP(5, 7, 3, activation="tanh", init="orthogonal", gain=1.3),
                                 mc.MLP(4, 6, 2, activation="relu", bias=True, bias_std=0.5, kappa=2.0)],
                         ids=["linear", "orthogonal-tanh", "relu-bias"])
def test_sample_forward_norms_are_the_columns_of_sample_spectra(net):
    """Same draws: norm_first, norm_last and norm_ratio equal those of sample_spectra (torch's forward pass of the
    Gram) up to the rounding of numpy's products, and the first trial's |z_0|^2 is |W_0 x_0 + b_0|^2 recomputed by
    hand from its stream."""
    full = mc.sample_spectra(net, 3, 6, labels="tanh", loss="square", seed=(5, 1), lanczos_steps=0)
    norms = mc.sample_forward_norms(net, 3, 6, seed=(5, 1))
    assert list(norms.columns) == ["trial", "norm_first", "norm_last", "norm_ratio"]
    np.testing.assert_array_equal(norms["trial"].to_numpy(), full["trial"].to_numpy())
    for column in norms.columns[1:]:
        np.testing.assert_allclose(norms[column].to_numpy(), full[column].to_numpy(), rtol=1e-12, err_msg=column)
    rng = np.random.default_rng(np.random.SeedSequence((5, 1), spawn_key=(0,)))
    params = net.init(rng)
    x = mc.sample_sphere(3, net.input_dim, rng)[0]
    z0 = params.weights[0] @ x + (params.biases[0] if net.bias else 0.0)
    assert norms["norm_first"].iloc[0] == pytest.approx(np.sum(z0**2), rel=1e-13)
    with pytest.raises(ValueError, match="depth >= 1"):
        mc.sample_forward_norms(mc.MLP(5, 6, 0), 3, 2, seed=1)
    with pytest.raises(ValueError, match="argument 'seed'"):
        mc.sample_forward_norms(net, 3, 2, seed=None)


def test_chi_square_moments_agree_with_direct_draws():
    """The symbolic variance (1 + 2/n)^L - 1 against 10^6 direct products (3 s.e., s.e. from the fourth moment)."""
    L, n = 4, 6
    direct = np.prod(stats.chi2.rvs(n, size=(10**6, L), random_state=3) / n, axis=1)
    _, z_var = _log_moment_z(direct, 1.0, theory.chi_square_product_variance.evaluate(beta=L, width=n))
    assert abs(z_var) < 3


def test_sample_spectra_is_a_function_of_its_seed_and_checks_input():
    net = mc.MLP(5, 6, 2, activation="tanh")
    a = mc.sample_spectra(net, 4, 3, labels="tanh", loss="square", seed=1, hutchinson_probes=4)
    b = mc.sample_spectra(net, 4, 3, labels="tanh", loss="square", seed=1, hutchinson_probes=4)
    assert a.equals(b) and a["hessian_lambda_max"].notna().all()
    with pytest.raises(ValueError, match="depth >= 1"):
        mc.sample_spectra(mc.MLP(5, 6, 0), 4, 3, labels="tanh", loss="square", seed=1)
    with pytest.raises(ValueError, match="argument 'loss'"):
        mc.sample_spectra(net, 4, 3, labels="tanh", loss="hinge", seed=1)


def test_window_distances_are_exact_on_shifted_windows():
    """Window B = window A shifted by c in every coordinate: W1 between the marginals is |c| exactly, and the
    displacement is the difference of the windows' last rows."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 3))
    weights = np.vstack([a, a[rng.permutation(5)] + 0.7])
    out = mc.window_distances(np.arange(10), weights, 5)
    assert len(out) == 1 and abs(out.w1.iloc[0] - 0.7) < 1e-12
    assert abs(out.displacement.iloc[0] - np.abs(weights[9] - weights[4]).mean()) < 1e-15


def test_constant_step_sgd_takes_exact_sgd_steps_and_is_seeded():
    """With one example every minibatch is that example, so a step is w_1 = w_0 - lr grad L(w_0): its length is
    lr times the recorded gradient norm, and the recorded loss falls by lr |grad L|^2 to first order."""
    X = np.random.default_rng(1).standard_normal((1, 5))
    y = np.array([2])
    records, weights = mc.constant_step_sgd(X, y, hidden=3, lr=1e-6, batch=4, steps=1, record_every=1, seed=0)
    step = weights[1] - weights[0]
    # a gradient step of size lr: |step| = lr |grad| and the loss falls by lr |grad|^2 to first order
    assert abs(np.linalg.norm(step) - 1e-6 * records.grad_norm.iloc[0]) < 1e-12
    assert abs((records.loss.iloc[0] - records.loss.iloc[1]) - 1e-6 * records.grad_norm.iloc[0] ** 2) < 1e-10
    again = mc.constant_step_sgd(X, y, hidden=3, lr=1e-6, batch=4, steps=1, record_every=1, seed=0)
    np.testing.assert_array_equal(weights, again[1])


def test_sample_spectra_takes_an_mlp_trial_and_refuses_other_trials():
    """An MLPTrial brings its network, N, labels and loss: the same rows as the MLP with those arguments."""
    net = mc.MLP(6, 16, 2, activation="tanh")
    direct = mc.sample_spectra(net, 4, 3, labels="tanh", loss="square", seed=1)
    through = mc.sample_spectra(mc.MLPTrial(net, 4, labels="tanh", loss="square"), 3, seed=1)
    np.testing.assert_array_equal(direct.to_numpy(float), through.to_numpy(float))
    assert list(direct.columns) == list(through.columns)
    module = mc.ModuleTrial(lambda: torch.nn.Linear(4, 1), 3, labels="tanh", loss="square")
    with pytest.raises(TypeError, match="argument 'net' must be a montecarlo.MLP or an MLPTrial"):
        mc.sample_spectra(module, 3, seed=1)
    with pytest.raises(ValueError, match=r"argument\(s\) 'loss' belong to the MLPTrial"):
        mc.sample_spectra(mc.MLPTrial(net, 4, labels="tanh", loss="square"), 3, seed=1, loss="square")
