"""Models for the paper's training protocol (section 7): the CNN-beta-l family and classification MLPs.

"CNN-beta-l" is a wide residual network (Zagoruyko & Komodakis 2016) of depth
``beta = 6 n + 4`` and width factor ``l`` with the skip connections and batch
normalisation removed (paper section 7; grids beta in {16, 22, ..., 40},
l in {2, ..., 6}).  :func:`cnn` builds it with either or both put back, as in
the paper's Figure 4.  Layout: a 3x3 stem convolution with ``base`` channels,
three groups of ``n`` pre-activation blocks with ``base*l``, ``2*base*l`` and
``4*base*l`` channels (strides 1, 2, 2), each block
``[BN] ReLU conv3x3 [BN] ReLU conv3x3`` plus, with ``skip``, the identity (a
strided 1x1 convolution where the shape changes), then ``[BN] ReLU``, global
average pooling and a linear classifier.  Convolutions have no bias, as in
WRN.  Initialisation is He's (MSRA, ``kaiming_normal_``, fan-in, relu gain), as
in the paper; linear biases start at zero.

On inputs of height 1 (MNIST-1D, ``N x 1 x 1 x 40``) the 3x3 convolutions are
1x3 (``one_dimensional``; :func:`build_model` chooses it from the input's
shape): a 3x3 kernel there has two of its rows on the zero padding, so He's
fan-in would count three times the inputs a unit sees and a plain net's signal
would shrink threefold in variance at every layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import validation


def wrn_blocks(depth: int) -> int:
    """Blocks per group ``n`` of a WRN of depth ``6 n + 4`` (refusing other depths)."""
    depth = validation.integer("depth", depth, minimum=10)
    if (depth - 4) % 6:
        raise ValueError(f"argument 'depth' must be 6 n + 4 (10, 16, 22, 28, 34, 40, ...), got {depth}")
    return (depth - 4) // 6


class _Block(nn.Module):
    def __init__(self, cin, cout, stride, skip, batchnorm, kernel=3, padding=1):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin) if batchnorm else nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.norm2 = nn.BatchNorm2d(cout) if batchnorm else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, kernel, stride=1, padding=padding, bias=False)
        self.skip = skip
        self.shortcut = None
        if skip and (stride != 1 or cin != cout):
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x):
        out = self.conv1(torch.relu(self.norm1(x)))
        out = self.conv2(torch.relu(self.norm2(out)))
        if self.skip:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return out


class CNN(nn.Module):
    """CNN-beta-l (see the module docstring); ``skip`` and ``batchnorm`` put WRN's pieces back; ``one_dimensional``
    makes its 3x3 convolutions 1x3, for inputs of height 1."""

    def __init__(self, depth: int, width: int, in_channels: int, num_classes: int, skip: bool = False,
                 batchnorm: bool = False, base: int = 16, one_dimensional: bool = False):
        super().__init__()
        n = wrn_blocks(depth)
        width = validation.integer("width", width, minimum=1)
        base = validation.integer("base", base, minimum=1)
        self.config = dict(depth=depth, width=width, skip=skip, batchnorm=batchnorm, base=base)
        channels = [base, base * width, 2 * base * width, 4 * base * width]
        kernel, padding = ((1, 3), (0, 1)) if one_dimensional else (3, 1)
        self.stem = nn.Conv2d(in_channels, channels[0], kernel, padding=padding, bias=False)
        blocks = []
        for group in range(3):
            for i in range(n):
                cin = channels[group] if i == 0 else channels[group + 1]
                stride = 2 if (group > 0 and i == 0) else 1
                blocks.append(_Block(cin, channels[group + 1], stride, skip, batchnorm, kernel, padding))
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.BatchNorm2d(channels[-1]) if batchnorm else nn.Identity()
        self.classifier = nn.Linear(channels[-1], num_classes)
        he_initialise(self)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = torch.relu(self.norm(x)).mean(dim=(2, 3))
        return self.classifier(x)


class ClassifierMLP(nn.Module):
    """A fully connected classifier: ``depth`` hidden layers of ``width`` units, He initialisation."""

    def __init__(self, input_dim: int, width: int, depth: int, num_classes: int, activation: str = "relu"):
        super().__init__()
        validation.choice("activation", activation, ("relu", "tanh"))
        dims = [input_dim] + [width] * validation.integer("depth", depth, minimum=0)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.classifier = nn.Linear(dims[-1], num_classes)
        self.activation = torch.relu if activation == "relu" else torch.tanh
        self.config = dict(depth=depth, width=width, activation=activation)
        he_initialise(self)

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.activation(layer(x))
        return self.classifier(x)


def he_initialise(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """He (MSRA) normal initialisation of every conv and linear weight; zero biases; BN at (1, 0)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


MODELS = ("cnn", "mlp")


def _unseeded(kind, depth, width, in_shape, num_classes, skip, batchnorm, base) -> nn.Module:
    validation.choice("model", kind, MODELS)
    if kind == "cnn":
        return CNN(depth, width, in_shape[0], num_classes, skip=skip, batchnorm=batchnorm, base=base,
                   one_dimensional=len(in_shape) == 3 and in_shape[1] == 1)
    return ClassifierMLP(math.prod(in_shape), width, depth, num_classes)


def build_model(kind: str, depth: int, width: int, in_shape: tuple, num_classes: int, *, skip=False,
                batchnorm=False, base=16, seed=0, dtype=torch.float64) -> nn.Module:
    """A seeded model: "cnn" (CNN-beta-l) or "mlp" (``ClassifierMLP`` on flattened inputs)."""
    model = _unseeded(kind, depth, width, in_shape, num_classes, skip, batchnorm, base)
    generator = torch.Generator().manual_seed(seed)
    he_initialise(model, generator)
    return model.to(dtype)


def meta_model(kind: str, depth: int, width: int, in_shape: tuple, num_classes: int, *, skip=False, batchnorm=False,
               base=16, dtype=torch.float64) -> nn.Module:
    """The model :func:`build_model` builds, on torch's meta device: its shapes without its memory.

    For estimating what a run needs before anything is allocated (a meta
    model's forward pass on meta inputs gives every shape, instantly,
    whatever the size); its values are undefined.
    """
    with torch.device("meta"):
        return _unseeded(kind, depth, width, in_shape, num_classes, skip, batchnorm, base).to(dtype)
