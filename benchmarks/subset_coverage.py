"""Coverage study of subset simulation's reported interval: does it fool itself?

Two cases, each run as ``groups`` independent groups of ``repeats`` repeats
(the main job's setting: population 200, 10 repeats; group ``g`` uses seed
``(SEED, g)``, so groups are independent):

* ``network``: F16's network (tanh, kappa = 4, depth 2, d = 16, N = 8,
  random-sign labels, square loss) at width 128, ``Pr[min cos < -0.97]``.
  The truth is the conditional estimator's value (``montecarlo.
  conditional_cosine_tail``, ``--reference-networks`` networks, with its own
  standard error, stated; it is an independent method: the pair's inner
  product integrated exactly, no Markov chains);
* ``exact``: an orthogonal deep linear network (width 16, depth 2, N = 2),
  whose ``Pr[cos < -tau] = Pr[<x1, x2> > tau]`` is the exact Beta tail, at
  ``tau`` with probability 1e-10.

A repeat whose chains cannot move raises ``ChainsStoppedMoving`` (it refuses
to give a number); such a group reports nothing and is counted apart
("stopped"); the statistics below are over the other groups.

Per case: the single-repeat estimates' median/truth and mean/truth (all
``groups x repeats`` repeats), the coverage of the reported 95% interval
(``RareTail.interval``: a t-interval on the mean of the group's repeats)
over the groups with its Clopper-Pearson interval, the same for the interval
``estimate * exp(+-1.96 delta)`` of Au-Beck's coefficient of variation
(``cov_interval``), the share of repeats flagged as collapsed (a level whose
population sits in one label-sign branch), and the median/truth of flagged
and unflagged repeats apart.

Usage: ``python benchmarks/subset_coverage.py [--groups 100] [--repeats 10] [--cases network exact]
[--reference-networks 8000] [--out results.json]`` (``--quick``: 6 groups of 4 repeats, Pr ~ 1e-4: a smoke test).
Results of every group go to ``--out`` as they finish (JSON), so an interrupted study keeps what it did.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import montecarlo as mc
import theory

SEED = 23
D, N, WIDTH, TAU = 16, 8, 128, 0.97


def _network_case(quick: bool):
    net = mc.MLP(D, 16 if quick else WIDTH, 2, "tanh", kappa=4.0)
    tau = 0.8 if quick else TAU
    return net, N, tau


def _exact_case(quick: bool):
    p = 1e-4 if quick else 1e-10
    tau = theory.sphere_inner_product_threshold(p, D)
    depth = 2
    return mc.MLP(D, D, depth, "linear", init="orthogonal", gamma=1 / np.sqrt(2 * depth)), 2, tau


def truth(case: str, quick: bool, networks: int) -> tuple[float, float]:
    """``(value, standard error)``: exact for the Beta case, the conditional estimator's for the network."""
    if case == "exact":
        _, _, tau = _exact_case(quick)
        return float(theory.sphere_inner_product_measure(tau, 1.0, D)), 0.0
    net, n, tau = _network_case(quick)
    c = mc.conditional_cosine_tail(net, n, tau, networks=networks, seed=(SEED, 999))
    return float(c.union[0]), float(c.pair_se[0] / c.pair[0] * c.union[0])


def run_group(case: str, group: int, repeats: int, population: int, quick: bool) -> dict:
    """One group: ``rare_tail`` with ``repeats`` repeats; if a repeat stops (``ChainsStoppedMoving``: its chains
    could not move, so subset simulation refuses to give a number) the group is counted as stopped."""
    net, n, tau = _network_case(quick) if case == "network" else _exact_case(quick)
    start = time.process_time()
    try:
        r = mc.rare_tail(net, n, statistic="min_cosine", threshold=-tau, direction="lower", labels="random_sign",
                         loss="square", seed=(SEED, group), population=population, repeats=repeats)
    except mc.ChainsStoppedMoving:
        return dict(group=group, stopped=1, cpu=time.process_time() - start)
    collapsed = [bool(len(levels)) for levels in (r.collapsed_levels or [[]] * repeats)]
    return dict(group=group, stopped=0, estimate=r.estimate, interval=list(r.interval),
                cov_interval=list(r.cov_interval), estimates=r.estimates.tolist(), collapsed=collapsed,
                evaluations=r.evaluations, cpu=time.process_time() - start)


