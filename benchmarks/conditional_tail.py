"""Cost of the conditional estimator (``montecarlo.conditional_cosine_tail``) at the F16 network, Pr ~ 1e-9.

Target (issue 23 item 1): a standard error <= 2% at ``Pr ~ 1e-9`` for widths 64
to 1024 within 3 CPU-minutes per width.  Setting: F16's network (tanh, Strategy
4.1, kappa = 4, depth 2, d = 16), N = 8 points, random-sign labels, square loss;
``tau = 0.97``, where ``Pr[min cos < -tau]`` for N = 8 is 2.5e-8 at width 64 and
falls to 1.9e-9 at width 1024 (the union over 28 pairs; the Bonferroni term is
below 1e-8 of it).  Each width runs in rounds of growing size until the
relative standard error (across networks) is at most 2%, or 180 s of CPU time
have passed; the table gives the networks used, the estimate, its relative
standard error, the CPU seconds (``time.process_time``, both cores of the
BLAS included), the wall seconds and the statistic's own per-network
coefficient of variation (``relative s.e. x sqrt(networks)``), which sets the
cost of any precision: ``networks = (CoV / target)^2``.

The stopping rule is a benchmark's, not the estimator's: each round is a
fresh seed range (``first`` continues the count), so the final estimate is
the mean over all networks drawn.

Usage: ``python benchmarks/conditional_tail.py [--widths 64 128 ...] [--target 0.02] [--budget 180] [--quick]``
(``--quick``: widths 16 and 32, target 0.2: a smoke test).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import montecarlo as mc
from montecarlo._src.engines.conditional import build_result

D, N, DEPTH, TAU = 16, 8, 2, 0.97


def run_width(width: int, target: float, budget: float, seed: int = 0) -> dict:
    net = mc.MLP(D, width, DEPTH, "tanh", kappa=4.0)
    cpu, wall = time.process_time(), time.perf_counter()
    parts, size, drawn = [], 64, 0
    while True:
        part = mc.conditional_cosine_tail(net, N, TAU, networks=size, seed=seed, first=drawn)
        parts.append(part.per_plane)
        drawn += size
        per_plane = np.concatenate(parts)
        result = build_result(net, N, np.array([TAU]), per_plane, labels="random_sign", loss="square",
                              planes=part.planes, grid=part.grid, seed=seed, first=0, evaluations=0, seconds=0.0,
                              hypotheses=part.hypotheses)
        spent = time.process_time() - cpu
        relative = float(result.relative_se[0])
        if relative <= target or spent >= budget:
            break
        # networks needed at the CoV seen so far, at most doubling the total, within the CPU left
        cov = relative * np.sqrt(drawn)
        wanted = int(np.ceil((cov / target) ** 2 * 1.1)) - drawn
        rate = drawn / spent
        size = int(max(16, min(wanted, drawn, (budget - spent) * rate)))
    return dict(width=width, networks=drawn, estimate=float(result.union[0]), bonferroni=float(result.bonferroni[0]),
                relative_se=relative, cpu=time.process_time() - cpu, wall=time.perf_counter() - wall,
                cov=relative * np.sqrt(drawn), met=relative <= target and time.process_time() - cpu <= budget)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--target", type=float, default=0.02)
    parser.add_argument("--budget", type=float, default=180.0, help="CPU seconds per width")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.target, args.budget = [16, 32], 0.2, 20.0
    print(f"Conditional estimator, F16 network (tanh, kappa 4, depth {DEPTH}, d = {D}), N = {N}, tau = {TAU}; "
          f"target relative s.e. {args.target:g} within {args.budget:g} CPU s per width\n")
    print("| width | networks | Pr[min cos < -tau] (union) | Bonferroni lower | relative s.e. | per-network CoV "
          "| CPU s | wall s | target met |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for width in args.widths:
        r = run_width(width, args.target, args.budget)
        print(f"| {r['width']} | {r['networks']} | {r['estimate']:.4g} | {r['bonferroni']:.4g} | "
              f"{100 * r['relative_se']:.2f}% | {r['cov']:.3g} | {r['cpu']:.0f} | {r['wall']:.0f} | "
              f"{'yes' if r['met'] else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
