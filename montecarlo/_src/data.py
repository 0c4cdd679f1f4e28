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

from . import validation
from .random_source import as_source, unit_rows


def sample_sphere(n: int, d: int, rng, batch: int | None = None) -> np.ndarray:
    """Draw ``n`` points exactly uniform on the unit sphere ``S^{d-1}`` in ``R^d``.

    Normalised standard Gaussian vectors (the Gaussian law is rotation
    invariant, so the direction is exactly uniform).  Returns shape ``(n, d)``,
    or ``(batch, n, d)`` with ``batch`` independent data sets; a torch tensor
    when ``rng`` is a torch-backed ``NormalSource``.
    """
    n = validation.integer("n", n, minimum=1)
    d = validation.integer("d", d, minimum=2)
    source = as_source(rng)
    lead = () if batch is None else (validation.integer("batch", batch, minimum=1),)
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
        source = as_source(rng)
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
        source = as_source(rng)
        signs = source.xp.sign(source.normal(X.shape[:-1]))
        return source.xp.where(signs == 0, source.xp.ones_like(signs), signs)


LABELS = {cls.name: cls for cls in (LinearTeacher, TanhTeacher, RandomSigns)}


def make_labels(spec):
    """Resolve a labelling spec: a name in ``LABELS`` or an object with ``__call__(X, rng)``."""
    if isinstance(spec, str):
        return LABELS[validation.choice("labels", spec, LABELS)]()
    if callable(spec):
        return spec
    raise TypeError(
        f"argument 'labels' must be one of {', '.join(map(repr, LABELS))} or a callable "
        f"labels(X, rng); got {spec!r}"
    )