def summarise(case: str, value: float, value_se: float, groups: list) -> dict:
    stopped_groups = sum(1 for g in groups if g.get("stopped"))
    groups = [g for g in groups if not g.get("stopped")]
    single = np.concatenate([g["estimates"] for g in groups])
    flagged = np.concatenate([g["collapsed"] for g in groups]).astype(bool)
    inside = [g["interval"][0] <= value <= g["interval"][1] for g in groups]
    inside_cov = [g["cov_interval"][0] <= value <= g["cov_interval"][1] for g in groups]
    k, n = int(sum(inside)), len(groups)
    k2 = int(sum(inside_cov))
    return dict(case=case, truth=value, truth_se=value_se, groups=n, repeats=len(groups[0]["estimates"]),
                single_median=float(np.median(single) / value), single_mean=float(single.mean() / value),
                single_q10=float(np.quantile(single, 0.1) / value), single_q90=float(np.quantile(single, 0.9) / value),
                coverage=k / n, coverage_ci=[float(x) for x in mc.clopper_pearson(k, n)],
                au_beck_coverage=k2 / n, au_beck_ci=[float(x) for x in mc.clopper_pearson(k2, n)],
                flagged=float(flagged.mean()), stopped_groups=stopped_groups,
                flagged_median=float(np.median(single[flagged]) / value) if flagged.any() else float("nan"),
                unflagged_median=float(np.median(single[~flagged]) / value) if (~flagged).any() else float("nan"),
                cpu=float(sum(g["cpu"] for g in groups)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--cases", nargs="+", default=["exact", "network"], choices=["exact", "network"])
    parser.add_argument("--reference-networks", type=int, default=8000)
    parser.add_argument("--out", type=Path, default=Path("subset_coverage.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.groups, args.repeats, args.reference_networks = 6, 4, 400
    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    for case in args.cases:
        record = saved.setdefault(case, {"groups": []})
        if "truth" not in record:
            record["truth"], record["truth_se"] = truth(case, args.quick, args.reference_networks)
            args.out.write_text(json.dumps(saved))
        done = {g["group"] for g in record["groups"]}
        for group in range(args.groups):
            if group in done:
                continue
            record["groups"].append(run_group(case, group, args.repeats, args.population, args.quick))
            args.out.write_text(json.dumps(saved))
            last = record["groups"][-1]
            print(f"{case} group {group}: " + (f"{last['estimate']:.3g}" if not last["stopped"] else
                                               "a repeat stopped") + f" ({last['cpu']:.0f} CPU s)",
                  flush=True)
    print(f"\nSubset simulation, population {args.population}, {args.repeats} repeats per group\n")
    print("| case | truth | groups (stopped) | single repeat median/truth [10%, 90%] | single repeat mean/truth | coverage of "
          "the reported 95% interval [CP 95%] | Au-Beck CoV interval coverage | repeats flagged collapsed | "
          "median/truth flagged, unflagged | CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in args.cases:
        record = saved[case]
        groups = [g for g in record["groups"] if g["group"] < args.groups]
        s = summarise(case, record["truth"], record["truth_se"], groups)
        truth_text = f"{s['truth']:.4g}" + (f" +- {s['truth_se']:.2g}" if s["truth_se"] else " (exact)")
        print(f"| {case} | {truth_text} | {s['groups']} ({s['stopped_groups']}) | "
              f"{s['single_median']:.2f} [{s['single_q10']:.2f}, "
              f"{s['single_q90']:.2f}] | {s['single_mean']:.2f} | {s['coverage']:.2f} [{s['coverage_ci'][0]:.2f}, "
              f"{s['coverage_ci'][1]:.2f}] | {s['au_beck_coverage']:.2f} [{s['au_beck_ci'][0]:.2f}, "
              f"{s['au_beck_ci'][1]:.2f}] | {100 * s['flagged']:.0f}% | {s['flagged_median']:.2f}, "
              f"{s['unflagged_median']:.2f} | {s['cpu']:.0f} |")


if __name__ == "__main__":
    main()
