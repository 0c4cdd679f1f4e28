"""Hot paths through the Trial seam: plain Monte Carlo and rare tails, timed inside one process.

Runs with any tree of this project on ``PYTHONPATH`` (it uses only the public API that predates the seam), so the
same script times the code before and after a change::

    PYTHONPATH=<tree> python benchmarks/trial_seam.py --repeats 5

Each workload runs once to warm the numba cache and the imports, then ``--repeats`` times; the table gives the
best and the median seconds.  ``benchmarks/results/trial_seam.md`` holds the before/after comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time

import montecarlo as mc

WORKLOADS = {
    "sample_confusion lazy (N=16, 1024, depth 4, d=64), 512 trials":
        lambda: mc.sample_confusion(mc.MLP(64, 1024, 4, activation="tanh"), 16, 512, labels="random_sign",
                                    loss="square", seed=0, backend="numba"),
    "sample_confusion dense (N=8, 64, depth 2, d=16), 4096 trials":
        lambda: mc.sample_confusion(mc.MLP(16, 64, 2, activation="tanh"), 8, 4096, labels="random_sign",
                                    loss="square", seed=0, backend="numba", method="dense"),
    "sample_grams per_layer (N=8, 256, depth 3, d=32), 4096 trials":
        lambda: mc.sample_grams(mc.MLP(32, 256, 3, activation="relu"), 8, 4096, labels="tanh", loss="logistic",
                                seed=0, backend="numba", per_layer=True),
    "rare_tail min_cosine < -0.95 (N=4, 32, depth 2, d=8), population 1000, 10 repeats":
        lambda: mc.rare_tail(mc.MLP(8, 32, 2, activation="tanh"), 4, statistic="min_cosine", direction="lower",
                             threshold=-0.95, labels="random_sign", loss="square", seed=0, population=1000,
                             repeats=10, backend="numba"),
    "rare_tail eta_star > 12 (N=4, 32, depth 2, d=8), population 1000, 10 repeats":
        lambda: mc.rare_tail(mc.MLP(8, 32, 2, activation="tanh"), 4, statistic="eta_star", threshold=12.0,
                             labels="random_sign", loss="square", seed=0, population=1000, repeats=10,
                             backend="numba"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| workload | best s | median s |\n|---|---:|---:|")
    for name, run in WORKLOADS.items():
        run()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(f"| {name} | {min(times):.3f} | {statistics.median(times):.3f} |", flush=True)


if __name__ == "__main__":
    main()
