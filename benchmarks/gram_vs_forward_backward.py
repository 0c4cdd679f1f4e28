"""Time and memory of the exact Gram against one torch forward+backward pass of the same network.

Target (foundation issue): ``gradient_gram`` (numba, float64) at N=256,
width=512, depth=4, input_dim=256 takes at most 3x one batched forward+backward
pass in torch, with peak memory far below the N x P per-example gradient array.

    python benchmarks/gram_vs_forward_backward.py [--n 256 --width 512 --depth 4 --d 256 --repeats 7]

Prints a markdown table.  Peak memory is measured in a fresh process per
method: after a warm-up on a tiny problem (JIT compilation) and building the
inputs, the rise of the peak resident set (VmHWM, reset through
/proc/self/clear_refs) above the resident set during one call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import montecarlo as mc


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def peak_rise_mib(func) -> float | None:
    """Rise of peak resident memory during ``func()``, in MiB (None where Linux does not allow the reset)."""
    if not _reset_peak():
        return None
    before = _rss_kib("VmRSS")
    func()
    return (_rss_kib("VmHWM") - before) / 1024


def median_seconds(func, repeats: int) -> float:
    func()  # warm-up (JIT compilation, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_forward_backward(net, params, X, y):
    """One batched forward and backward pass of eq. 4 (relu, square loss) in torch, float64."""
    weights = [torch.tensor(w, requires_grad=True) for w in params.weights]
    Xt, yt = torch.tensor(X), torch.tensor(y)

    def step():
        h = Xt
        for p, W in enumerate(weights):
            h = h @ W.T
            if p < len(weights) - 1 or net.output_activation:
                h = torch.relu(h)
        loss = 0.5 * ((net.gamma * h[:, 0] - yt) ** 2).sum()
        loss.backward()
        for W in weights:
            W.grad = None

    return step


def _problem(n, width, depth, d):
    rng = np.random.default_rng(0)
    net = mc.MLP(d, width, depth, activation="relu")
    params = net.init(rng)
    X = mc.sample_sphere(n, d, rng)
    return net, params, X, mc.TanhTeacher()(X, rng)


def _method(name: str, net, params, X, y):
    if name == "forward_backward":
        return torch_forward_backward(net, params, X, y)
    return lambda: mc.gradient_gram(net, params, X, y, backend=name)


METHODS = {
    "forward_backward": "torch forward+backward (batched, float64)",
    "numba": "gradient_gram numba float64",
    "torch": "gradient_gram torch float64",
    "numpy": "gradient_gram numpy float64",
}


def _memory_in_child(name: str, args) -> float | None:
    """Run ``--memory-of name`` in a fresh interpreter and read the MiB it prints."""
    command = [sys.executable, __file__, "--memory-of", name, "--n", str(args.n), "--width", str(args.width),
               "--depth", str(args.depth), "--d", str(args.d)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory-of", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_of:
        _method(args.memory_of, *_problem(4, 3, 2, 3))()  # compile / warm up on a tiny problem
        call = _method(args.memory_of, *_problem(args.n, args.width, args.depth, args.d))
        print(json.dumps(peak_rise_mib(call)))
        return

    net, params, X, y = _problem(args.n, args.width, args.depth, args.d)
    times = {name: median_seconds(_method(name, net, params, X, y), args.repeats) for name in METHODS}
    t_fb = times["forward_backward"]

    print(f"\nN={args.n}, width={args.width}, depth={args.depth}, input_dim={args.d}, P={net.n_params:,} parameters, "
          f"torch threads={torch.get_num_threads()}, median of {args.repeats}\n")
    print("| method | time (ms) | / forward+backward | peak memory rise (MiB) |")
    print("|---|---:|---:|---:|")
    for name, label in METHODS.items():
        mib = _memory_in_child(name, args)
        memory = "n/a" if mib is None else f"{mib:.1f}"
        print(f"| {label} | {1e3 * times[name]:.1f} | {times[name] / t_fb:.2f} | {memory} |")
    print(f"| N x P per-example gradients (float64), for comparison | | | {args.n * net.n_params * 8 / 2**20:.0f} |")
    print(f"\ngradient_gram (numba) / torch forward+backward = {times['numba'] / t_fb:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
