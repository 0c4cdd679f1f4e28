# %% [markdown]
# # The finite-width law: how far above its floor is your network?
#
# With random $\pm 1$ labels independent of the data, the tail of the normalised confusion
# $\Pr[\min_{i \neq j} \cos(\nabla f_i, \nabla f_j) < -\tau]$ tends with width to a positive floor set by the data
# (`theory.infinite_width_cosine_floor`), and to first order in $1/\ell$
#
# $$\log\frac{\Pr_\ell}{\mathrm{floor}} = \frac{C(\tau)}{\ell},$$
#
# with $C$ built from the fluctuation constants of the tangent-kernel cosine, $s^2(t) = \lim \ell\,\mathrm{Var}\,
# k_\ell(t)$ and $\mu(t) = \lim \ell\,(\mathbb{E}k_\ell(t) - f(t))$, at the crossings $f(t_c) = \pm\tau$ (the
# derivation is on the documentation page *The finite-width law*).  This notebook computes $C$ for a network: first
# for one whose constants are known in closed form (a check of the estimator), then for yours.

# %% tags=["parameters"]
import os

SCALE = os.environ.get("GC_NOTEBOOK_SCALE", "small")  # "fast" (the tests), "small" (stored outputs), "large"
# your architecture: an activation of montecarlo.ACTIVATIONS, its depth, the data's dimension, Strategy 4.1's kappa
ACTIVATION, DEPTH, D, KAPPA = "tanh", 2, 16, 4.0
TAUS = (0.9, 0.95, 0.97)
WIDTHS = {"fast": (64, 128, 256), "small": (64, 128, 256, 512), "large": (64, 128, 256, 512, 1024)}[SCALE]
NETWORKS = {"fast": 400, "small": 2000, "large": 10000}[SCALE]
CHECK_WIDTH = 256  # the width where the law is compared with the conditional estimator
CHECK_NETWORKS = {"fast": 150, "small": 600, "large": 3000}[SCALE]
SEED = 24

# %%
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets: no progress bars here

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import montecarlo as mc
import theory

law = theory.finite_width_cosine_law
display(Markdown(f"**{law.name}** — {law.source.describe()}"))
display(Math(law.latex()))
for hypothesis in law.hypotheses:
    display(Markdown(f"- {hypothesis.label}"))

# %% [markdown]
# ## A network whose constants are known: linear, depth 1
#
# For $g = W_1 W_0 x$ the cosine is, up to $O(1/\ell^2)$, the uncentred sample correlation of $\ell$ bivariate
# normal pairs with correlation $t$: $s^2 = (1 - t^2)^2$ and $\mu = -t(1 - t^2)/2$.  `cosine_fluctuations`
# estimates both from networks at several widths, extrapolated in $1/\ell$.

# %%
t_linear = np.array([0.6, 0.75, 0.85, 0.9])
linear = mc.cosine_fluctuations(D, 1, "linear", t=t_linear, widths=WIDTHS, networks=NETWORKS, seed=SEED)
table = linear.table.groupby("t").first().loc[t_linear]
exact_s2, exact_mu = (1 - t_linear**2) ** 2, -t_linear * (1 - t_linear**2) / 2
for t, row, s2, mu in zip(t_linear, table.itertuples(), exact_s2, exact_mu):
    print(f"t = {t:.2f}: s^2 {row.s2_limit:.4f} +- {row.s2_limit_se:.4f} (exact {s2:.4f}),  "
          f"mu {row.mu_limit:+.4f} +- {row.mu_limit_se:.4f} (exact {mu:+.4f})")

# the law from the exact constants, against the conditional estimator at one width (logistic loss: exact for it)
exact = lambda t: ((1 - t * t) ** 2, -4 * t * (1 - t * t), -t * (1 - t * t) / 2)  # noqa: E731
linear_law = theory.finite_width_excess([0.85, 0.9], 1, "linear", D, fluctuation=exact)
measured = mc.conditional_cosine_tail(mc.MLP(D, CHECK_WIDTH, 1, "linear", output_activation=False), 2, [0.85, 0.9],
                                      loss="logistic", networks=CHECK_NETWORKS, seed=SEED, grid=33)
