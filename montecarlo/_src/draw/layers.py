"""The random part of each layer of the paper's network, drawn for a trial: dense weights or lazy draws.

Which layers are drawn lazily (:func:`lazy_layers`), what a drawn layer holds
(:class:`LayerDraw`) and the drawing itself (:func:`draw_layers`, in a fixed
order from a ``NormalSource``).  Why a lazy draw is exact in law, and how the
Gram uses it, is ``gram/lazy.py``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

from .network import haar_semi_orthogonal

DENSE, LAZY_GAUSSIAN, LAZY_ORTHOGONAL = 0, 1, 2
MODE_NAMES = {DENSE: "dense", LAZY_GAUSSIAN: "lazy_gaussian", LAZY_ORTHOGONAL: "lazy_orthogonal"}


def lazy_layers(net, n_samples: int, method: str = "lazy") -> tuple[int, ...]:
    """The sampling mode of each layer (``DENSE``, ``LAZY_GAUSSIAN`` or ``LAZY_ORTHOGONAL``).

    ``method="dense"`` makes every layer dense.
    """
    if method == "dense":
        return (DENSE,) * net.n_layers
    modes = []
    for m, n in net.layer_shapes:
        if n > n_samples and m > n_samples and (net.init_scheme == "gaussian" or m >= n):
            modes.append(LAZY_GAUSSIAN if net.init_scheme == "gaussian" else LAZY_ORTHOGONAL)
        else:
            modes.append(DENSE)
    return tuple(modes)


@dataclass(frozen=True)
class LayerDraw:
    """The random part of one layer: ``W`` (dense), or ``A = W U`` and the normals of the backward pass.

    ``weight`` is ``W`` (``... x m x n``) for a dense layer and ``A`` (``... x m x N``)
    for a lazy one; ``g1`` and ``g2`` are the Gaussian matrices of the backward
    pass (``g1`` already multiplied by ``s`` for Gaussian layers).
    """

    mode: int
    weight: object
    g1: object = None
    g2: object = None
    scale: float = 1.0


def draw_layers(net, n_samples: int, source, lead: tuple, modes) -> tuple[list, list | None]:
    """Draw every layer's random part (and the biases), layer by layer, in a fixed order.

    A dense layer is drawn exactly as ``MLP.init`` draws it.
    """
    layers, biases = [], []
    for p, ((m, n), mode) in enumerate(zip(net.layer_shapes, modes)):
        if mode == DENSE:
            layers.append(LayerDraw(DENSE, net.draw_weight(p, source, lead)))
        elif mode == LAZY_GAUSSIAN:
            s = net.weight_std(p)
            layers.append(LayerDraw(LAZY_GAUSSIAN, source.scaled_normal(lead + (m, n_samples), s),
                                    g1=source.scaled_normal(lead + (n, n_samples), s), scale=s))
        else:
            k = min(n_samples, m - n_samples)
            frame = haar_semi_orthogonal(source, lead + (m, n_samples))
            layers.append(LayerDraw(LAZY_ORTHOGONAL, net.gain * frame, g1=source.normal(lead + (n, k)),
                                    g2=source.normal(lead + (m - n, k)), scale=net.gain))
        if net.bias:
            biases.append(net.draw_bias(p, source, lead))
    return layers, (biases if net.bias else None)




def describe_modes(modes) -> str:
    """``"lazy: layers 0-3; dense: layer 4"`` style summary for result metadata."""
    lazy = [p for p, mode in enumerate(modes) if mode != DENSE]
    dense = [p for p, mode in enumerate(modes) if mode == DENSE]
    if not lazy:
        return "dense (lazy sampling needs fan-in and fan-out > N: no layer qualifies)"
    return f"lazy: layers {lazy}; dense: layers {dense}"
