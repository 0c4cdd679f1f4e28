"""Peak memory and time of module_gram against materialising every per-example gradient, on a CNN at N = 128.

    python benchmarks/module_gram_memory.py [--n 128 --depth 16 --width 4 --image 32 --dtype float32]

The model is CNN-depth-width (WRN layout, no skip, no batch norm, base 16
channels) on random 3 x image x image inputs with 10 classes.  "materialise"
is torch.func ``vmap(grad)`` of the per-example cross-entropy over all
parameters (an ``N x P`` array), then ``J J^T``.  Each method runs in a fresh
process; peak memory is the rise of the peak resident set (VmHWM) above the
resident set before the call.  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from montecarlo import CNN, module_gram

LOSS = nn.CrossEntropyLoss(reduction="none")


def problem(args):
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    model = CNN(args.depth, args.width, 3, 10, base=16).to(dtype)
    x = torch.randn(args.n, 3, args.image, args.image, dtype=dtype)
    y = torch.randint(10, (args.n,))
    return model, x, y


def materialise(model, x, y):
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def example_loss(p, xi, yi):
        return LOSS(functional_call(model, p, (xi[None],)), yi[None]).sum()

    per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))(params, x, y)
    J = torch.cat([g.reshape(x.shape[0], -1) for g in per_example.values()], dim=1)
    return (J @ J.T).numpy()


def run(method, args):
    model, x, y = problem(args)
    if method == "module_gram":
        return lambda: module_gram(model, LOSS, x, y).G
    return lambda: materialise(model, x, y)


def _status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])


def child(method, args):
    small = argparse.Namespace(**{**vars(args), "n": 4, "image": 8})
    run(method, small)()  # warm up
    call = run(method, args)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    start = time.perf_counter()
    G = call()
    seconds = time.perf_counter() - start
    print(json.dumps({"mib": (_status("VmHWM") - before) / 1024, "seconds": seconds, "G00": float(G[0, 0])}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--image", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--child", choices=("module_gram", "materialise"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    model, x, _ = problem(args)
    P = sum(p.numel() for p in model.parameters())
    results = {}
    for method in ("module_gram", "materialise"):
        command = [sys.executable, __file__, "--child", method] + [f"--{k}={v}" for k, v in vars(args).items()
                                                                     if k != "child"]
        done = subprocess.run(command, capture_output=True, text=True)
        results[method] = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    bytes_per = np.dtype(args.dtype).itemsize
    print(f"\nCNN-{args.depth}-{args.width} (base 16), input 3x{args.image}x{args.image}, N = {args.n}, "
          f"P = {P:,}, {args.dtype}\n")
    print("| method | peak memory rise (MiB) | seconds |")
    print("|---|---:|---:|")
    for method, result in results.items():
        if result is None:
            print(f"| {method} | failed | |")
        else:
            print(f"| {method} | {result['mib']:.0f} | {result['seconds']:.2f} |")
    print(f"| (the N x P per-example gradients alone) | {args.n * P * bytes_per / 2**20:.0f} | |")
    if all(results.values()):
        print(f"\nG[0, 0] agrees: {results['module_gram']['G00']:.6g} vs {results['materialise']['G00']:.6g}")


if __name__ == "__main__":
    main()
