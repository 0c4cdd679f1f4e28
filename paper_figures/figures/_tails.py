"""The conditional-estimator runs that F16 and F17 share: one definition of each run, one results store.

F16 shows the excess over the infinite-width floor against width; F17 compares the same runs with the
finite-width law's prediction.  Both call :func:`conditional` with the same arguments, so a run is computed
once (its store is ``context.shared``, its ``Figure.prepare`` piece has one label) and read back by the other.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import montecarlo as mc

D, N = 16, 8
SEED = 16
TAUS = (0.9, 0.95, 0.97)


@dataclass(frozen=True)
class Architecture:
    """A network family of the width panels, and the loss under which the conditional estimator is exact for it.

    ``loss="square"`` uses the activation at the output (tanh: ``|g| < 1``); ``"logistic"`` uses none (relu: a
    relu output would have ``s' = 0``).
    """

    activation: str = "tanh"
    d: int = D
    kappa: float = 4.0
    loss: str = "square"

    @property
    def label(self) -> str:
        return f"{self.activation}, d = {self.d}, kappa = {self.kappa:g}, {self.loss} loss"

    def net(self, width: int, depth: int) -> mc.MLP:
        return mc.MLP(self.d, width, depth, self.activation, kappa=self.kappa,
                      output_activation=self.loss == "square")


#: F16's setting (and F17's first architecture).
TANH = Architecture()

#: The width panel of F16 (and F17's tanh rows), per scale: widths, depths, thresholds and networks per
#: (depth, width) -- about (per-network CoV / target s.e.)^2 with the target 3-4% at quick scale from width 64 on
#: (benchmarks/results/conditional_tail.md: the CoV falls from about 2.6 at width 64 to 0.35 at width 1024).
WIDTH_PANEL = {
    "fast": dict(widths=[16, 32, 64], depths=[2], networks={2: {16: 150, 32: 150, 64: 150}}, taus=[0.6, 0.7, 0.8]),
    "quick": dict(widths=[16, 32, 64, 128, 256, 512, 1024], depths=[2, 4],
                  networks={2: {16: 2000, 32: 2000, 64: 4000, 128: 2500, 256: 600, 512: 300, 1024: 100},
                            4: {16: 2000, 32: 2000, 64: 3000, 128: 1500, 256: 400, 512: 150, 1024: 50}},
                  taus=list(TAUS)),
    "full": dict(widths=[16, 32, 64, 128, 256, 512, 1024, 2048], depths=[1, 2, 4],
                 networks={b: {16: 20000, 32: 20000, 64: 30000, 128: 10000, 256: 2000, 512: 800, 1024: 350,
                               2048: 150} for b in (1, 2, 4)},
                 taus=[0.9, 0.95, 0.97, 0.98]),
}


def conditional(context, architecture: Architecture, width: int, depth: int, networks: int,
                taus) -> mc.ConditionalTail:
    """The conditional estimator's run of one (architecture, width, depth), in the shared store (resumable).

    A seed of its own per (width, depth): with one seed the nets of two depths at a width would share their
    first layers, and the widths their first rows, so the estimates behind one fit would not be independent.
    """
    a = architecture
    folder = context.shared / f"conditional-{a.activation}-d{a.d}-k{a.kappa:g}-{a.loss}-w{width}-b{depth}"
    return mc.conditional_cosine_tail(a.net(width, depth), N, list(taus), loss=a.loss, networks=networks,
                                      seed=(SEED, width, depth), out=folder)


def piece(context, architecture: Architecture, width: int, depth: int, networks: int, taus) -> tuple:
    """``(label, cost, callable)`` of one run for ``Figure.prepare`` (the label is shared by the figures)."""
    a = architecture
    label = f"conditional {a.activation} d{a.d} k{a.kappa:g} {a.loss} w{width} b{depth}"
    cost = networks * (1 + depth * width**2 / 2000)
    return label, cost, functools.partial(conditional, context, architecture, width, depth, networks, taus)
