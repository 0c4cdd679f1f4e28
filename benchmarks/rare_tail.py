"""Cost of rare tails by subset simulation (``montecarlo/_src/engines/rare_event.py``) against plain Monte Carlo.

Prints a markdown table: statistic evaluations and seconds to reach an Au-Beck
coefficient of variation of 0.2 at ``Pr = 1e-10`` for

* the sphere law ``Pr[<x1, x2> > t]`` (two uniform points on ``S^31``; exact
  from the Beta law), where plain Monte Carlo needs ``1 / (0.04 Pr) = 2.5e11``
  draws for the same CoV;
* the paper's network (tanh, kappa = 4, width 256, depth 4, d = 16, N = 8,
  tanh teacher, square loss, lazy sampling), ``eta_star`` upper tail at the
  threshold whose probability is about 1e-10 (found by a pilot run: the
  10th level of a subset simulation with ``p0 = 0.1``);
* an orthogonal deep linear network (width 1024, depth 4, lazy, N = 2,
  random-sign labels), whose ``min_cosine`` lower tail is exactly the sphere
  law at d = 16 (see ``tests/engines/test_rare_event.py``);

with the evaluation rate beside ``sample_confusion``'s trials per second at
the same size (lazy sampling, numba backend).  A run whose CoV is above 0.2
is repeated once with the population scaled by ``1.1 (CoV / 0.2)^2``; the
table reports the final run, and the seconds of all runs.

Usage: ``python benchmarks/rare_tail.py [--quick]`` (``--quick``: Pr ~ 1e-4, tiny
sizes, no rerun to the CoV goal: a smoke test).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

import theory
from montecarlo import MLP, rare_tail, rare_tail_of, sample_confusion

GOAL_COV = 0.2
REPEATS = 4  # the table's rows were measured with 4 repeats (the library's default is now 10)


def cosine_of_halves(d):
    def f(xi):
        a, b = xi[:, :d], xi[:, d:]
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return f


def to_goal(run, population, rescale=True):
    """Run; if the CoV misses the goal, run once more with the population scaled to reach it.

    Returns the final run, its population and the seconds of every run made.
    """
    start = time.perf_counter()
    result = run(population)
    if rescale and result.coefficient_of_variation > GOAL_COV:
        # Au-Beck's delta^2 is proportional to 1 / n; 10% margin for the noise of the first delta
        population = int(math.ceil(1.1 * population * (result.coefficient_of_variation / GOAL_COV) ** 2 / 10) * 10)
        result = run(population)
    return result, population, time.perf_counter() - start


def trials_per_second(net, n_samples, labels, loss, trials):
    """``sample_confusion``'s trials per second (lazy sampling, numpy draws, numba backend: as the tail runs)."""
    kwargs = dict(labels=labels, loss=loss, method="lazy")
    sample_confusion(net, n_samples, 16, seed=0, **kwargs)  # compile
    start = time.perf_counter()
    sample_confusion(net, n_samples, trials, seed=1, **kwargs)
    return trials / (time.perf_counter() - start)


def row(name, result, population, exact, rate, total):
    ratio = "" if exact is None else f"{result.estimate / exact:.3f}"
    plain = 1 / (GOAL_COV**2 * result.estimate)
    speed = result.evaluations / result.seconds
    versus = "-" if rate is None else f"{rate:,.0f} ({speed / rate:.2f})"
    return (f"| {name} | {result.config['threshold']:.6g} | {result.estimate:.3e} | {ratio} | "
            f"{result.coefficient_of_variation:.3f} | {population} x {result.config['repeats']} | "
            f"{result.evaluations:,} | {plain:.2e} | {result.seconds:.1f} | {total:.1f} | {speed:,.0f} | {versus} |")


class _PilotDone(Exception):
    """Raised from ``on_level`` to stop the pilot once it has its level."""


def pilot_threshold(net, N, levels, population, **kwargs) -> float:
    """The ``levels``-th level of one subset-simulation repeat towards an unreachable threshold: Pr ~ 0.1^levels."""
    def record(state):
        if len(state.levels) >= levels:
            raise _PilotDone(float(state.levels[levels - 1]))

    try:
        rare_tail(net, N, statistic="eta_star", threshold=1e300, seed=99, population=population, method="lazy",
                  on_level=record, **kwargs)
    except _PilotDone as done:
        return done.args[0]
    raise RuntimeError("the pilot reached an unreachable threshold")


def main(quick: bool):
    p = 1e-4 if quick else 1e-10
    rows = []
    load = f"{os.getloadavg()[0]:.2f}"

    d = 32
    t = theory.sphere_inner_product_threshold(p, d)
    res, pop, total = to_goal(lambda n: rare_tail_of(cosine_of_halves(d), 2 * d, threshold=t, seed=1,
                                                     population=n, repeats=REPEATS),
                              100 if quick else 1000, not quick)
    rows.append(row(f"sphere law d = {d}", res, pop, p, None, total))

    width, N = (32, 4) if quick else (256, 8)
    net = MLP(16, width, 4, activation="tanh", kappa=4.0)
    kwargs = dict(labels="tanh", loss="square")
    threshold = pilot_threshold(net, N, round(-math.log10(p)), 100 if quick else 1000, **kwargs)
    res, pop, total = to_goal(lambda n: rare_tail(net, N, statistic="eta_star", threshold=threshold, seed=2,
                                                  population=n, method="lazy", repeats=REPEATS, **kwargs),
                              100 if quick else 2000, not quick)
    rate = trials_per_second(net, N, "tanh", "square", 256 if quick else 4096)
    rows.append(row(f"paper net (tanh, kappa 4, width {width}, depth 4, d 16, N {N}, lazy), eta_star, "
                    f"D = {res.config['dimension']}", res, pop, None, rate, total))

    width = 64 if quick else 1024
    net = MLP(16, width, 4, activation="linear", output_activation=False, init="orthogonal", gamma=2**-0.5)
    tau = theory.sphere_inner_product_threshold(p, 16)
    res, pop, total = to_goal(lambda n: rare_tail(net, 2, statistic="min_cosine", threshold=-tau,
                                                  direction="lower", labels="random_sign", loss="square", seed=3,
                                                  population=n, method="lazy", repeats=REPEATS),
                              100 if quick else 2000, not quick)
    rate = trials_per_second(net, 2, "random_sign", "square", 256 if quick else 4096)
    rows.append(row(f"orthogonal linear net, width {width}, depth 4, N 2, min_cosine (lower), "
                    f"D = {res.config['dimension']}", res, pop, p, rate, total))

    print(f"Subset simulation to CoV {GOAL_COV} at Pr ~ {p:g} (p0 = 0.1, pCN, target acceptance 0.3, "
          f"{REPEATS} repeats); "
          f"load average before/after: {load} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
    print("| case | threshold | estimate | estimate / exact | Au-Beck CoV | population x repeats | evaluations | "
          "plain MC draws for the same CoV | seconds (final run) | seconds (all runs) | evaluations/s | "
          "sample_confusion trials/s (evaluations/s over it) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    main(parser.parse_args().quick)
