"""Data on the sphere and labelling functions (paper section 4(a)).

The theorems take ``x_i`` i.i.d. uniform on ``S^{d-1}`` and labels ``C(x_i)``
from a labelling function with ``|C(x)| <= 1`` and ``|grad C(x)| <= 1`` on the
unit ball.  :class:`LinearTeacher` and :class:`TanhTeacher` satisfy both;
:class:`RandomSigns` (independent +-1 labels) is not a function of ``x`` at all
and is marked as outside the theorems' assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import validation
from .random_source import as_source, check_rng, unit_rows


def sample_sphere(n: int, d: int, rng, batch: int | None = None) -> np.ndarray:
    """Draw ``n`` points exactly uniform on the unit sphere ``S^{d-1}`` in ``R^d``.

    Normalised standard Gaussian vectors (the Gaussian law is rotation
    invariant, so the direction is exactly uniform).  Returns shape ``(n, d)``,
    or ``(batch, n, d)`` with ``batch`` independent data sets; a torch tensor
    when ``rng`` is a torch-backed ``NormalSource``.
    """
    n = validation.integer("n", n, minimum=1)
    d = validation.integer("d", d, minimum=2)
    lead = () if batch is None else (validation.integer("batch", batch, minimum=1),)
    source = as_source(check_rng(rng))
    return unit_rows(source.normal(lead + (n, d)), source.xp)


def _teacher_direction(v, X, source):
    """The teacher's unit vector: the given ``v``, or one uniform draw per data set."""
    if v is not None:
        return source.asarray(v)
    return sample_sphere(1, X.shape[-1], source, batch=None if X.ndim == 2 else X.shape[0])[..., 0, :]


def _check_direction(v) -> np.ndarray | None:
    if v is None:
        return None
    v = validation.finite_array("v", v, ndim=(1,))
    norm = np.linalg.norm(v)
    if not np.isclose(norm, 1.0, rtol=1e-12, atol=0):
        raise ValueError(f"argument 'v' must be a unit vector (|v| = 1), got |v| = {norm!r}")
    return v


@dataclass(frozen=True)
class _SingleIndexTeacher:
    """``C(x) = link(<v, x>)`` with ``|v| = 1``; ``v=None`` draws a fresh uniform ``v`` per data set."""

    v: np.ndarray | None = None
    within_assumptions = True

    def __post_init__(self):
        object.__setattr__(self, "v", _check_direction(self.v))

    def __call__(self, X, rng=None):
        """Labels of ``X`` (shape ``(n, d)`` or ``(T, n, d)``); ``rng`` draws ``v`` when it is not fixed."""
        # rng=None is fine with a fixed v (nothing is drawn); with v=None it would draw OS entropy.
        source = as_source(None if self.v is not None and rng is None else check_rng(rng))
        v = _teacher_direction(self.v, X, source)
        return self.link(source.xp.einsum("...nd,...d->...n", X, v), source.xp)


class LinearTeacher(_SingleIndexTeacher):
    """``C(x) = <v, x>`` with ``|v| = 1``: ``|C| <= 1`` and 1-Lipschitz on the unit ball.

    With ``v=None`` a fresh ``v`` uniform on the sphere is drawn from ``rng``
    for every data set (every trial).
    """

    name = "linear"
    link = staticmethod(lambda t, xp: t)


class TanhTeacher(_SingleIndexTeacher):
    """``C(x) = tanh(<v, x>)`` with ``|v| = 1``: ``|C| < 1`` and 1-Lipschitz everywhere.

    With ``v=None`` a fresh ``v`` uniform on the sphere is drawn per data set.
    """

    name = "tanh"
    link = staticmethod(lambda t, xp: xp.tanh(t))


@dataclass(frozen=True)
class RandomSigns:
    """Independent uniform +-1 labels.

    Not a labelling function of ``x``: OUTSIDE the theorems' assumptions
    (``within_assumptions = False``); useful as the memorisation regime.
    """

    within_assumptions = False
    name = "random_sign"

    def __call__(self, X, rng=None):
        """Labels for the points of ``X`` (shape ``(n, d)`` or ``(T, n, d)``): signs of standard normals."""
        source = as_source(check_rng(rng))
        signs = source.xp.sign(source.normal(X.shape[:-1]))
        return source.xp.where(signs == 0, source.xp.ones_like(signs), signs)


LABELS = {cls.name: cls for cls in (LinearTeacher, TanhTeacher, RandomSigns)}


def make_labels(spec):
    """Resolve a labelling spec: a name in ``LABELS`` or an object with ``__call__(X, rng)``.

    A callable that is not one of the package's labelling classes is wrapped
    (:class:`CheckedLabels`) so that its output is checked on every call: a
    NaN or a wrong shape would otherwise reach a numba kernel and come back as
    an unreadable ``SystemError``.
    """
    if isinstance(spec, str):
        return LABELS[validation.choice("labels", spec, LABELS)]()
    if isinstance(spec, (_SingleIndexTeacher, RandomSigns, CheckedLabels)):
        return spec
    if callable(spec):
        return CheckedLabels(spec)
    raise TypeError(
        f"argument 'labels' must be one of {', '.join(map(repr, LABELS))} or a callable "
        f"labels(X, rng); got {spec!r}"
    )


class CheckedLabels:
    """A user's ``labels(X, rng)`` whose output is required to be finite reals of shape ``X.shape[:-1]``.

    Attributes such as ``name`` and the ``repr`` are the wrapped callable's, so
    that results record the same configuration with and without the check.
    """

    def __init__(self, function):
        self.function = function

    def __call__(self, X, rng=None):
        y = self.function(X, rng)
        if type(y).__module__.startswith("torch"):  # a tensor (labels drawn on a device): checked where it lives
            import torch

            if y.is_complex() or not (y.is_floating_point() or y.dtype in (torch.int32, torch.int64)):
                raise TypeError(f"argument 'labels' must return real numbers, got a tensor of dtype {y.dtype}")
            shape, finite = tuple(y.shape), bool(torch.isfinite(y).all())
        else:
            try:
                y = np.asarray(y)
            except (TypeError, ValueError):
                raise TypeError(f"argument 'labels' must return an array of real numbers, got {type(y).__name__}") \
                    from None
            if y.dtype.kind not in "fiub":
                raise TypeError(f"argument 'labels' must return real numbers, got an array of dtype {y.dtype}")
            shape, finite = y.shape, bool(np.all(np.isfinite(y)))
        expected = tuple(X.shape[:-1])
        if shape != expected:
            raise ValueError(f"argument 'labels' must return one label per example, an array of shape {expected} "
                             f"(X.shape[:-1] for X of shape {tuple(X.shape)}), got shape {shape}")
        if not finite:
            raise ValueError("argument 'labels' returned NaN or infinite labels; they must be finite real numbers")
        return y

    def __getattr__(self, name):
        if name == "function":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.function, name)

    def __repr__(self):
        return repr(self.function)
