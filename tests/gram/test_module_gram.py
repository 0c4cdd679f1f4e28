"""module_gram of any torch model against brute-force per-example autograd (float64, 1e-9 relative)."""

import numpy as np
import pytest
import torch
from torch import nn

from montecarlo import CNN, ClassifierMLP, module_gram

LOSS = nn.CrossEntropyLoss(reduction="none")


def brute_force_gram(model, loss_fn, inputs, targets):
    """One autograd call per example: the per-example gradient of its loss (batch forward, as the model runs)."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(inputs.shape[0]):
        loss = loss_fn(model(inputs), targets)[i]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]))
    J = torch.stack(rows).detach().numpy()
    return J @ J.T


def relative_error(G, reference):
    return np.max(np.abs(G - reference)) / np.max(np.abs(reference))


def _data(shape, n=6, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n,) + shape, generator=g, dtype=torch.float64), torch.randint(classes, (n,), generator=g)


def test_mlp():
    torch.manual_seed(0)
    model = ClassifierMLP(10, 16, 3, 4, activation="tanh").double()
    x, y = _data((10,))
    result = module_gram(model, LOSS, x, y)
    assert relative_error(result.G, brute_force_gram(model, LOSS, x, y)) < 1e-9
    assert set(result.methods.values()) == {"linear"}


@pytest.mark.parametrize("conv", ["auto", "spatial", "materialise"])
def test_cnn_with_strides_and_padding(conv):
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1, bias=True), nn.ReLU(),
        nn.Conv2d(5, 6, 3, stride=2, padding=1, dilation=1, bias=False), nn.Tanh(),
        nn.Conv2d(6, 3, 2, stride=1, padding=0, dilation=2, bias=True), nn.ReLU(),
        nn.Flatten(), nn.Linear(3 * 2 * 2, 4),
    ).double()
    x, y = _data((2, 8, 8))
    result = module_gram(model, LOSS, x, y, conv=conv)
    assert relative_error(result.G, brute_force_gram(model, LOSS, x, y)) < 1e-9
    if conv != "auto":
        assert {m for name, m in result.methods.items() if m.startswith("conv")} == {f"conv:{conv}"}


def test_residual_block_and_wrn_family():
    torch.manual_seed(2)
    # a residual block with a strided projection shortcut (3 -> 6 channels): CNN-beta-l's first block of group 2
    residual = CNN(10, 1, 1, 4, skip=True, batchnorm=False, base=3).blocks[1]
    assert residual.shortcut is not None and residual.conv1.stride == (2, 2)
    block = nn.Sequential(residual, nn.Flatten(), nn.Linear(6 * 4 * 4, 4)).double()
    x, y = _data((3, 8, 8))
    assert relative_error(module_gram(block, LOSS, x, y).G, brute_force_gram(block, LOSS, x, y)) < 1e-9
    wrn = CNN(10, 1, 1, 4, skip=True, batchnorm=False, base=4).double()
    x, y = _data((1, 8, 8))
    assert relative_error(module_gram(wrn, LOSS, x, y).G, brute_force_gram(wrn, LOSS, x, y)) < 1e-9


def _batchnorm_net():
    torch.manual_seed(3)
    model = CNN(10, 1, 1, 4, skip=True, batchnorm=True, base=4).double()
    model.train()
    x, y = _data((1, 8, 8), n=8)
    with torch.no_grad():  # give the running statistics non-trivial values
        for _ in range(3):
            model(x + 0.3)
    return model, x, y


def test_batchnorm_in_eval_mode():
    model, x, y = _batchnorm_net()
    model.eval()
    result = module_gram(model, LOSS, x, y)
    assert "batchnorm" in result.methods.values()
    assert relative_error(result.G, brute_force_gram(model, LOSS, x, y)) < 1e-9
    assert not model.training


def test_batchnorm_with_batch_statistics_held_fixed():
    """Train mode couples the examples; 'batch' means each example normalised by this batch's statistics,
    treated as constants: brute force on a copy whose running statistics are set to them, in eval mode."""
    import copy

    model, x, y = _batchnorm_net()
    before = [m.running_mean.clone() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    result = module_gram(model, LOSS, x, y, batchnorm="batch")
    after = [m.running_mean for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert model.training and all(torch.equal(a, b) for a, b in zip(before, after))  # model restored

    fixed = copy.deepcopy(model)
    inputs = {}
    for m in fixed.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_pre_hook(lambda mod, args: inputs.__setitem__(mod, args[0].detach()))
    with torch.no_grad():
        fixed(x)  # train mode: the batch statistics at every batch norm
    for m, z in inputs.items():
        m.running_mean = z.mean((0, 2, 3))
        m.running_var = z.var((0, 2, 3), unbiased=False)
    fixed.eval()
    assert relative_error(result.G, brute_force_gram(fixed, LOSS, x, y)) < 1e-9


class _Scaled(nn.Module):
    """A module with a parameter of its own that no factorised rule knows: goes through vmap(grad)."""

    def __init__(self, n):
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, n, dtype=torch.float64))

    def forward(self, x):
        return torch.sin(x * self.scale)


def test_fallback_for_other_modules_and_shared_layers():
    torch.manual_seed(4)
    shared = nn.Linear(7, 7).double()
    model = nn.Sequential(nn.Linear(5, 7).double(), _Scaled(7), nn.LayerNorm(7).double(), shared, nn.Tanh(), shared,
                          nn.Linear(7, 4).double())
    x, y = _data((5,))
    result = module_gram(model, LOSS, x, y, chunk_size=4)
    assert all(p.requires_grad for p in model.parameters())  # the caller's model is left as it was
    assert result.methods["1"] == "vmap" and result.methods["2"] == "vmap" and result.methods["3"] == "linear"
    assert relative_error(result.G, brute_force_gram(model, LOSS, x, y)) < 1e-9


def test_bad_input():
    model = ClassifierMLP(4, 3, 1, 2).double()
    x, y = _data((4,), classes=2)
    with pytest.raises(ValueError, match=r"one loss per example"):
        module_gram(model, nn.CrossEntropyLoss(), x, y)
    with pytest.raises(ValueError, match=r"argument 'batchnorm' must be one of 'eval', 'batch'"):
        module_gram(model, LOSS, x, y, batchnorm="train")
    with pytest.raises(ValueError, match=r"N >= 2 examples"):
        module_gram(model, LOSS, x[:1], y[:1])
