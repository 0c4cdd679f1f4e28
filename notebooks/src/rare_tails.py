# %% [markdown]
# # The 1e-10 tail of your own network
#
# Plain Monte Carlo sees a probability down to about `1 / trials`: a million trials and $10^{-6}$ is the floor.
# `montecarlo.rare_tail` goes further.  Every random number of a trial (the network's parameters from their
# initialisation, `N` points uniform on the sphere, their labels) is a function of standard normals, so subset
# simulation can walk the trial's normals level by level into the tail: each level keeps the most extreme tenth of
# its population and grows it back by pCN moves, and the product of the level probabilities reaches $10^{-10}$ in ten
# levels.  Independent repeats give the estimate a 95% interval.
#
# This notebook asks one question of two networks -- *at which level $s$ is $\Pr[\min_{i \neq j}
# \cos(\nabla f_i, \nabla f_j) < s] = 10^{-10}$?* -- for a residual block with layer norm written as a torch module
# (`ModuleTrial`) and for the paper's network (`MLPTrial`), reads the answer off the tail curve with
# `threshold_at(1e-10)`, and checks the curve against plain Monte Carlo where plain Monte Carlo can see it.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
D, WIDTH, N = 8, 16, 4      # input dimension, width, examples per trial
THRESHOLD = -0.9999         # the run's threshold: deep enough that the tail curve passes TARGET
TARGET = 1e-10              # the probability whose threshold we want
VISIBLE = (1e-1, 1e-2, 1e-3)  # probabilities plain Monte Carlo can see: where the two are compared
POPULATION = {"fast": 200, "small": 500, "large": 2000}[SCALE]
REPEATS = {"fast": 2, "small": 8, "large": 20}[SCALE]
PLAIN_TRIALS = {"fast": 4000, "small": 100_000, "large": 1_000_000}[SCALE]
GRID = 5000                 # points of the tail curve, evenly spaced in s from the median to THRESHOLD
CONDITIONAL_NETWORKS = {"fast": 200, "small": 2000, "large": 20000}[SCALE]
SEED = 26

# %%
import dataclasses

import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display
from scipy import stats
from torch import nn

import montecarlo as mc

# %% [markdown]
# ## Two trials: your torch module, and the paper's network
#
# A `ModuleTrial` draws every parameter of the module from torch's default initialisation (here `nn.Linear`:
# uniform on $\pm 1/\sqrt{\mathrm{fan\_in}}$; `nn.LayerNorm`: weight 1, bias 0), written as a law of standard
# normals, and computes the exact per-example gradient Gram by `torch.func`.  An `MLPTrial` is the paper's network
# under Strategy 4.1.  Both see the same data (`N` points uniform on $S^{d-1}$, random $\pm 1$ labels, square loss).


# %%
class Block(nn.Module):
    """A residual block with layer norm: x -> h = W_in x; h + tanh(W_h LayerNorm(h)); a linear read-out."""

    def __init__(self, d=D, width=WIDTH):
        super().__init__()
        self.inp, self.norm = nn.Linear(d, width), nn.LayerNorm(width)
        self.hidden, self.out = nn.Linear(width, width), nn.Linear(width, 1)

    def forward(self, x):
        h = self.inp(x)
        return self.out(h + torch.tanh(self.hidden(self.norm(h))))


trials = {
    "residual block (ModuleTrial)": mc.ModuleTrial(Block, N, labels="random_sign", loss="square"),
    "paper's network (MLPTrial)": mc.MLPTrial(mc.MLP(input_dim=D, width=WIDTH, depth=2, activation="tanh"), N,
                                              labels="random_sign", loss="square"),
}
for name, trial in trials.items():
    print(f"{name}: {trial.normals_per_trial()} standard normals per trial")

# %% [markdown]
# ## The rare tail: `rare_tail`, then `threshold_at(1e-10)`
#
# `direction="lower"` asks for $\Pr[S < s]$ of the statistic `min_cosine`.  The run's tail curve covers the levels
# from the median of the plain draws down to `THRESHOLD` on `grid_points` evenly spaced values of $s$;
# `threshold_at(p)` inverts it (linearly in $\log p$ between grid points) and refuses a `p` the curve does not
# reach.  The deep tail is crowded near $s = -1$, so the grid must be fine there: the last two columns read the same
# curves thinned to the default 200 points.

# %%
tails = {}
for name, trial in trials.items():
    tails[name] = mc.rare_tail(trial, statistic="min_cosine", direction="lower", threshold=THRESHOLD, seed=SEED,
                               population=POPULATION, repeats=REPEATS, grid_points=GRID)
    print(f"{name}:\n  {tails[name]!r}")


def thinned(tail, points=200):
    """The same result with its tail curve at ``points`` of its grid points (evenly spaced, both ends kept)."""
    keep = np.unique(np.linspace(0, len(tail.tail) - 1, points).round().astype(int))
    return dataclasses.replace(tail, tail=tail.tail.iloc[keep].reset_index(drop=True))


