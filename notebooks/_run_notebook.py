"""Execute, or open in JupyterLab, a copy of one notebook; the tracked ``notebooks/*.ipynb`` are never written.

    python notebooks/_run_notebook.py                                  # the notebooks' names
    python notebooks/_run_notebook.py NAME [--scale fast|small|large]  # execute a fresh copy
    python notebooks/_run_notebook.py NAME --open [--fresh]            # JupyterLab on the copy

``python3 tasks.py notebook ...`` runs this in the project's environment with the ``notebooks`` extra (JupyterLab,
ipykernel, ipywidgets, nbclient).  The copy is ``results/notebooks/NAME.ipynb`` (``results/`` is ignored by git;
``--out DIR`` puts it elsewhere), executed there in a kernel named ``gradient-confusion``, which this registers in the
environment (``sys.prefix``) on first use; its parameters are read at the scale ``--scale`` (the notebooks'
``GC_NOTEBOOK_SCALE``; "small" is the scale of the stored outputs).  Executing always starts from the tracked
notebook and replaces the copy; ``--open`` keeps a copy you already have (your edits) unless ``--fresh``.  To use the
kernel from a Jupyter installed elsewhere: ``.venv/bin/python -m ipykernel install --user --name gradient-confusion``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "results" / "notebooks"
KERNEL = "gradient-confusion"
KERNEL_DISPLAY = "Python (gradient-confusion)"
SCALES = ("fast", "small", "large")


def names() -> list[str]:
    """The notebooks one can run: the stems of ``notebooks/*.ipynb``."""
    return sorted(p.stem for p in HERE.glob("*.ipynb"))


def register_kernel(prefix: str | os.PathLike = sys.prefix) -> Path:
    """The kernel ``gradient-confusion`` (this Python) under ``prefix/share/jupyter/kernels``; installed when it is
    missing or names another Python.  Returns its folder."""
    folder = Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL
    spec = folder / "kernel.json"
    if spec.exists() and json.loads(spec.read_text()).get("argv", [None])[0] == sys.executable:
        return folder
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL, display_name=KERNEL_DISPLAY, prefix=str(prefix)))


def copy_notebook(name: str, out: str | os.PathLike = OUT, fresh: bool = True) -> Path:
    """``out/NAME.ipynb``: the tracked notebook with the kernel ``gradient-confusion`` (kept when present and not
    ``fresh``)."""
    if name not in names():
        raise SystemExit(f"no notebook {name!r}; the notebooks are: {', '.join(names())}")
    out = Path(out)
    target = out / f"{name}.ipynb"
    if fresh or not target.exists():
        notebook = nbformat.read(HERE / f"{name}.ipynb", as_version=4)
        notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL_DISPLAY, "language": "python"}
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
    return target


def execute(name: str, *, scale: str = "small", out: str | os.PathLike = OUT, prefix: str | os.PathLike = sys.prefix,
            timeout: int = 1800) -> Path:
    """Execute a fresh copy of notebook ``name`` at ``scale`` in ``out``; returns the executed copy.

    A cell that fails raises nbclient's ``CellExecutionError`` after the copy, with its outputs so far, is written.
    """
    from nbclient import NotebookClient

    if scale not in SCALES:
        raise SystemExit(f"argument 'scale' must be one of {', '.join(SCALES)}, got {scale!r}")
    register_kernel(prefix)
    target = copy_notebook(name, out, fresh=True)
    notebook = nbformat.read(target, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(target.parent)}})
    try:
        client.execute(env=dict(os.environ, GC_NOTEBOOK_SCALE=scale))
    finally:
        nbformat.write(notebook, target)
    return target


def open_lab(name: str, *, scale: str | None = None, out: str | os.PathLike = OUT, fresh: bool = False,
             prefix: str | os.PathLike = sys.prefix) -> int:
    """JupyterLab on the copy of notebook ``name`` in ``out`` (its kernels at ``scale`` when given); blocks until the
    server stops and returns its exit status."""
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        raise SystemExit("JupyterLab is missing: install the notebooks extra (pip install -e .[notebooks], or run "
                         "python3 tasks.py notebook, which does)")
    register_kernel(prefix)
    target = copy_notebook(name, out, fresh=fresh)
    env = dict(os.environ, **({"GC_NOTEBOOK_SCALE": scale} if scale else {}))
    print(f"opening {target} (a copy: the tracked notebooks/{name}.ipynb is not changed)", flush=True)
    root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []   # containers run as root
    return subprocess.call([sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={target.parent}", *root,
                            str(target)], env=env)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 tasks.py notebook", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="examples:\n  python3 tasks.py notebook rare_tails --scale fast\n"
                                            "  python3 tasks.py notebook rare_tails --open")
    parser.add_argument("name", nargs="?", help=f"the notebook, one of: {', '.join(names())}")
    parser.add_argument("--open", action="store_true", help="open the copy in JupyterLab instead of executing it")
    parser.add_argument("--scale", choices=SCALES, help="the notebook's scale (default: small when executing, the "
                                                        "notebook's own default in JupyterLab)")
    parser.add_argument("--fresh", action="store_true", help="with --open: replace an existing copy")
    parser.add_argument("--out", default=str(OUT), help="folder of the copies (default: results/notebooks)")
    args = parser.parse_args(argv)
    if args.name is None:
        print("notebooks: " + ", ".join(names()))
        parser.print_usage()
        return 2
    if args.open:
        return open_lab(args.name, scale=args.scale, out=args.out, fresh=args.fresh)
    start = time.perf_counter()
    target = execute(args.name, scale=args.scale or "small", out=args.out)
    print(f"executed {target} at scale {args.scale or 'small'!r} in {time.perf_counter() - start:.0f} s "
          f"(open it: python3 tasks.py notebook {args.name} --open)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
