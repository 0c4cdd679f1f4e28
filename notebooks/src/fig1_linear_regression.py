# %% [markdown]
# # Figure 1: over- vs under-parameterised linear regression
#
# SGD on least squares with $N = 100$ examples in $d = 80$ and $d = 120$ dimensions (paper section 2).  For least
# squares, $\nabla f_i = r_i a_i$, so the gradient cosines are $\pm\cos(a_i, a_j)$, whose spread shrinks like
# $1/\sqrt{d}$: for Gaussian rows $\mathrm{Var}\cos(a_i, a_j) = 1/d$ exactly.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
N = 100
DIMS = (80, 120)
RUNS = {"fast": 10, "small": 50, "large": 500}[SCALE]
EPOCHS = {"fast": 10, "small": 40, "large": 200}[SCALE]
SEED = 1

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import montecarlo as mc
import theory

result = theory.sphere_inner_product_variance
display(Markdown(f"**{result.name}** — {result.source.describe()}"))
display(Math(result.latex()))

# %% [markdown]
# ## The problems, their gradient cosines and SGD

# %%
i, j = np.triu_indices(N, k=1)
out = {}
for k, d in enumerate(DIMS):
    problem = mc.least_squares(N, d, np.random.SeedSequence(SEED, spawn_key=(k,)), geometry="gaussian", noise=0.1)
    A = np.asarray(problem.A)
    unit = A / np.linalg.norm(A, axis=1, keepdims=True)
    cosines = (unit @ unit.T)[i, j]
    path = mc.simulate_sgd(problem, 0.5 / (N * problem.L), EPOCHS * N, RUNS, seed=(SEED, k), record_every=N)
    mean, se = path.mean_gap()
    out[d] = dict(cosines=cosines, epochs=np.asarray(path.iterations) / N, gap=np.asarray(mean))
    print(f"d = {d}: d * Var cos(a_i, a_j) = {d * cosines.var():.3f} (exact 1); gap after {EPOCHS} epochs "
          f"{mean[-1]:.3e}")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
for d, colour in zip(DIMS, ("C3", "C0")):
    label = f"d = {d} ({'over' if d > N else 'under'}-parameterised)"
    left.semilogy(out[d]["epochs"], out[d]["gap"], color=colour, label=label)
    right.hist(out[d]["cosines"], bins=60, density=True, histtype="step", color=colour, label=label)
left.set_xlabel("epoch")
left.set_ylabel(r"$\mathbb{E}[F(w) - F^\star]$")
right.set_xlabel(r"$\cos(a_i, a_j)$ (gradient cosines up to sign)")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict, from the numbers above

# %%
spread = {d: float(np.std(out[d]["cosines"])) for d in DIMS}
ratio = spread[DIMS[1]] / spread[DIMS[0]]
display(Markdown(f"- Spread of the cosines: {', '.join(f'{spread[d]:.4f} at d = {d}' for d in DIMS)}; ratio "
                 f"{ratio:.3f} against $\\sqrt{{{DIMS[0]}/{DIMS[1]}}} = {np.sqrt(DIMS[0] / DIMS[1]):.3f}$"))
CHECK = dict(N=N, dims=list(DIMS), var_times_d=[float(d * out[d]["cosines"].var()) for d in DIMS],
             mean_cos=[float(out[d]["cosines"].mean()) for d in DIMS], gap=[out[d]["gap"].tolist() for d in DIMS])