probabilities = (*VISIBLE, 1e-6, TARGET)
levels = pd.DataFrame({name: [tail.threshold_at(p) for p in probabilities] for name, tail in tails.items()},
                      index=[f"{p:.0e}" for p in probabilities])
for name, tail in tails.items():
    levels[f"{name.split(' (')[0]}, 200-point grid"] = [thinned(tail).threshold_at(p) for p in probabilities]
levels.index.name = "Pr[min cosine < s] ="
display(levels.round(5))

# %% [markdown]
# ## Plain Monte Carlo where it can see: `sample_confusion`
#
# At each probability of `VISIBLE`, the tail curve names a level $s$; among the plain trials the share below $s$
# is a binomial count with an exact (Clopper-Pearson) 95% interval.  The two should agree within their errors.

# %%
def curve_at(tail, s):
    """The tail curve and its interval at level s: log-linear between grid points (as threshold_at), the interval's
    ends linear (a lower end may be 0)."""
    x = tail.tail["s"].to_numpy()[::-1]                         # increasing
    column = {c: tail.tail[c].to_numpy()[::-1] for c in ("probability", "lower", "upper")}
    return (float(np.exp(np.interp(s, x, np.log(column["probability"])))),
            float(np.interp(s, x, column["lower"])), float(np.interp(s, x, column["upper"])))


rows, plain = [], {}
for name, trial in trials.items():
    plain[name] = mc.sample_confusion(trial, PLAIN_TRIALS, seed=SEED + 1).stats["min_cosine"]
    for p in VISIBLE:
        s = tails[name].threshold_at(p)
        k = int(np.sum(plain[name] < s))
        low, high = mc.clopper_pearson(k, PLAIN_TRIALS)
        at, at_lower, at_upper = curve_at(tails[name], s)
        rows.append(dict(network=name, p=p, s=s, k=k, n=PLAIN_TRIALS, mc=k / PLAIN_TRIALS, mc_lower=float(low),
                         mc_upper=float(high), tail=at, tail_lower=at_lower, tail_upper=at_upper))
comparison = pd.DataFrame(rows)
with pd.option_context("display.float_format", "{:.5g}".format):
    display(comparison.set_index(["network", "p"]).drop(columns="n"))

# %% [markdown]
# ## Below plain Monte Carlo, for the paper's network: the conditional estimator
#
# For the paper's network with random $\pm 1$ labels and the square loss with $|g| < 1$ (a tanh output), the label
# sign factors out of the cosine, and `conditional_cosine_tail` integrates a pair's inner product against its exact
# Beta law: only the network, one point and one direction are sampled, so it reaches $10^{-10}$ without splitting.
# It brackets the union over the $N(N-1)/2$ pairs (`bonferroni` to `union`), and its 95% `interval` covers both
# ends.  Here it is asked at the levels subset simulation named for $10^{-3}$, $10^{-6}$ and $10^{-10}$: where its
# hypotheses hold it is the sharper tool, since it samples no rare event.

# %%
paper = "paper's network (MLPTrial)"
deep = (VISIBLE[-1], 1e-6, TARGET)
taus = [-tails[paper].threshold_at(p) for p in deep]
conditional = mc.conditional_cosine_tail(trials[paper].net, N, taus, networks=CONDITIONAL_NETWORKS, seed=SEED)
for hypothesis in conditional.hypotheses:
    print(f"- {hypothesis}")
deep_rows = []
for p, tau, union, bonferroni, low, high, branches in zip(deep, taus, conditional.union, conditional.bonferroni,
                                                           *conditional.interval, conditional.branches):
    at, at_lower, at_upper = curve_at(tails[paper], -tau)
    deep_rows.append(dict(p=p, s=-tau, tail=at, tail_lower=at_lower, tail_upper=at_upper, union=float(union),
                          bonferroni=float(bonferroni), lower=float(low), upper=float(high),
                          branch_minus=float(branches[0] / branches.sum())))
with pd.option_context("display.float_format", "{:.5g}".format):
    display(pd.DataFrame(deep_rows).set_index("p"))

# %% [markdown]
# ## The tail curves
#
# Each panel: the tail curve with its 95% interval from the repeats, the plain Monte Carlo's empirical tail down to
# $1/\mathrm{trials}$, its binomial intervals at the compared levels, and the level of $10^{-10}$.  The horizontal
# axis is $1 + s$, the distance from a perfectly opposed pair.

