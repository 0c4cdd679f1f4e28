"""Which code made a result: a fingerprint of the source of ``montecarlo`` and ``theory``, the git commit, versions.

Every stored result (a results-store point, a figure's data) records
:func:`provenance`, and a stored result is reused only while
:func:`code_fingerprint` still equals the one it recorded; otherwise it is
recomputed.

Why a hash of the source rather than a hand-bumped data version per module:
a version number has to be remembered by whoever changes the code, and a
forgotten bump silently serves old numbers as new (the defect this replaces:
a sweep printed "done in 0.0 s" with numbers of code that no longer
existed).  A hash of every ``.py`` file cannot be forgotten.  Its cost is
that any edit, even of a docstring, makes every stored result stale and
recomputed: conservative, never stale.  Stores stay usable across such a
change (points are recomputed one by one, overwriting the old files), so the
cost is compute time, not lost work.

The fingerprint covers the source files of the *installed* packages (found
through their ``__file__``), sorted by relative path, with the path and the
bytes of each file in the hash, so a renamed, added or removed module changes
it too.  It is computed once per process (at first use) and cached: it
describes the code this process runs, and a file edited while a long sweep
runs does not change what that sweep records.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import subprocess
from pathlib import Path

#: The packages whose source decides the numbers.  ``paper_figures`` is hashed by its own runner.
PACKAGES = ("montecarlo", "theory")
GIT_TIMEOUT_S = 5.0


def package_root(name: str) -> Path:
    """The folder of the installed package ``name`` (without importing it).

    Parameters
    ----------
    name : str
        An importable package name, such as ``"montecarlo"``.

    Returns
    -------
    pathlib.Path
        The package's folder.

    Raises
    ------
    ValueError
        If ``name`` is not an installed package (a plain module has no folder to hash).
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"argument 'name': {name!r} is not an installed package")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def source_digest(folders, relative_to) -> str:
    """SHA-256 (hex) over the sorted relative paths and bytes of every ``.py`` file under ``folders``.

    Parameters
    ----------
    folders : iterable of path-like
        Folders searched recursively for ``*.py``; a path that is a file is hashed itself.
    relative_to : path-like
        Paths enter the hash relative to this folder, so the digest does not depend on where the code lives.

    Returns
    -------
    str
        64 hex digits.
    """
    base = Path(relative_to).resolve()
    files = set()
    for folder in folders:
        folder = Path(folder).resolve()
        files.update([folder] if folder.is_file() else folder.rglob("*.py"))
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(base).as_posix()):
        name = path.relative_to(base).as_posix().encode()
        data = path.read_bytes()
        # lengths delimit the fields, so moving bytes between a name and a file cannot give the same digest
        digest.update(len(name).to_bytes(8, "little") + name + len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """Fingerprint of the code that makes the numbers: 16 hex digits of the SHA-256 of ``montecarlo`` and ``theory``.

    Computed once per process and cached (see the module docstring).

    Returns
    -------
    str
        16 hex digits; equal fingerprints mean byte-identical ``.py`` sources of both packages.
    """
    roots = [package_root(name) for name in PACKAGES]
    common = roots[0].parent
    if any(root.parent != common for root in roots):
        # packages installed in different places: hash each relative to its own parent
        parts = [source_digest([root], root.parent) for root in roots]
        return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
    return source_digest(roots, common)[:16]


def _function_text(function) -> bytes:
    """The source of ``function``; its bytecode when the source cannot be read; its type and name for a builtin."""
    if function is None:
        return b"None"
    try:
        return inspect.getsource(function).encode()
    except (OSError, TypeError):  # defined in a console or by exec, or not Python code
        pass
    code = getattr(function, "__code__", None)
    if code is not None:
        return code.co_code
    return f"{type(function).__module__}.{type(function).__qualname__}:{getattr(function, '__name__', '')}".encode()


def function_digest(*functions) -> str:
    """16 hex digits of a SHA-256 over the source of each function: which code a run-time declaration runs.

    The package fingerprint (:func:`code_fingerprint`) covers the files of
    ``montecarlo`` and ``theory``; a function declared at run time (an
    activation given to ``register_activation``) is recorded by this digest
    instead, beside the results made with it.

    Parameters
    ----------
    *functions : callables or None
        Each enters the hash by its source text (``inspect.getsource``), or
        its bytecode (``__code__.co_code``) where the source cannot be read;
        None enters as such.  Values the functions read from outside (globals,
        closures) are not covered.

    Returns
    -------
    str
        16 hex digits.
    """
    digest = hashlib.sha256()
    for function in functions:
        text = _function_text(function)
        digest.update(len(text).to_bytes(8, "little") + text)
    return digest.hexdigest()[:16]


def _git(args, cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def git_commit() -> str | None:
    """The git commit of the checkout the packages live in, ``+dirty`` if their tracked files are modified.

    Returns
    -------
    str or None
        ``git rev-parse HEAD`` run in the package folder, with ``"+dirty"``
        appended when ``git status`` shows changes to tracked files under
        ``montecarlo/`` or ``theory/``; ``None`` when the packages are not in a
        git checkout, git is missing, or anything fails (the code fingerprint
        still identifies the code).  Cached per process, like the fingerprint.
    """
    roots = [package_root(name) for name in PACKAGES]
    head = _git(["rev-parse", "HEAD"], roots[0])
    if head is None or not head.strip():
        return None
    commit = head.strip()
    status = _git(["status", "--porcelain", "--untracked-files=no", "--", *map(str, roots)], roots[0])
    if status is None:
        return None  # a commit that might be dirty would claim more than is known
    return commit + ("+dirty" if status.strip() else "")


def provenance() -> dict:
    """What made a result: ``{"code": code_fingerprint(), "commit": git_commit(), "versions": {...}}``.

    Returns
    -------
    dict
        ``code``: the source fingerprint (decides reuse); ``commit``: the git
        commit or ``None`` (for people: which revision to check out);
        ``versions``: the package versions of :func:`versions`.
    """
    return {"code": code_fingerprint(), "commit": git_commit(), "versions": versions()}


def versions() -> dict:
    """Versions of the packages a result depends on (stored with every result).

    numba, scipy and torch are imported here, late: importing this module stays cheap.
    """
    from importlib.metadata import PackageNotFoundError, version

    import numba
    import numpy
    import scipy
    import torch

    try:
        own = version("gradient-confusion")
    except PackageNotFoundError:
        own = "not installed"
    return {"gradient-confusion": own, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "torch": torch.__version__}
