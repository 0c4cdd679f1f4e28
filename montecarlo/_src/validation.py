"""Argument checks shared by every public entry point.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong kind of object)
with a message that names the argument, says what is accepted and shows what
was given, so that bad input never reaches a numba or torch kernel.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

DTYPES = ("float64", "float32")


def _show(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def integer(name: str, value, *, minimum: int) -> int:
    """Return ``value`` as an int, requiring an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"argument '{name}' must be an integer >= {minimum}, got {_show(value)}")
    if value < minimum:
        raise ValueError(f"argument '{name}' must be an integer >= {minimum}, got {value}")
    return int(value)


def positive_real(name: str, value) -> float:
    """Return ``value`` as a float, requiring a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"argument '{name}' must be a finite real number > 0, got {_show(value)}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"argument '{name}' must be a finite real number > 0, got {value}")
    return value


def nonnegative_real(name: str, value) -> float:
    """Return ``value`` as a float, requiring a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"argument '{name}' must be a finite real number >= 0, got {_show(value)}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"argument '{name}' must be a finite real number >= 0, got {value}")
    return value


def flag(name: str, value) -> bool:
    """Require a bool (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"argument '{name}' must be True or False, got {_show(value)}")
    return bool(value)


def choice(name: str, value, accepted: Iterable[str]) -> str:
    """Require one of the strings in ``accepted``."""
    accepted = tuple(accepted)
    if not isinstance(value, str) or value not in accepted:
        options = ", ".join(repr(a) for a in accepted)
        raise ValueError(f"argument '{name}' must be one of {options}; got {_show(value)}")
    return value


def dtype(name: str, value) -> np.dtype:
    """Require float64 or float32 (given as a string or a numpy dtype)."""
    try:
        resolved = np.dtype(value)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(
            f"argument '{name}' must be 'float64' or 'float32', got {_show(value)}"
        )
    return resolved


def finite_array(name: str, value, *, ndim: tuple[int, ...]) -> np.ndarray:
    """Convert to a float64 array with one of the allowed ``ndim`` and only finite entries."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"argument '{name}' must be an array of real numbers, got {_show(value)}") from None
    if array.ndim not in ndim:
        allowed = " or ".join(str(n) for n in ndim)
        raise ValueError(
            f"argument '{name}' must have {allowed} dimensions, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"argument '{name}' must be finite, but {bad} entries are NaN or infinite")
    return array


# Memory available to a computation, in bytes, for the checks of ``fits_in_memory``.  ``None`` (the
# default) measures it each time; set it (tests do) or the environment variable below to override.
MEMORY_LIMIT: int | None = None
MEMORY_LIMIT_ENV = "GRADIENT_CONFUSION_MEMORY_LIMIT"


def available_memory() -> int | None:
    """Bytes of memory a computation may still allocate, or ``None`` when it cannot be told.

    In order: :data:`MEMORY_LIMIT`, the environment variable ``GRADIENT_CONFUSION_MEMORY_LIMIT``
    (bytes), ``MemAvailable`` of ``/proc/meminfo`` (Linux; it counts reclaimable page cache,
    unlike ``MemFree``), lowered to the room left under a cgroup v2 ``memory.max`` (containers),
    and last ``os.sysconf`` free physical pages.
    """
    import os

    if MEMORY_LIMIT is not None:
        return int(MEMORY_LIMIT)
    if os.environ.get(MEMORY_LIMIT_ENV):
        try:
            return int(float(os.environ[MEMORY_LIMIT_ENV]))
        except ValueError:
            raise ValueError(f"environment variable {MEMORY_LIMIT_ENV} must be a number of bytes, "
                             f"got {os.environ[MEMORY_LIMIT_ENV]!r}") from None
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        available = None
    try:  # a container's own limit can be far below the machine's memory
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as current:
            text = limit.read().strip()
            if text != "max":
                room = int(text) - int(current.read().strip())
                available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    return max(int(available), 0)


def fits_in_memory(estimate: int, what: str, available: int | None = None, *, lower: str | None = None) -> None:
    """Refuse, before anything is allocated, a computation whose estimated peak exceeds the memory available.

    ``what`` names the arguments that set the size (it goes into the message,
    with the estimate and the memory available in GiB), ``lower`` says which to
    lower (default: a smaller network, fewer examples or a smaller
    batch_size).  ``available`` defaults to :func:`available_memory`; when that
    cannot be told nothing is refused.
    """
    available = available_memory() if available is None else available
    if available is not None and estimate > available:
        lower = lower or "use a smaller network, fewer examples or a smaller batch_size"
        raise ValueError(
            f"{what} need an estimated {_gib(estimate)} at peak, but only {_gib(available)} "
            f"of memory is available; {lower}"
        )


def _gib(count: int) -> str:
    """Bytes in GiB for a message: three significant digits, whole GiB with thousands separators from 1000 up."""
    gib = count / 2**30
    return f"{gib:.3g} GiB" if gib < 1000 else f"{gib:,.0f} GiB"


def scheduler(name: str, value):
    """A Dask scheduler: None (run here), "local", an address (``tcp://host:8786``, ``host:8786``) or a Client."""
    if value is None or value == "local":
        return value
    if isinstance(value, str):
        if value.strip() and ":" in value and not any(c.isspace() for c in value):
            return value
    else:
        from dask.distributed import Client

        if isinstance(value, Client):
            return value
    raise ValueError(f"argument '{name}' must be None (run here, one after another), 'local' (a local Dask "
                     f"cluster), a Dask scheduler address such as 'tcp://host:8786', or a distributed.Client, got "
                     f"{_show(value)}")


def output_folder(name: str, value):
    """A results folder given as a path (str or os.PathLike) that is not an existing file."""
    import os
    from pathlib import Path

    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"argument '{name}' must be a folder path (str or pathlib.Path), got {_show(value)}")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ValueError(f"argument '{name}': {path} exists and is not a folder")
    return path