# %%
fig, axes = plt.subplots(1, len(tails), figsize=(5.2 * len(tails), 4), sharey=True)
for ax, (name, tail) in zip(np.atleast_1d(axes), tails.items()):
    curve = tail.tail
    ax.plot(1 + curve["s"], curve["probability"], "C0-", label="rare_tail (mean of repeats)")
    ax.fill_between(1 + curve["s"], np.maximum(curve["lower"], 1e-14), curve["upper"], color="C0", alpha=0.2,
                    label="95% interval")
    ordered = np.sort(plain[name])
    ax.step(1 + ordered, np.arange(1, ordered.size + 1) / ordered.size, "C1-", where="post", lw=1,
            label=f"plain Monte Carlo, {PLAIN_TRIALS:,} trials")
    here = comparison[comparison["network"] == name]
    ax.errorbar(1 + here["s"], here["mc"], yerr=[here["mc"] - here["mc_lower"], here["mc_upper"] - here["mc"]],
                fmt="o", color="C1", capsize=3)
    s10 = tail.threshold_at(TARGET)
    ax.axhline(TARGET, color="k", ls=":", lw=1)
    ax.plot([1 + s10], [TARGET], "kx", ms=9, label=rf"threshold_at(1e-10): $s = {s10:.5f}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-14, 1)
    ax.set_xlabel(r"$1 + s$")
    ax.set_title(name, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
np.atleast_1d(axes)[0].set_ylabel(r"$\Pr[\min\ \cos < s]$")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the numbers say
#
# The agreement is measured in standard errors: the binomial one of the plain count and the repeats' one of the
# tail curve ($(\mathrm{upper} - \mathrm{lower}) / (2\, t_{R-1})$).  Below $1/\mathrm{trials}$ nothing checks the
# curve but its own repeats.  The event $\min\cos < s$ splits by the label-sign branch of the pair attaining the
# minimum, and a repeat whose population fell into one branch estimates that branch's part only: such repeats are
# flagged in `tail.warnings` (with levels whose chains made no move across branches).  The reported estimate is the
# mean of the repeats; more repeats and a larger population narrow its interval.

# %%
t_quantile = stats.t.ppf(0.975, REPEATS - 1)
lines = []
for name, tail in tails.items():
    here = comparison[comparison["network"] == name]
    se = np.hypot(np.sqrt(here["tail"] * (1 - here["tail"]) / here["n"]),
                  (here["tail_upper"] - here["tail_lower"]) / (2 * t_quantile))
    z = ((here["mc"] - here["tail"]) / se).to_numpy()
    lines.append(f"- **{name}**: $\\Pr[\\min\\cos < {tail.threshold_at(TARGET):.5f}] = 10^{{-10}}$ "
                 f"(at $10^{{-6}}$: $s = {tail.threshold_at(1e-6):.5f}$); at the run's threshold {THRESHOLD} the "
                 f"estimate is {tail.estimate:.3g} [{tail.interval[0]:.3g}, {tail.interval[1]:.3g}] from "
                 f"{len(tail.estimates)} repeats, {tail.evaluations:,} evaluations.  Against plain Monte Carlo at "
                 f"{', '.join(f'{p:g}' for p in VISIBLE)}: z = {', '.join(f'{v:+.1f}' for v in z)} "
                 f"({'agree' if np.all(np.abs(z) < 4) else 'disagree'} within 4 s.e.); "
                 f"{len(tail.collapsed_repeats)} of {len(tail.estimates)} repeats collapsed into one branch "
                 f"({len(tail.warnings)} flags in `tail.warnings`).")
overlap = [max(r["tail_lower"], r["lower"]) <= min(r["tail_upper"], r["upper"]) for r in deep_rows]
estimates = ", ".join(f"{r['union']:.3g} [{r['lower']:.3g}, {r['upper']:.3g}]" for r in deep_rows)
minus = 100 * np.mean([r["branch_minus"] for r in deep_rows])
lines.append(f"- **conditional estimator, paper's network**: at the levels of {', '.join(f'{p:g}' for p in deep)} "
             f"it gives {estimates}: {sum(overlap)} of {len(overlap)} intervals overlap the tail curve's; the pair "
             f"event lives {minus:.0f}% in the branch $y_i y_j = -1$.")
display(Markdown("\n".join(lines)))


def curve_of(tail):
    return {column: tail.tail[column].tolist() for column in ("s", "probability", "lower", "upper")}


CHECK = dict(target=TARGET, threshold=THRESHOLD, population=POPULATION, repeats=REPEATS, trials=PLAIN_TRIALS,
             networks={name: dict(estimate=tail.estimate, interval=list(tail.interval), curve=curve_of(tail),
                                  threshold_at=[[p, tail.threshold_at(p)] for p in probabilities],
                                  coarse_threshold_at=thinned(tail).threshold_at(TARGET),
                                  visible=comparison[comparison["network"] == name].drop(columns="network")
                                  .to_dict("records"),
                                  warnings=len(tail.warnings), collapsed_repeats=len(tail.collapsed_repeats))
                       for name, tail in tails.items()},
             conditional=deep_rows, conditional_networks=CONDITIONAL_NETWORKS)