linear_measured = CHECK_WIDTH * np.log(measured.pair / linear_law.floor)
linear_measured_se = CHECK_WIDTH * measured.pair_se / measured.pair
for tau, C, m, se in zip(linear_law.tau, linear_law.C, linear_measured, linear_measured_se):
    print(f"tau = {tau}: predicted C = {C:.1f}; measured width x log(Pr / floor) at width {CHECK_WIDTH}: "
          f"{m:.1f} +- {1.96 * se:.1f}")

# %% [markdown]
# ## Your architecture
#
# The crossings $f(t_c) = \pm\tau$ come from `theory`; the constants are measured around them, then `predict_excess`
# gives $C(\tau)$ with a 95% bootstrap interval (over the networks of every width).

# %%
crossings = theory.finite_width_excess(TAUS, DEPTH, ACTIVATION, D, KAPPA)
sides = {}
for terms in crossings.terms:
    for term in terms:
        sides.setdefault(term["side"], []).append(abs(term["t"]))
t_grid = np.concatenate([side * np.linspace(min(ts) - 0.03, min(max(ts) + 0.015, 0.995), 5)
                         for side, ts in sides.items()])
yours = mc.cosine_fluctuations(D, DEPTH, ACTIVATION, t=t_grid, widths=WIDTHS, networks=NETWORKS, seed=SEED + 1,
                               kappa=KAPPA)
prediction = yours.predict_excess(TAUS)
for tau, C, lo, hi, floor in zip(prediction["tau"], prediction["C"], prediction["lower"], prediction["upper"],
                                 prediction["floor"]):
    print(f"tau = {tau}: C = {C:.1f} [{lo:.1f}, {hi:.1f}]; pair floor {floor:.3g}; "
          f"the excess halves by width {int(C / np.log(2)) if C > 0 else 0}")

constants = yours.table.groupby("t").first()
fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6))
ax.errorbar(constants.index, constants["s2_limit"], yerr=1.96 * constants["s2_limit_se"], fmt="o")
ax.set_xlabel("t")
ax.set_ylabel(r"$s^2(t)$")
bx.errorbar(constants.index, constants["mu_limit"], yerr=1.96 * constants["mu_limit_se"], fmt="o")
bx.set_xlabel("t")
bx.set_ylabel(r"$\mu(t)$")
fig.suptitle(f"{ACTIVATION}, depth {DEPTH}, d = {D}, kappa = {KAPPA}: the cosine's fluctuation constants",
             fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The law against the conditional estimator at one width
#
# The prediction is the limit $\ell \to \infty$ of $\ell \log(\Pr_\ell / \mathrm{floor})$; at a width of the
# order of $C$ the next term of the expansion is not small, so expect agreement within some tens of percent there
# (figure F17 measures the limit over several widths).

# %%
net = mc.MLP(D, CHECK_WIDTH, DEPTH, ACTIVATION, kappa=KAPPA, output_activation=ACTIVATION in ("tanh", "sigmoid"))
loss = "square" if ACTIVATION in ("tanh", "sigmoid") else "logistic"
check = mc.conditional_cosine_tail(net, 2, list(TAUS), loss=loss, networks=CHECK_NETWORKS, seed=SEED + 2, grid=33)
your_measured = CHECK_WIDTH * np.log(check.pair / prediction["floor"])
your_measured_se = CHECK_WIDTH * check.pair_se / check.pair
for tau, C, m, se in zip(TAUS, prediction["C"], your_measured, your_measured_se):
    display(Markdown(f"- tau = {tau}: predicted C = {C:.1f}, measured {CHECK_WIDTH} log(Pr/floor) = {m:.1f} "
                     f"+- {1.96 * se:.1f} ({100 * (m / C - 1):+.0f}%)"))

CHECK = dict(d=D, t_linear=t_linear.tolist(), s2_linear=table["s2_limit"].tolist(),
             s2_linear_se=table["s2_limit_se"].tolist(), mu_linear=table["mu_limit"].tolist(),
             mu_linear_se=table["mu_limit_se"].tolist(), linear_taus=[0.85, 0.9], linear_C=linear_law.C.tolist(),
             linear_measured=linear_measured.tolist(), linear_measured_se=linear_measured_se.tolist(),
             taus=list(TAUS), C=prediction["C"].tolist(), C_lower=prediction["lower"].tolist(),
             C_upper=prediction["upper"].tolist(), measured=your_measured.tolist(),
             measured_se=your_measured_se.tolist(), check_width=CHECK_WIDTH)
