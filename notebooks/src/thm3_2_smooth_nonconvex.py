# %% [markdown]
# # Theorem 3.2 (smooth objectives): the printed form against the re-derived one
#
# Rescaling every $f_i$ to $s f_i$ (and $\alpha$ to $\alpha/s$) leaves the SGD iterates unchanged, so a correct bound
# must transform like its left-hand side, a squared gradient norm ($s^2$).  The printed first term
# $\rho (F(w_1) - F^\star)/T$ scales like $s$; the re-derived $(\rho/\alpha)(F(w_1) - F^\star)/T$ like $s^2$.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
SCALES_S = (1.0, 10.0, 100.0, 1000.0)   # the rescalings s tried on the counterexample

# %%
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import theory

for result in (theory.theorem_3_2_printed, theory.theorem_3_2_rederived):
    display(Markdown(f"**{result.name}** — {result.source.describe()}"))
    display(Math(result.latex()))

# %% [markdown]
# ## The scale test, symbolically

# %%
scale = {}
for result in (theory.theorem_3_2_printed, theory.theorem_3_2_rederived, theory.theorem_3_1):
    consistent, defect = theory.scale_test(result)
    scale[result.key] = bool(consistent)
    print(f"{result.name:28s} consistent: {consistent}   defect: {defect}")

# %% [markdown]
# ## The two-example counterexample, rescaled
#
# $N = 2$, $f_i(w) = 4 w_i^2$ on $\mathbb{R}^2$ (orthogonal gradients everywhere, so $\eta = 0$), one step from
# $w_1 = (1, 0)$.  Under $f_i \to s f_i$ the left side is $16 s^2$.

# %%
example = dict(theory.THEOREM_3_2_COUNTEREXAMPLE)
lhs = example.pop("lhs")
rows = []
for s in SCALES_S:
    point = dict(example)
    for key, power in (("L", 1), ("Delta0", 1), ("eta", 2), ("alpha", -1)):
        if key in point:
            point[key] = point[key] * s**power
    rows.append(dict(s=s, lhs=lhs * s**2, printed=float(theory.theorem_3_2_printed.evaluate(**point)),
                     rederived=float(theory.theorem_3_2_rederived.evaluate(**point))))
    print(f"s = {s:6g}: left side {rows[-1]['lhs']:.4g}, printed bound {rows[-1]['printed']:.4g}, "
          f"re-derived bound {rows[-1]['rederived']:.4g}")

fig, ax = plt.subplots(figsize=(5.5, 4))
for key, style in (("lhs", "ko-"), ("printed", "C3s--"), ("rederived", "C0^--")):
    ax.loglog(SCALES_S, [r[key] for r in rows], style, label=key)
ax.set_xlabel("rescaling s")
ax.set_ylabel(r"$|\nabla F(w_1)|^2$ and the bounds")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Verdict, from the numbers above

# %%
printed_violated = any(r["lhs"] > r["printed"] for r in rows)
rederived_holds = all(r["lhs"] <= r["rederived"] * (1 + 1e-12) for r in rows)
display(Markdown(f"- Printed Theorem 3.2: **{'violated' if printed_violated else 'not violated'}** on the "
                 f"counterexample; scale test {'passed' if scale['theorem_3_2_printed'] else 'failed'}\n"
                 f"- Re-derived form: **{'holds' if rederived_holds else 'violated'}**; scale test "
                 f"{'passed' if scale['theorem_3_2_rederived'] else 'failed'}"))
CHECK = dict(example=example, rows=rows, scale=scale)
