"""Cost of the conditional estimator (``montecarlo.conditional_cosine_tail``) at the F16 network, Pr ~ 1e-9.

Target: a standard error <= 2% at ``Pr ~ 1e-9`` for widths 64
to 1024 within 3 CPU-minutes per width.  Setting: F16's network (tanh, Strategy
4.1, kappa = 4, depth 2, d = 16), N = 8 points, random-sign labels, square loss;
``tau = 0.97``, where ``Pr[min cos < -tau]`` for N = 8 is 1.4e-8 at width 64 and
falls to 1.9e-9 at width 1024 (the union over 28 pairs; the Bonferroni term is
below 1e-8 of it).  Each width runs twice, with independent seeds: a pilot of
``--pilot`` networks gives the per-network coefficient of variation CoV
(``relative s.e. x sqrt(networks)``), which sets the cost of any precision,
``networks = (CoV / target)^2``; then a fixed-size run of
``ceil(MARGIN (CoV / target)^2)`` networks (a fixed size, so that its standard
error is not biased low by stopping when it looks small) gives the table's
estimate, its relative standard error and its CPU seconds
(``time.process_time``: this process's threads).  Run it on one core
(``OPENBLAS_NUM_THREADS=1``) on a quiet machine: a multi-threaded BLAS
competing with another process slows down far more than the load suggests.

Usage: ``python benchmarks/conditional_tail.py [--widths 64 128 ...] [--target 0.02] [--budget 180] [--pilot N]
[--quick]`` (``--quick``: widths 16 and 32, target 0.2, pilot 64: a smoke test).  Default pilot: 2048 networks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import montecarlo as mc

D, N, DEPTH, TAU = 16, 8, 2, 0.97
#: The fixed-size run has MARGIN (CoV / target)^2 networks: the pilot's CoV of a heavy-tailed estimate is itself
#: low more often than high (a first run with 1.15 and 512-network pilots missed the target at 3 of 5 widths).
MARGIN = 1.6


def run_width(width: int, target: float, pilot: int, seed: int = 0) -> dict:
    net = mc.MLP(D, width, DEPTH, "tanh", kappa=4.0)
    cpu = time.process_time()
    first = mc.conditional_cosine_tail(net, N, TAU, networks=pilot, seed=(seed, width, 0))
    pilot_cpu = time.process_time() - cpu
    cov = float(first.relative_se[0] * np.sqrt(pilot))
    networks = int(np.ceil(MARGIN * (cov / target) ** 2))
    cpu, wall = time.process_time(), time.perf_counter()
    result = mc.conditional_cosine_tail(net, N, TAU, networks=networks, seed=(seed, width, 1))
    return dict(width=width, pilot_cov=cov, pilot_cpu=pilot_cpu, networks=networks,
                estimate=float(result.union[0]), bonferroni=float(result.bonferroni[0]),
                relative_se=float(result.relative_se[0]), cpu=time.process_time() - cpu,
                wall=time.perf_counter() - wall, cov=float(result.relative_se[0] * np.sqrt(networks)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--target", type=float, default=0.02)
    parser.add_argument("--budget", type=float, default=180.0, help="CPU seconds per width allowed by the target")
    parser.add_argument("--pilot", type=int, default=2048, help="networks of the pilot run")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.target, args.pilot = [16, 32], 0.2, 64
    print(f"Conditional estimator, F16 network (tanh, kappa 4, depth {DEPTH}, d = {D}), N = {N}, tau = {TAU}; "
          f"target relative s.e. {args.target:g} within {args.budget:g} CPU s per width\n")
    print("| width | pilot CoV (networks, CPU s) | networks | Pr[min cos < -tau] (union) | Bonferroni lower | "
          "relative s.e. | CoV | CPU s | wall s | target met |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for width in args.widths:
        r = run_width(width, args.target, args.pilot)
        met = r["relative_se"] <= args.target and r["cpu"] <= args.budget
        print(f"| {r['width']} | {r['pilot_cov']:.3g} ({args.pilot}, {r['pilot_cpu']:.0f}) | {r['networks']} | "
              f"{r['estimate']:.4g} | {r['bonferroni']:.4g} | {100 * r['relative_se']:.2f}% | {r['cov']:.3g} | "
              f"{r['cpu']:.0f} | {r['wall']:.0f} | {'yes' if met else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
