# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tour of `theory/`: every result of the paper as a checkable object
#
# Sankararaman, De, Xu, Huang, Goldstein, *The Impact of Neural Network Overparameterization on Gradient Confusion and Stochastic Gradient Descent* (ICML 2020).
#
# Each result is a `theory.Result`: its source (version, section, numbering and how reliably the text is known), its hypotheses, its statement as a sympy expression with the paper's unspecified absolute constants `c, c1, c2` left free, LaTeX, vectorised numerics and a check of the hypotheses at given values. This notebook renders every result, evaluates it at one example point and asserts what the property tests establish.

# %%
# %matplotlib inline
import os

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import theory

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" in the tests
FAST = SCALE == "fast"
print(f"{len(theory.RESULTS)} results")

# %% [markdown]
# ## The results and their sources

# %%
rows = ["| key | name | kind | source | free constants |", "|---|---|---|---|---|"]
for key, result in theory.RESULTS.items():
    constants = ", ".join(c.name for c in result.constants) or "-"
    rows.append(f"| `{key}` | {result.name} | {result.kind} | {result.source.describe()} | {constants} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# ## Every result rendered and evaluated at one example point
#
# The example point: $N = 32$ examples on $S^{63}$ ($d = 64$), width $\ell = 512$, depth $\beta = 8$, $\kappa = 4$, all free constants set to 1 (they are unknown: the Monte Carlo notebooks fit them), and an SGD problem with $L = 1$, $\mu = 0.5$, $\alpha = 0.001$, $T = 100$. The bounded-data forms need $\eta > 4$, so they get $\eta = 5$; the others $\eta = 0.5$.

# %%
EXAMPLE = dict(N=32, L=1.0, mu=0.5, alpha=1e-3, eta=0.5, T=100, Delta0=1.0, beta=8, width=512, d=64,
               kappa=4.0, r=1e-4, gamma=0.25, c=1.0, c1=1.0, c2=1.0, epsilon=0.1, delta=0.05,
               inner_min=-0.1, residual_i=0.3, residual_j=-0.2, x_inner=0.1, tau=0.2,
               weight_norm=1.0, data_norm=1.0, excess=100.0, floor_probability=1e-9)

def example_for(result):
    values = dict(EXAMPLE, eta=5.0) if "bounded" in result.key else dict(EXAMPLE)
    names = {x.name for x in result.symbols} | {h.name for hyp in result.hypotheses if hyp.relation is not None
                                                for h in hyp.relation.free_symbols}
    return {k: v for k, v in values.items() if k in names}

values = {}
for key, result in theory.RESULTS.items():
    point = example_for(result)
    answer = result(**point)
    values[key] = answer.value
    display(Markdown(f"### {result.name} (`{key}`)\n{result.source.describe()}\n\n*{result.meaning}*"))
    display(Math(result.latex()))
    shown = ", ".join(f"{k}={v:g}" for k, v in point.items())
    display(Markdown(f"At {shown}: **{answer.value}**; failing hypotheses: {answer.failures or 'none'}"))
    if result.verdicts:
        display(Markdown(f"> Verdict: {result.verdicts}"))

# %%
# Every result evaluates to a finite number (or a truth value) at the example point, and no hypothesis fails there.
for key, value in values.items():
    assert np.isfinite(np.asarray(value, dtype=float)).all(), key
    assert theory.RESULTS[key].check_hypotheses(**example_for(theory.RESULTS[key])) == [], key

# %% [markdown]
# ## One-line questions
#
# *What does Theorem 4.1 predict at width 512, depth 8, and which of its hypotheses fail here?* Below, the data are not on the sphere ($\max_i \|x_i\| = 1.3$), so one hypothesis fails and is named.

# %%
answer = theory.theorem_4_1_sphere(width=512, beta=8, d=64, N=32, eta=0.5, kappa=4, c1=1, c2=1, data_norm=1.3)
print("value:", answer.value)
print("fails:", *answer.failures, sep="\n  ")
print("not checkable from numbers:", *answer.unchecked, sep="\n  ")
assert len(answer.failures) == 1 and "S^{d-1}" in answer.failures[0]

# %% [markdown]
# ## The scale test of the SGD bounds
#
# Rescaling every $f_i$ to $s f_i$ (and $\alpha$ to $\alpha/s$) leaves the SGD iterates unchanged, so a correct bound must transform like its left-hand side. Theorem 3.1 passes; the printed Theorem 3.2 does not, and a concrete two-example counterexample violates it.

# %%
for result in (theory.theorem_3_1, theory.theorem_3_2_printed, theory.theorem_3_2_rederived):
    consistent, defect = theory.scale_test(result)
    print(f"{result.name:28s} consistent: {consistent}   defect: {defect}")
example = theory.THEOREM_3_2_COUNTEREXAMPLE
point = {k: v for k, v in example.items() if k != "lhs"}
print("counterexample: lhs =", example["lhs"], " printed bound =", theory.theorem_3_2_printed.evaluate(**point),
      " re-derived bound =", theory.theorem_3_2_rederived.evaluate(**point))
assert not theory.scale_test(theory.theorem_3_2_printed)[0]
assert example["lhs"] > theory.theorem_3_2_printed.evaluate(**point)

# %% [markdown]
# ## Derived results: noise floor, best step size, width needed, iso-confusion contour

# %%
sgd = dict(N=32, L=1.0, mu=0.5, eta=1e-3, Delta0=1.0)
for T in (10, 100, 1000):
    star = theory.optimal_step_size(T=T, **sgd)
    bound = theory.theorem_3_1.evaluate(alpha=star, T=T, **sgd)
    print(f"T={T:5d}: best alpha = {star:.3e} (of at most {2 / 32:.3e}), bound = {bound:.4f}")
print("noise floor as alpha -> 0:", theory.noise_floor_small_step.evaluate(N=32, mu=0.5, eta=1e-3))

# %%
betas = np.geomspace(1, 64 if FAST else 512, 12 if FAST else 40)
point = dict(d=64, N=32, eta=0.5, kappa=4.0, c1=1.0, c2=1.0)
fig, ax = plt.subplots(figsize=(5.5, 4))
for delta in (0.1, 1e-3):
    ax.loglog(betas, theory.width_needed(delta, betas, **point), label=rf"failure bound $= {delta:g}$")
ax.loglog(betas, 40 * betas**2.5, "k:", label=r"slope $5/2$ (iso_confusion_exponent)")
ax.set_xlabel(r"depth $\beta$")
ax.set_ylabel(r"width $\ell$ needed (Theorem 4.1, sphere)")
ax.set_title(r"$c_1 = c_2 = 1$, $d = 64$, $N = 32$, $\eta = 0.5$", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
print("iso-confusion exponent:", theory.iso_confusion_exponent.statement)
assert float(theory.iso_confusion_exponent.statement) == 2.5

# %%
counterexample = {k: v for k, v in theory.THEOREM_3_2_COUNTEREXAMPLE.items() if k != "lhs"}
CHECK = dict(counterexample=dict(theory.THEOREM_3_2_COUNTEREXAMPLE),
             printed=float(theory.theorem_3_2_printed.evaluate(**counterexample)),
             rederived=float(theory.theorem_3_2_rederived.evaluate(**counterexample)),
             iso_exponent=float(theory.iso_confusion_exponent.statement), n_results=len(theory.RESULTS))
