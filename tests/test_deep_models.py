"""DCGAN, WGAN-GP critic and CycleGAN networks: shapes, layer rules from the papers, parameter counts, init."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from gancourse.deep.cyclegan import PatchDiscriminator, ResidualBlock, ResnetGenerator, patch_receptive_field  # noqa: E402
from gancourse.deep.dcgan import (  # noqa: E402
    DCGANDiscriminator,
    DCGANGenerator,
    WGANCritic,
    count_parameters,
    init_dcgan_weights,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def convs(m: nn.Module) -> list[nn.Module]:
    return [x for x in m.modules() if isinstance(x, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [8, 32, 64])
def test_dcgan_shapes(channels, size):
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=10, channels=channels, width=4, image_size=size)
    D = DCGANDiscriminator(channels=channels, width=4, image_size=size)
    C = WGANCritic(channels=channels, width=4, image_size=size, norm="layer")
    x = G(torch.randn(5, 10))
    assert x.shape == (5, channels, size, size)
    assert x.abs().max() <= 1.0  # tanh output
    assert D(x).shape == (5,)
    assert C(x).shape == (5,)


def test_dcgan_32_channel_progression():
    G = DCGANGenerator(z_dim=100, channels=1, width=64, image_size=32)
    outs = [m.out_channels for m in convs(G)]
    assert outs == [256, 128, 64, 1]
    strides = [m.stride for m in convs(G)]
    assert strides == [(1, 1), (2, 2), (2, 2), (2, 2)]  # upsampling by strided transposed convolutions
    D = DCGANDiscriminator(channels=3, width=64, image_size=32)
    assert [m.out_channels for m in convs(D)] == [64, 128, 256, 1]
    assert [m.stride for m in convs(D)][:3] == [(2, 2)] * 3  # no pooling: strided convolutions
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in list(G.modules()) + list(D.modules()))


def test_batch_norm_placement_and_activations():
    G = DCGANGenerator(z_dim=8, channels=1, width=4, image_size=32)
    layers = list(G.net)
    # BN after every transposed convolution except the output one, which is followed by tanh
    assert isinstance(layers[-1], nn.Tanh) and isinstance(layers[-2], nn.ConvTranspose2d)
    for i, m in enumerate(layers[:-2]):
        if isinstance(m, nn.ConvTranspose2d):
            assert isinstance(layers[i + 1], nn.BatchNorm2d) and isinstance(layers[i + 2], nn.ReLU)
    assert not any(isinstance(m, nn.LeakyReLU) for m in layers)

    D = DCGANDiscriminator(channels=1, width=4, image_size=32)
    dl = list(D.net)
    assert isinstance(dl[0], nn.Conv2d) and isinstance(dl[1], nn.LeakyReLU)  # no BN on the input layer
    assert sum(isinstance(m, nn.BatchNorm2d) for m in dl) == 2
    assert all(m.negative_slope == 0.2 for m in dl if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, (nn.ReLU, nn.Sigmoid)) for m in dl)  # D returns logits


@pytest.mark.parametrize("norm, n_gn", [("none", 0), ("layer", 2)])
def test_critic_has_no_batch_norm(norm, n_gn):
    C = WGANCritic(channels=1, width=4, image_size=32, norm=norm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in C.modules())
    gn = [m for m in C.modules() if isinstance(m, nn.GroupNorm)]
    assert len(gn) == n_gn and all(m.num_groups == 1 for m in gn)  # GroupNorm(1, C) = layer norm over (C, H, W)


def test_critic_scores_are_per_sample():
    # without batch norm one sample's score does not depend on the rest of the batch (needed by the penalty)
    torch.manual_seed(0)
    C = WGANCritic(channels=1, width=4, image_size=16, norm="layer")
    x = torch.randn(6, 1, 16, 16)
    assert torch.allclose(C(x)[:2], C(x[:2]), atol=1e-6)
    D = DCGANDiscriminator(channels=1, width=4, image_size=16).train()
    assert not torch.allclose(D(x)[:2], D(x[:2]), atol=1e-6)  # batch norm couples the samples


def test_parameter_counts_match_hand_formula():
    z, w, c = 5, 3, 2
    G = DCGANGenerator(z_dim=z, channels=c, width=w, image_size=16)  # 1x1 -> 4 -> 8 -> 16
    # ConvT(z, 2w, 4) no bias + BN(2w) + ConvT(2w, w) no bias + BN(w) + ConvT(w, c) with bias
    expected_g = z * 2 * w * 16 + 2 * 2 * w + 2 * w * w * 16 + 2 * w + w * c * 16 + c
    assert count_parameters(G) == expected_g
    D = DCGANDiscriminator(channels=c, width=w, image_size=16)  # 16 -> 8 -> 4 -> 1
    expected_d = (c * w * 16 + w) + (w * 2 * w * 16 + 2 * 2 * w) + (2 * w * 16 + 1)
    assert count_parameters(D) == expected_d
    C = WGANCritic(channels=c, width=w, image_size=16)  # biases instead of BN
    assert count_parameters(C) == (c * w * 16 + w) + (w * 2 * w * 16 + 2 * w) + (2 * w * 16 + 1)
    full = DCGANGenerator(100, 1, 64, 32)
    assert 5e5 < count_parameters(full) < 5e6


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=100, channels=3, width=64, image_size=32)
    big = convs(G)[1].weight  # 256 x 128 x 4 x 4 weights
    assert abs(big.mean().item()) < 1e-3
    assert abs(big.std().item() - 0.02) < 1e-3
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    gains = torch.cat([m.weight for m in bns])
    assert abs(gains.mean().item() - 1) < 0.01 and abs(gains.std().item() - 0.02) < 0.01
    assert all(m.bias.abs().max() == 0 for m in bns)
    lin = nn.Linear(300, 300)
    init_dcgan_weights(lin)
    assert abs(lin.weight.std().item() - 0.02) < 1e-3 and lin.bias.abs().max() == 0


@pytest.mark.parametrize("bad", [dict(image_size=24), dict(image_size=4), dict(width=0), dict(z_dim=1.5)])
def test_bad_arguments_are_reported(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        DCGANGenerator(**bad)


def test_wrong_input_shapes_are_reported():
    with pytest.raises(ValueError, match="z must have shape"):
        DCGANGenerator(z_dim=10, width=4)(torch.randn(3, 11))
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        DCGANDiscriminator(width=4)(torch.randn(3, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown norm"):
        WGANCritic(norm="batch")


# ---------------------------------------------------------------------------------------------- CycleGAN


@pytest.mark.parametrize("c_in, c_out", [(1, 3), (3, 1), (3, 3)])
def test_resnet_generator_shapes(c_in, c_out):
    torch.manual_seed(0)
    G = ResnetGenerator(c_in, c_out, width=4, n_blocks=2)
    y = G(torch.randn(2, c_in, 32, 32))
    assert y.shape == (2, c_out, 32, 32)
    assert y.abs().max() <= 1.0
    assert sum(isinstance(m, ResidualBlock) for m in G.modules()) == 2
    assert any(isinstance(m, nn.InstanceNorm2d) for m in G.modules())
    with pytest.raises(ValueError, match="divisible by 4"):
        G(torch.randn(1, c_in, 30, 30))


def test_residual_block_is_identity_plus_residual():
    torch.manual_seed(0)
    block = ResidualBlock(4)
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(block(x), x + block.body(x))
    for p in block.body[-1].parameters():  # zero the last norm's affine map: the residual vanishes
        nn.init.zeros_(p)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("n_layers, side", [(1, 14), (2, 6), (3, 2)])
def test_patch_discriminator_map(n_layers, side):
    D = PatchDiscriminator(channels=3, width=4, n_layers=n_layers)
    out = D(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 1, side, side)
    first = convs(D)[0]
    assert not isinstance(list(D.net)[1], nn.InstanceNorm2d)  # no norm after the first layer
    assert first.stride == (2, 2)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_patch_receptive_field_matches_gradient_support(n_layers):
    torch.manual_seed(0)
    D = PatchDiscriminator(channels=1, width=2, n_layers=n_layers).double().eval()
    for i, m in enumerate(D.net):  # instance norm mixes all positions through its statistics: drop it here
        if isinstance(m, nn.InstanceNorm2d):
            D.net[i] = nn.Identity()
    x = torch.randn(1, 1, 96, 96, dtype=torch.float64, requires_grad=True)
    out = D(x)
    h = out.shape[-1] // 2
    out[0, 0, h, h].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    r = patch_receptive_field(n_layers)
    assert rows.max() - rows.min() + 1 == r and cols.max() - cols.min() + 1 == r
    assert patch_receptive_field(3) == 70  # the paper's 70x70 PatchGAN


def test_cyclegan_init():
    torch.manual_seed(0)
    G = ResnetGenerator(3, 3, width=32, n_blocks=2)
    w = torch.cat([m.weight.flatten() for m in convs(G)])
    assert abs(w.std().item() - 0.02) < 2e-3
    assert 1e5 < count_parameters(G) < 5e6
