"""Equalized learning rate, pixelwise feature normalization and the minibatch standard deviation."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from gancourse.deep.equalized import (  # noqa: E402
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    minibatch_stddev,
    pixel_norm,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_equalized_linear_is_a_linear_layer_with_he_scaled_weights():
    torch.manual_seed(0)
    layer = EqualizedLinear(50, 7, gain=1.0, bias_init=0.5)
    x = torch.randn(4, 50)
    expected = x @ (layer.weight / math.sqrt(50)).T + 0.5
    torch.testing.assert_close(layer(x), expected)
    assert float(layer.weight.detach().std()) == pytest.approx(1.0, abs=0.1)  # stored at unit scale


def test_lr_mul_keeps_the_function_and_scales_the_gradient_step():
    torch.manual_seed(1)
    a = EqualizedLinear(8, 3, lr_mul=1.0, bias_init=0.2)
    b = EqualizedLinear(8, 3, lr_mul=0.01, bias_init=0.2)
    with torch.no_grad():
        b.weight.copy_(a.weight / 0.01)
    x = torch.randn(5, 8)
    torch.testing.assert_close(a(x), b(x))
    # one SGD step of size eta changes b's effective weights 0.01^2 as much (stored * 1/lr_mul, used * lr_mul)
    for layer in (a, b):
        layer(x).sum().backward()
    eff_a = a.weight.grad * a.scale
    eff_b = b.weight.grad * b.scale
    torch.testing.assert_close(eff_b, eff_a * 0.01 ** 2)


def test_equalized_conv_matches_conv2d_with_scaled_weights():
    torch.manual_seed(2)
    conv = EqualizedConv2d(3, 5, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    expected = F.conv2d(x, conv.weight * math.sqrt(2) / math.sqrt(27), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape == (2, 5, 8, 8)


def test_pixel_norm_makes_each_pixel_unit_mean_square():
    x = torch.randn(3, 16, 4, 4) * 5
    y = pixel_norm(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(3, 4, 4), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pixel_norm(2 * x), y, rtol=1e-5, atol=1e-6)  # scale invariant


def _reference_stddev(x: torch.Tensor, group: int) -> torch.Tensor:
    """Sample i belongs to group i mod (N / group); loop over groups."""
    n = len(x)
    m = n // group
    out = torch.empty(n)
    for j in range(m):
        members = x[j::m]  # (group, C, H, W)
        std = members.std(dim=0, unbiased=False)
        out[j::m] = std.mean()
    return out


def test_minibatch_stddev_appends_the_group_statistic():
    torch.manual_seed(3)
    x = torch.randn(8, 3, 4, 4)
    y = minibatch_stddev(x, group_size=4, eps=0.0)
    assert y.shape == (8, 4, 4, 4)
    torch.testing.assert_close(y[:, :3], x)
    stat = y[:, 3]
    assert torch.all(stat == stat[:, :1, :1])  # constant over the map
    torch.testing.assert_close(stat[:, 0, 0], _reference_stddev(x, 4))


def test_minibatch_stddev_is_zero_for_identical_samples_and_checks_the_group():
    x = torch.randn(1, 2, 3, 3).repeat(4, 1, 1, 1)
    y = MinibatchStdDev(4)(x)
    assert float(y[:, 2].abs().max()) < 1e-3  # sqrt(eps) only
    assert minibatch_stddev(torch.randn(2, 1, 2, 2), group_size=4).shape == (2, 2, 2, 2)  # group = batch
    with pytest.raises(ValueError, match="divisible"):
        minibatch_stddev(torch.randn(6, 1, 2, 2), group_size=4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lr_mul"):
        EqualizedLinear(3, 3, lr_mul=0)
    with pytest.raises(ValueError, match="in_channels"):
        EqualizedConv2d(0, 3, 3)
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(0)
