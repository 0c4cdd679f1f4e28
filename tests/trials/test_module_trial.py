"""Trials of any torch module (``montecarlo.ModuleTrial``): Monte Carlo and rare tails with no engine edit.

The modules below (a small CNN, a residual block with layer norm, the paper's network written in torch) are
defined here, in the test: adding a kind of network is a Trial, not a change to ``montecarlo``'s engines.
Checked against independent computations: per-example autograd gradients (a plain loop over chains and
examples), the paper's network's own trial (``MLPTrial``, numba kernel) fed the same standard normals, plain
Monte Carlo for the rare tails, and the laws' closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import montecarlo as mc
from montecarlo.testing import NormalSource, ReplaySource, TrialStatistic


class ResidualBlock(nn.Module):
    """x -> W_in x; h + tanh(W_h LayerNorm(h)); a linear read-out: a residual block with layer norm."""

    def __init__(self, d=8, width=8):
        super().__init__()
        self.inp, self.norm = nn.Linear(d, width), nn.LayerNorm(width)
        self.hidden, self.out = nn.Linear(width, width), nn.Linear(width, 1)

    def forward(self, x):
        h = self.inp(x)
        return self.out(h + torch.tanh(self.hidden(self.norm(h))))


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 1))


def cnn_trial(loss="square"):
    return mc.ModuleTrial(small_cnn, 3, labels="random_sign", loss=loss, input_shape=(1, 6, 6))


def residual_trial(loss="square"):
    return mc.ModuleTrial(ResidualBlock, 3, labels="random_sign", loss=loss)


def autograd_blocks(trial, draw):
    """Per-layer Gram blocks by a plain loop: for each trial and example, torch.autograd.grad of its loss."""
    from torch.func import functional_call

    count = next(iter(draw.network.values())).shape[0]
    out = np.zeros((count, len(trial.block_names()), trial.n_samples, trial.n_samples))
    for c in range(count):
        params = {k: torch.tensor(np.asarray(v[c]), requires_grad=True) for k, v in draw.network.items()}
        X = torch.tensor(np.asarray(draw.X[c])).reshape(trial.n_samples, *trial.input_shape)
        grads = []
        for i in range(trial.n_samples):
            g = functional_call(trial.module, params, (X[i:i + 1],)).reshape(())
            loss = 0.5 * (g - float(draw.y[c, i])) ** 2
            grads.append(torch.autograd.grad(loss, list(params.values())))
        for b, names in enumerate(trial.groups):
            index = [list(params).index(n) for n in names]
            J = torch.stack([torch.cat([grads[i][k].reshape(-1) for k in index]) for i in range(trial.n_samples)])
            out[c, b] = (J @ J.T).numpy()
    return out


@pytest.mark.parametrize("make", [cnn_trial, residual_trial], ids=["cnn", "residual_layernorm"])
def test_the_gram_blocks_of_a_module_trial_are_its_per_example_autograd_gradients(make):
    trial = make()
    draw = trial.draw(NormalSource.numpy(5), 3)
    np.testing.assert_allclose(trial.blocks(draw), autograd_blocks(trial, draw), rtol=1e-10, atol=1e-14)
    assert trial.block_names() == (("0", "3") if make is cnn_trial else ("inp", "norm", "hidden", "out"))


def test_a_module_trial_of_the_papers_network_is_its_mlp_trial_from_the_same_normals():
    """nn.Sequential with the MLP's Gaussian laws draws the same normals in the same order: the same trials."""
    d, width, N = 6, 12, 4
    net = mc.MLP(d, width, 2, activation="tanh")

    def torch_mlp():
        return nn.Sequential(nn.Linear(d, width, bias=False), nn.Tanh(), nn.Linear(width, width, bias=False),
                             nn.Tanh(), nn.Linear(width, 1, bias=False), nn.Tanh())

    laws = {f"{2 * p}.weight": mc.ParameterLaw.gaussian(net.weight_std(p)) for p in range(3)}
    module = mc.ModuleTrial(torch_mlp, N, labels="random_sign", loss="logistic", laws=laws)
    paper = mc.MLPTrial(net, N, labels="random_sign", loss="logistic", method="dense")
    assert module.normals_per_trial() == paper.normals_per_trial() == 6 * 12 + 12 * 12 + 12 + N * d + N
    a, b = mc.sample_confusion(module, 40, seed=3), mc.sample_confusion(paper, 40, seed=3)
    assert set(a.stats) == set(b.stats)
    for name in a.stats:
        np.testing.assert_allclose(a.stats[name], b.stats[name], rtol=1e-12, atol=1e-13, err_msg=name)
    xi = np.random.default_rng(1).standard_normal((16, paper.normals_per_trial()))
    for statistic in ("min_cosine", "eta_star_layer1"):
        va, ca, pa = TrialStatistic(module, statistic)(xi)
        vb, cb, pb = TrialStatistic(paper, statistic)(xi)
        np.testing.assert_allclose(va, vb, rtol=1e-12, atol=1e-14)
        assert np.array_equal(ca, cb) and np.array_equal(pa, pb)


