# %% [markdown]
# # Theorem 5.1: small weights
#
# Orthogonal weights scaled by a gain $\le 1$ satisfy Assumption 1 ($\|W_p\| \le 1$).  Theorem 5.1 then bounds
# $\Pr[\eta^* \le \eta]$ from below by $1 - N^2 \exp(-c\, d\, \eta^2 / (16 \zeta_0^4 (\beta + 2)^4))$; its constant
# $c$ is fitted here on the Monte Carlo grid over depth.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
DEPTHS = (1, 2, 4)
WIDTH, D, N = 32, 32, 8
GAIN = 1.0
ETA = 0.02
TRIALS = {"fast": 48, "small": 400, "large": 4000}[SCALE]
SEED = 7

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import montecarlo as mc
import theory

result = theory.theorem_5_1
display(Markdown(f"**{result.name}** — {result.source.describe()}"))
display(Math(result.latex()))
for hypothesis in result.hypotheses:
    display(Markdown(f"- {hypothesis.text}"))

# %% [markdown]
# ## Assumption 1 on one draw, then the Monte Carlo at each depth

# %%
rng = np.random.default_rng(SEED)
net = mc.MLP(input_dim=D, width=WIDTH, depth=max(DEPTHS), activation="tanh", init="orthogonal", gain=GAIN)
weights = net.init(rng).weights
spectral = [float(np.linalg.norm(np.asarray(W), 2)) for W in weights]
print("largest singular value of each W_p:", np.round(spectral, 12))

rows = []
for depth in DEPTHS:
    net = mc.MLP(input_dim=D, width=WIDTH, depth=depth, activation="tanh", init="orthogonal", gain=GAIN)
    sample = mc.sample_confusion(net, n_samples=N, trials=TRIALS, labels="tanh", loss="square", seed=SEED)
    tail = mc.confusion_tail(sample, etas=[ETA]).iloc[0]
    rows.append(dict(depth=depth, k=int(tail["k"]), n=int(tail["n"]), p_confused=float(tail["p"]),
                     p_ok_lower=1 - float(tail["upper"]), p_ok_upper=1 - float(tail["lower"]),
                     p_confused_lower=float(tail["lower"]), p_confused_upper=float(tail["upper"])))
    print(f"depth {depth}: Pr[eta* > {ETA}] = {tail['p']:.3f}  [{tail['lower']:.3f}, {tail['upper']:.3f}]")

# %%
depths = np.array(DEPTHS, dtype=float)
values = dict(beta=depths, d=D, N=N, eta=ETA)
fit = theory.fit_constant(result, "c", np.array([r["p_confused_lower"] for r in rows]),
                          p_upper=np.array([r["p_confused_upper"] for r in rows]), **values)
c = float(fit.upper)
bound = np.asarray(result.evaluate(c=c, **values), dtype=float) if np.isfinite(c) else np.full(len(rows), np.nan)
print(fit.describe())

fig, ax = plt.subplots(figsize=(5.5, 4))
p_ok = 1 - np.array([r["p_confused"] for r in rows])
ax.errorbar(depths, p_ok, yerr=[p_ok - [r["p_ok_lower"] for r in rows], [r["p_ok_upper"] for r in rows] - p_ok],
            fmt="o-", label=r"Monte Carlo $\Pr[\eta^* \leq \eta]$ (95%)")
if np.isfinite(c):
    ax.plot(depths, np.clip(bound, 0, 1), "k--", label=rf"Theorem 5.1 with $c = {c:.3g}$")
ax.set_xlabel(r"depth $\beta$")
ax.set_ylabel(r"$\Pr[\eta^* \leq \eta]$")
ax.set_title(rf"tanh, orthogonal $\times$ {GAIN}, width {WIDTH}, $d = {D}$, $N = {N}$, $\eta = {ETA}$", fontsize=9)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict, from the numbers above

# %%
assumption = max(spectral) <= 1 + 1e-9
display(Markdown(f"- Assumption 1 ($\\|W_p\\| \\le 1$) on the drawn weights: **{'holds' if assumption else 'fails'}** "
                 f"(largest {max(spectral):.12f})\n- Fit of $c$: **{fit.verdict}** ({fit.describe()})"))
CHECK = dict(depths=list(DEPTHS), d=D, N=N, eta=ETA, gain=GAIN, spectral=spectral, rows=rows, c=c,
             bound=bound.tolist())
