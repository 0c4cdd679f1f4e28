"""Trials per second, peak memory and arithmetic efficiency of every way to get the per-example gradient Gram.

For random MLPs at initialisation (relu, Gaussian Strategy 4.1, square loss,
sphere data, float64) at (N, width, depth, d) in the performance issue's four
configurations, one trial = draw the weights (or the lazy draws), draw the
data, compute the N x N Gram.  Methods:

* ``vmap_grad``  -- torch.func ``vmap(grad)`` per-example gradients (N x P), then ``J J^T``: the usual way;
* ``backpack``   -- BackPACK ``BatchGrad`` + einsum, when installed
  (``pip install --no-deps backpack-for-pytorch einops unfoldNd``);
* ``dense_numba``, ``dense_torch`` -- ``sample_grams(method="dense")``: factorised Gram;
* ``lazy_numba``, ``lazy_torch``   -- ``sample_grams(method="lazy")``: exact lazy sampling.

Two floors, each a least time per trial: the FLOP floor, each method's
FLOP count per trial (dominant matrix products, counted below) over the
machine's measured float64 matrix-multiply rate (the best of numpy's OpenBLAS
and torch's MKL on a 2048 x 2048 product); and the random-number floor, the
standard normals a trial draws over the measured rate of drawing them
(numpy's generator on one thread for the reference methods, which draw in
one stream, and on all threads for the package's methods, whose seed blocks
are drawn in parallel; the rates of numpy on 1 and 2 threads and of torch's
CPU generator are printed above the table).  A trial cannot be faster than
the larger of the two.  "fraction (floor)" is the achieved trials/s over the
rate that larger floor allows; "fraction (trial)" is the achieved FLOP rate of
whole trials over the matrix-multiply rate;
"fraction (Gram)" leaves out the seconds spent drawing random numbers, which
is not arithmetic (the package's methods time the two separately).  Peak
memory is the rise of the peak resident set during one trial (one seed block
of 8 for the package's methods), in a fresh process.

    python benchmarks/gram_methods.py [--seconds 3] [--out results/benchmarks] [--methods lazy_numba ...]
    python benchmarks/gram_methods.py --smoke      # tiny configuration, seconds

Writes ``gram_methods.md`` (the table) and ``gram_methods.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import montecarlo as mc

CONFIGS = [(16, 1024, 8, 64), (64, 512, 8, 256), (256, 256, 4, 256), (16, 4096, 4, 64)]
SMOKE_CONFIGS = [(4, 12, 2, 6)]
METHODS = ("vmap_grad", "backpack", "dense_numba", "dense_torch", "lazy_numba", "lazy_torch")


def network(width, depth, d) -> mc.MLP:
    return mc.MLP(d, width, depth, activation="relu")


# -- the two reference implementations (materialise every per-example gradient) --------------------


def _torch_forward(weights, x, output_activation=True):
    h = x
    for p, W in enumerate(weights):
        h = h @ W.T
        if p < len(weights) - 1 or output_activation:
            h = torch.relu(h)
    return h[..., 0]


def vmap_gram(weights, X, y):
    """Per-example gradients with ``torch.func.vmap(grad)``, flattened to ``J`` (N x P); returns ``J J^T``."""
    from torch.func import grad, vmap

    def example_loss(params, x, target):
        return 0.5 * (_torch_forward(params, x[None])[0] - target) ** 2

    per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))(list(weights), X, y)
    J = torch.cat([g.reshape(X.shape[0], -1) for g in per_example], dim=1)
    return J @ J.T


def backpack_gram(weights, X, y):
    """BackPACK ``BatchGrad`` per-example gradients of the summed square loss, then their Gram (einsum)."""
    from backpack import backpack, extend
    from backpack.extensions import BatchGrad

    layers = []
    for W in weights:
        linear = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=W.dtype)
        linear.weight.data = W.detach().clone()
        layers += [linear, torch.nn.ReLU()]
    model = extend(torch.nn.Sequential(*layers))
    loss = extend(torch.nn.MSELoss(reduction="sum"))(model(X), y[:, None]) / 2
    with backpack(BatchGrad()):
        loss.backward()
    G = 0
    for parameter in model.parameters():
        g = parameter.grad_batch.reshape(X.shape[0], -1)
        G = G + torch.einsum("ip,jp->ij", g, g)
    return G


def _reference_trial(method, net, rng):
    weights = [torch.from_numpy(w) for w in net.init(rng).weights]
    X = torch.from_numpy(mc.sample_sphere(NSAMPLES[0], net.input_dim, rng))
    y = torch.from_numpy(mc.TanhTeacher()(X.numpy(), rng))
    return (vmap_gram if method == "vmap_grad" else backpack_gram)(weights, X, y)


NSAMPLES = [0]  # set per configuration (kept module-level so the child-process path can reuse it)


def run_method(method, config, trials):
    """Run ``trials`` trials of ``method`` at ``config`` after a warm-up.

    Returns seconds per trial and seconds per trial spent computing (drawing excluded; the
    reference methods do not separate the two).
    """
    N, width, depth, d = config
    net = network(width, depth, d)
    NSAMPLES[0] = N
    if method in ("vmap_grad", "backpack"):
        rng = np.random.default_rng(0)
        _reference_trial(method, net, rng)
        start = time.perf_counter()
        for _ in range(trials):
            _reference_trial(method, net, rng)
        seconds = (time.perf_counter() - start) / trials
        return seconds, seconds
    kind, backend = method.split("_")
    args = dict(labels="tanh", loss="square", method=kind, backend=backend)
    mc.sample_grams(net, N, 1, seed=0, **args)  # compile / warm up
    start = time.perf_counter()
    sample = mc.sample_grams(net, N, trials, seed=1, **args)
    return (time.perf_counter() - start) / trials, sample.meta["seconds_computing"] / trials


def trials_for(method, config, seconds):
    """Enough trials (in whole seed blocks for the package's methods) to run about ``seconds``."""
    probe, _ = run_method(method, config, 1 if method in ("vmap_grad", "backpack") else mc.SEED_BLOCK)
    trials = max(1, int(seconds / max(probe, 1e-9)))
    if method not in ("vmap_grad", "backpack"):
        trials = mc.SEED_BLOCK * max(1, math.ceil(trials / mc.SEED_BLOCK))
    return trials, probe


# -- FLOP counts ------------------------------------------------------------------------------------


def _sampling_meta(net, N) -> dict:
    """How ``sample_grams(method="lazy")`` samples ``net``: its trial's ``meta`` (layer modes, normals per trial),
    read without drawing anything."""
    return mc.MLPTrial(net, N, labels="tanh", loss="square", method="lazy", backend="numpy").meta()


def flops(method, config) -> float:
    """Dominant floating-point operations of one trial (2 per multiply-add)."""
    N, width, depth, d = config
    net = network(width, depth, d)
    shapes = net.layer_shapes
    forward = sum(2 * N * m * n for m, n in shapes)
    backward = sum(2 * N * m * n for m, n in shapes[1:])
    grams = sum(2 * N * N * (m + n) for m, n in shapes)
    if method in ("vmap_grad", "backpack"):
        P = net.n_params
        return forward + backward + sum(N * m * n for m, n in shapes) + 2 * N * N * P
    if method.startswith("dense"):
        return forward + backward + grams
    total = grams
    for p, ((m, n), mode) in enumerate(zip(shapes, _sampling_meta(net, N)["layer_modes"])):
        if mode == "dense":
            total += 2 * N * m * n * (2 if p > 0 else 1)
        else:
            total += 8 * n * N**2 + 2 * N**2 * m  # Cholesky QR2 of H^T and its check (beyond H H^T), Z = R^T A^T
            if p > 0:  # Delta A; G1^T U, C G1^T, (Delta A - C G1^T U) U^T; eigh
                total += 2 * N**2 * m + 6 * N**2 * n + 9 * N**3
    return float(total)


def matmul_rate(size: int = 2048) -> float:
    """Best measured float64 matrix-multiply rate (FLOP/s) of numpy and torch on all cores."""
    a = np.random.default_rng(0).standard_normal((size, size))
    best = 0.0
    for multiply in (lambda: a @ a, lambda: torch.from_numpy(a) @ torch.from_numpy(a)):
        multiply()
        for _ in range(3):
            start = time.perf_counter()
            multiply()
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def normals_per_trial(method, config) -> int:
    """Standard normals one trial draws: weights (or lazy draws), sphere data and the teacher's direction."""
    N, width, depth, d = config
    net = network(width, depth, d)
    if method.startswith("lazy"):
        weights = _sampling_meta(net, N)["weight_normals_per_trial"]
    else:
        weights = sum(m * n for m, n in net.layer_shapes)
    return weights + N * d + d


def normal_rates(count: int = 2**23) -> dict:
    """Best measured standard normals per second: numpy on 1 and on all threads (one generator each), torch CPU."""
    from concurrent.futures import ThreadPoolExecutor

    import numba

    threads = numba.get_num_threads()
    generators = [np.random.default_rng(k) for k in range(threads)]

    def best(draw, numbers):
        draw()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            draw()
            times.append(time.perf_counter() - start)
        return numbers / min(times)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        parallel = best(lambda: list(pool.map(lambda g: g.standard_normal(count), generators)), threads * count)
    generator = torch.Generator().manual_seed(0)
    return {"numpy_1_thread": best(lambda: generators[0].standard_normal(count), count),
            f"numpy_{threads}_threads": parallel, "numpy_all_threads": parallel,
            "torch_cpu": best(lambda: torch.randn(count, generator=generator, dtype=torch.float64), count)}


def rng_floor_seconds(method, config, rates) -> float:
    """Least seconds per trial to draw its normals (module docstring)."""
    rate = rates["numpy_1_thread"] if method in ("vmap_grad", "backpack") else rates["numpy_all_threads"]
    return normals_per_trial(method, config) / rate


# -- peak memory in a fresh process --------------------------------------------------------------------


def _peak_rise_mib(func):
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None

    def read(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])

    before = read("VmRSS")
    func()
    return (read("VmHWM") - before) / 1024


