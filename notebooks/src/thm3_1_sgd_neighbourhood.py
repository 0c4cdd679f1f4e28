# %% [markdown]
# # Theorem 3.1: linear convergence to a neighbourhood set by gradient confusion
#
# Least-squares finite sums whose $f_i$ are individually PL and $L$-smooth, in three confusion regimes: orthonormal
# rows ($\eta = 0$), rows on the sphere with $d > N$, and noisy targets with $d < N$.  SGD is simulated with
# `montecarlo.simulate_sgd`; the bound uses the largest confusion $\eta$ met along the simulated paths.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
REGIMES = {"orthogonal (eta = 0)": (20, 40, "orthogonal", 0.0), "d > N, sphere": (20, 60, "sphere", 0.0),
           "d < N, noisy": (20, 10, "sphere", 0.3)}   # name: (N, d, geometry, noise)
RUNS = {"fast": 40, "small": 200, "large": 2000}[SCALE]
EPOCHS = {"fast": 20, "small": 40, "large": 200}[SCALE]
STEP = 0.5          # alpha = STEP / (N L), inside (0, 2 / (N L))
SEED = 2

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import montecarlo as mc
import theory

for result in (theory.theorem_3_1, theory.noise_floor):
    display(Markdown(f"**{result.name}** — {result.source.describe()}"))
    display(Math(result.latex()))
    for hypothesis in result.hypotheses:
        display(Markdown(f"- {hypothesis.text}"))

# %% [markdown]
# ## SGD paths and the bound at every iteration

# %%
runs = {}
for k, (name, (N, d, geometry, noise)) in enumerate(REGIMES.items()):
    problem = mc.least_squares(N, d, np.random.SeedSequence(SEED, spawn_key=(k,)), geometry=geometry, noise=noise)
    alpha = STEP / (problem.N * problem.L)
    path = mc.simulate_sgd(problem, alpha, EPOCHS * N, RUNS, seed=(SEED, k))
    mean, se = path.mean_gap()
    values = dict(N=problem.N, L=float(problem.L), mu=float(problem.mu), alpha=float(alpha),
                  eta=float(path.eta.max()), Delta0=float(path.gap[0, 0]))
    T = np.asarray(path.iterations)
    runs[name] = dict(values=values, T=T.tolist(), gap=np.asarray(mean).tolist(), se=np.asarray(se).tolist(),
                      bound=np.asarray(theory.theorem_3_1.evaluate(T=T, **values), dtype=float).tolist())
    print(f"{name:22s} L = {values['L']:.3f}, mu = {values['mu']:.3f}, eta = {values['eta']:.2e}, "
          f"final gap {mean[-1]:.2e} (bound {runs[name]['bound'][-1]:.2e})")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for (name, run), colour in zip(runs.items(), ("C0", "C1", "C2")):
    T, gap, se = np.array(run["T"]), np.array(run["gap"]), np.array(run["se"])
    ax.loglog(T + 1, np.maximum(gap, 1e-300), color=colour, lw=2, label=f"{name}: SGD mean")
    ax.loglog(T + 1, run["bound"], color=colour, ls="--", lw=1)
ax.plot([], [], "k--", label="Theorem 3.1")
ax.set_ylim(1e-12, None)
ax.set_xlabel("iteration T + 1")
ax.set_ylabel(r"$\mathbb{E}[F(w_T) - F^\star]$")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict, from the numbers above (the mean less three standard errors, against the bound)

# %%
holds = {name: bool(np.all(np.array(r["gap"]) - 3 * np.array(r["se"]) <= np.array(r["bound"]) * (1 + 1e-9) + 1e-15))
         for name, r in runs.items()}
display(Markdown("\n".join(f"- {name}: the bound **{'holds' if ok else 'is violated'}** at every iteration"
                           for name, ok in holds.items())))
CHECK = dict(runs=runs, holds=holds)
