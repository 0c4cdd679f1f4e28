"""Shared plotting helpers: saving, Clopper-Pearson bands, colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "axes.grid": True, "grid.alpha": 0.3,
                     "legend.fontsize": 8, "axes.titlesize": 10, "axes.labelsize": 10})


def colours(n: int):
    return plt.cm.viridis(np.linspace(0.0, 0.85, max(n, 1)))


def save(fig, stem) -> None:
    """Write ``stem.png`` and ``stem.pdf`` and close the figure."""
    fig.tight_layout()
    fig.savefig(f"{stem}.png")
    fig.savefig(f"{stem}.pdf")
    plt.close(fig)


def band(ax, x, low, high, color, alpha=0.2, **kwargs):
    """A shaded interval (Clopper-Pearson or +-1.96 s.e.) around a curve."""
    ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0, **kwargs)


def subplots(ncols: int, width: float = 4.6, height: float = 3.6):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def vacuous_ceiling(ax, value: float = 1.1) -> None:
    """Mark where bounds that are >= 1 (vacuous) are drawn, at ``value``."""
    ax.set_ylim(-0.02, value + 0.04)
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.text(0.01, (value + 0.02) / (value + 0.06), f"bounds >= 1 (vacuous) drawn at {value}", transform=ax.transAxes,
            fontsize=6, va="center")
