# %% [markdown]
# # Theorem 6.1: orthogonal deep linear networks
#
# With Haar-orthogonal square layers (width $= d$) and output scale $\gamma = 1/\sqrt{2\beta}$, a deep linear network
# is an isometry up to $\gamma$, so the per-example gradient cosines are $\mathrm{sign}(r_i r_j)\,\langle x_i,
# x_j\rangle$ exactly, at every depth ($r_i$ the residuals); Gaussian layers spread them.  This notebook computes the
# exact Gram with `montecarlo.gradient_gram` and measures the distance to that identity.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
DEPTHS = (1, 2, 4, 8, 16)
D, N = 16, 8
TRIALS = {"fast": 4, "small": 32, "large": 256}[SCALE]
SEED = 6

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import montecarlo as mc
import theory

for result in (theory.theorem_6_1_identity, theory.theorem_6_1):
    display(Markdown(f"**{result.name}** — {result.source.describe()}"))
    display(Math(result.latex()))
    for hypothesis in result.hypotheses:
        display(Markdown(f"- {hypothesis.text}"))

# %% [markdown]
# ## The exact Gram of random networks, against $\mathrm{sign}(r_i r_j)\langle x_i, x_j\rangle$
#
# With the square loss and linear layers the sign of $r_i r_j$ is the sign of $G_{ij}$ itself, so the identity says
# $|\cos(\nabla f_i, \nabla f_j)| = |\langle x_i, x_j\rangle|$.

# %%
rng = np.random.default_rng(SEED)
deviation = {"orthogonal": [], "gaussian": []}
for depth in DEPTHS:
    for init in deviation:
        net = mc.MLP(input_dim=D, width=D, depth=depth, activation="linear", init=init, gamma=1 / np.sqrt(2 * depth),
                     output_activation=False)
        worst = 0.0
        for _ in range(TRIALS):
            X = mc.sample_sphere(N, D, rng)
            y = mc.LinearTeacher()(X, rng)
            G = mc.gradient_gram(net, net.init(rng), X, y, loss="square")
            worst = max(worst, float(np.max(np.abs(np.abs(mc.cosine_matrix(G)) - np.abs(X @ X.T)))))
        deviation[init].append(worst)
    print(f"depth {depth:2d}: max | |cos| - |<x_i, x_j>| |  orthogonal {deviation['orthogonal'][-1]:.2e}   "
          f"gaussian {deviation['gaussian'][-1]:.2e}")

# %%
fig, ax = plt.subplots(figsize=(5.5, 4))
for init, marker in (("orthogonal", "o"), ("gaussian", "s")):
    ax.semilogy(DEPTHS, np.maximum(deviation[init], 1e-17), marker + "-", label=f"{init} layers")
ax.set_xscale("log", base=2)
ax.set_xlabel(r"depth $\beta$")
ax.set_ylabel(r"max over pairs of $|\,|\cos| - |\langle x_i, x_j\rangle|\,|$")
ax.set_title(rf"linear nets, width $= d = {D}$, $N = {N}$, {TRIALS} draws per point", fontsize=10)
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict, from the numbers above

# %%
exact = max(deviation["orthogonal"]) < 1e-8
spread = min(deviation["gaussian"]) > 1e-3
display(Markdown(f"- Orthogonal layers: the identity **{'holds' if exact else 'fails'}** to "
                 f"{max(deviation['orthogonal']):.1e} at every depth\n"
                 f"- Gaussian layers: cosines **{'spread' if spread else 'do not spread'}** "
                 f"(smallest deviation {min(deviation['gaussian']):.2e})"))
CHECK = dict(depths=list(DEPTHS), d=D, N=N, trials=TRIALS, orthogonal=deviation["orthogonal"],
             gaussian=deviation["gaussian"])