def memory_in_child(method, config):
    command = [sys.executable, __file__, "--memory-of", method, "--config", *map(str, config)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def available(method) -> bool:
    if method != "backpack":
        return True
    try:
        import backpack  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per (method, configuration)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    parser.add_argument("--smoke", action="store_true", help="a tiny configuration, for the test suite")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="the methods to time (default: all)")
    parser.add_argument("--memory-of", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=int, nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_of:
        config = tuple(args.config)
        small = (4, 12, 2, 6)
        run_method(args.memory_of, small, 1 if args.memory_of in ("vmap_grad", "backpack") else mc.SEED_BLOCK)
        trials = 1 if args.memory_of in ("vmap_grad", "backpack") else mc.SEED_BLOCK
        print(json.dumps(_peak_rise_mib(lambda: run_method(args.memory_of, config, trials))))
        return

    configs = SMOKE_CONFIGS if args.smoke else CONFIGS
    rate = matmul_rate(512 if args.smoke else 2048)
    rates = normal_rates(2**16 if args.smoke else 2**23)
    rows = []
    for config in configs:
        for method in args.methods:
            if not available(method):
                rows.append({"config": config, "method": method, "status": "not installed"})
                continue
            trials, _ = trials_for(method, config, 0.2 if args.smoke else args.seconds)
            seconds, computing = run_method(method, config, trials)
            work = flops(method, config)
            rng_floor = rng_floor_seconds(method, config, rates)
            floor = max(work / rate, rng_floor)
            memory = None if args.no_memory or args.smoke else memory_in_child(method, config)
            rows.append({"config": config, "method": method, "status": "ok", "trials": trials,
                         "trials_per_second": 1 / seconds, "flops_per_trial": work,
                         "floor_seconds": work / rate, "rng_floor_seconds": rng_floor,
                         "normals_per_trial": normals_per_trial(method, config),
                         "fraction_of_floor": floor / seconds, "fraction_of_matmul_rate": work / seconds / rate,
                         "fraction_of_matmul_rate_gram": work / computing / rate, "peak_memory_mib": memory})
            print(f"{config} {method:12s} {1 / seconds:12.2f} trials/s", flush=True)
    meta = {"matmul_flops_per_second": rate, "normals_per_second": rates, "cpu_threads": torch.get_num_threads(),
            "numpy": np.__version__, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    table = markdown(rows, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gram_methods.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (args.out / "gram_methods.md").write_text(table)
    print()
    print(table)


def markdown(rows, meta) -> str:
    """The table: trials/s, speed-ups against vmap(grad) and against dense, floor and memory."""
    normals = meta.get("normals_per_second", {})
    lines = [f"Measured float64 matrix-multiply rate: {meta['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s "
             f"({meta['cpu_threads']} threads).", "",
             "Measured standard-normal rates (float64, millions per second): "
             + ", ".join(f"{k.replace('_', ' ')} {v / 1e6:.0f}" for k, v in normals.items() if k != "numpy_all_threads")
             + ".", "",
             "| (N, width, depth, d) | method | trials/s | x vmap(grad) | x dense (same backend) | "
             "GFLOP/trial | FLOP floor trials/s | normals/trial | RNG floor trials/s | fraction (floor) | "
             "fraction (trial) | fraction (Gram) | peak MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by_key = {(tuple(r["config"]), r["method"]): r for r in rows}
    for r in rows:
        config = tuple(r["config"])
        if r["status"] != "ok":
            lines.append(f"| {config} | {r['method']} | {r['status']} | | | | | | | | | | |")
            continue
        base = by_key.get((config, "vmap_grad"))
        versus_vmap = r["trials_per_second"] / base["trials_per_second"] if base and base["status"] == "ok" else None
        dense_key = (config, "dense_" + r["method"].split("_")[-1])
        dense = by_key.get(dense_key) if r["method"].startswith("lazy") else None
        versus_dense = r["trials_per_second"] / dense["trials_per_second"] if dense else None
        memory = "n/a" if r["peak_memory_mib"] is None else f"{r['peak_memory_mib']:.0f}"
        lines.append(
            f"| {config} | {r['method']} | {r['trials_per_second']:.3g} | "
            f"{'' if versus_vmap is None else f'{versus_vmap:.1f}'} | "
            f"{'' if versus_dense is None else f'{versus_dense:.1f}'} | {r['flops_per_trial'] / 1e9:.3g} | "
            f"{1 / r['floor_seconds']:.3g} | {r['normals_per_trial']:.3g} | {1 / r['rng_floor_seconds']:.3g} | "
            f"{r['fraction_of_floor']:.2f} | {r['fraction_of_matmul_rate']:.2f} | "
            f"{r['fraction_of_matmul_rate_gram']:.2f} | {memory} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
