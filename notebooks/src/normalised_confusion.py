# %% [markdown]
# # Normalised confusion: the minimum gradient cosine against width and depth
#
# Definition 2.1 measures confusion by $\eta^*$, which scales with the gradients; the normalised, scale-free version
# is the minimum cosine between per-example gradients.  The paper's qualitative claim: deeper networks have more
# negative minimum cosines, wider ones less.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
WIDTHS = (16, 64, 256)
DEPTHS = (1, 4)
D, N = 16, 8
ACTIVATION = "tanh"
TRIALS = {"fast": 32, "small": 300, "large": 3000}[SCALE]
SEED = 5

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import montecarlo as mc
import theory

for result in (theory.definition_2_1, theory.eta_star):
    display(Markdown(f"**{result.name}** — {result.source.describe()}"))
    display(Math(result.latex()))

# %% [markdown]
# ## Monte Carlo: `sample_confusion` on the grid; per trial the minimum cosine of the exact Gram

# %%
table = []
for depth in DEPTHS:
    for width in WIDTHS:
        net = mc.MLP(input_dim=D, width=width, depth=depth, activation=ACTIVATION)
        frame = mc.sample_confusion(net, n_samples=N, trials=TRIALS, labels="tanh", loss="square", seed=SEED).to_frame()
        m = frame["min_cosine"].to_numpy()
        table.append(dict(depth=depth, width=width, mean=float(m.mean()), se=float(m.std(ddof=1) / np.sqrt(m.size)),
                          low=float(m.min()), high=float(m.max()), eta_star_min=float(frame["eta_star"].min())))
        print(f"depth {depth}, width {width:4d}: mean min cosine {m.mean():+.3f} +- {table[-1]['se']:.3f}")

# %%
fig, ax = plt.subplots(figsize=(5.5, 4))
for depth in DEPTHS:
    g = [r for r in table if r["depth"] == depth]
    ax.errorbar([r["width"] for r in g], [r["mean"] for r in g], yerr=[2 * r["se"] for r in g], fmt="o-",
                label=f"depth {depth}")
ax.set_xscale("log", base=2)
ax.set_xlabel(r"width $\ell$")
ax.set_ylabel("mean minimum gradient cosine (± 2 s.e.)")
ax.set_title(rf"{ACTIVATION}, $d = {D}$, $N = {N}$, {TRIALS} trials per point", fontsize=10)
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict, from the numbers above: differences in units of their standard errors

# %%
def z(a, b):
    return (a["mean"] - b["mean"]) / np.hypot(a["se"], b["se"])


at = {(r["depth"], r["width"]): r for r in table}
depth_z = [z(at[(DEPTHS[0], w)], at[(DEPTHS[-1], w)]) for w in WIDTHS]      # > 0: deeper is more negative
width_z = [z(at[(b, WIDTHS[-1])], at[(b, WIDTHS[0])]) for b in DEPTHS]      # > 0: wider is less negative
display(Markdown(f"- Deeper is more negative: z = {', '.join(f'{v:+.1f}' for v in depth_z)} (by width) — "
                 f"**{'holds' if min(depth_z) > 2 else 'not shown'}**\n"
                 f"- Wider is less negative: z = {', '.join(f'{v:+.1f}' for v in width_z)} (by depth) — "
                 f"**{'holds' if min(width_z) > 2 else 'not shown'}**"))
CHECK = dict(widths=list(WIDTHS), depths=list(DEPTHS), N=N, trials=TRIALS, table=table, depth_z=depth_z,
             width_z=width_z)