@pytest.mark.parametrize("make, threshold", [(cnn_trial, -0.969), (residual_trial, -0.966)],
                         ids=["cnn", "residual_layernorm"])
def test_rare_tail_of_a_module_agrees_with_plain_monte_carlo_near_1e_3(make, threshold):
    """Pr[min cosine < threshold] ~ 2e-3: subset simulation against 40,000 plain trials of sample_confusion."""
    trial = make()
    trials = 40_000
    plain = mc.sample_confusion(trial, trials, seed=11).stats["min_cosine"]
    p = float(np.mean(plain < threshold))
    assert 5e-4 < p < 5e-3  # near 1e-3, where the comparison is made
    tail = mc.rare_tail(trial, statistic="min_cosine", direction="lower", threshold=threshold, seed=2,
                        population=400, repeats=8)
    se_plain = math.sqrt(p * (1 - p) / trials)
    se_tail = (tail.interval[1] - tail.interval[0]) / (2 * stats.t.ppf(0.975, 7))
    assert abs(tail.estimate - p) < 4 * math.hypot(se_plain, se_tail), (tail.estimate, tail.interval, p)
    assert tail.config["module"] == "Sequential" if make is cnn_trial else "ResidualBlock"


def test_laws_a_user_callable_orthogonal_uniform_and_the_torch_defaults():
    xi = np.random.default_rng(0).standard_normal((2, 10_000))
    trial = mc.ModuleTrial(ResidualBlock, 2, labels="random_sign", loss="square",
                           laws={"inp.weight": lambda z: 0.5 * z, "hidden.weight": mc.ParameterLaw.orthogonal(2.0)})
    source = ReplaySource(xi[:, :trial.normals_per_trial()])
    draw = trial.draw(source, 2)
    source.finish()
    # the user's law is applied to the first 64 normals of each trial (inp.weight is drawn first, 8 x 8)
    np.testing.assert_array_equal(draw.network["inp.weight"], 0.5 * xi[:, :64].reshape(2, 8, 8))
    W = draw.network["hidden.weight"]
    np.testing.assert_allclose(W @ W.transpose(0, 2, 1), np.broadcast_to(4 * np.eye(8), (2, 8, 8)), atol=1e-12)
    # torch's default for nn.Linear(8, .): uniform on [-1/sqrt(8), 1/sqrt(8)], weight and bias; layer norm 1 and 0
    many = trial.draw(NormalSource.numpy(1), 500).network
    bound = 1 / math.sqrt(8)
    values = np.concatenate([many["out.weight"].ravel(), many["inp.bias"].ravel()])
    assert stats.kstest(values, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
    assert np.all(many["norm.weight"] == 1) and np.all(many["norm.bias"] == 0)
    assert trial.config()["laws"]["out.weight"] == f"uniform({bound:g})"


def test_module_trials_refuse_what_they_cannot_draw_or_compute():
    with pytest.raises(ValueError, match=r"'laws' names \['nope'\]"):
        mc.ModuleTrial(ResidualBlock, 3, labels="random_sign", loss="square", laws={"nope": mc.ParameterLaw.gaussian(1.0)})

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.scale = nn.Linear(4, 1), nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.scale * self.lin(x)

    with pytest.raises(ValueError, match=r"parameter 'scale' of a Scaled has no default law"):
        mc.ModuleTrial(Scaled, 3, labels="random_sign", loss="square", input_shape=(4,))
    two_outputs = mc.ModuleTrial(lambda: nn.Linear(4, 2), 3, labels="random_sign", loss="square")
    with pytest.raises(ValueError, match="one output per example"):
        mc.sample_confusion(two_outputs, 8, seed=0)
    with pytest.raises(ValueError, match="'input_shape' is needed"):
        mc.ModuleTrial(small_cnn, 3, labels="random_sign", loss="square")
    with pytest.raises(ValueError, match=r"argument\(s\) 'loss' belong to the Trial"):
        mc.sample_confusion(residual_trial(), 8, seed=0, loss="square")
    with pytest.raises(TypeError, match="argument 'module' must be a torch.nn.Module"):
        mc.ModuleTrial(3, 3, labels="random_sign", loss="square")
