"""Pieces of lecture 22: SPADE normalisation, vector quantisation (VQ-VAE / VQGAN), GAN inversion and linear
latent edits."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from gancourse.deep.conditional import ClassConditionalBatchNorm2d  # noqa: E402
from gancourse.deep.inversion import (  # noqa: E402
    conditional_direction,
    edit_codes,
    fit_encoder,
    invert,
    linear_direction,
    reconstruction_error,
)
from gancourse.deep.spade import SPADE, one_hot_map  # noqa: E402
from gancourse.deep.vector_quantize import (  # noqa: E402
    PatchVQAutoencoder,
    VectorQuantizer,
    adaptive_gan_weight,
    codebook_usage,
    nearest_code,
    straight_through,
    vq_losses,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# ------------------------------------------------------------------------------------ vector quantisation
def test_nearest_code_is_the_argmin_of_the_distances():
    gen = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(50, 6, generator=gen), torch.randn(9, 6, generator=gen)
    expected = torch.cdist(z, codebook).argmin(dim=1)
    assert torch.equal(nearest_code(z, codebook), expected)
    with pytest.raises(ValueError, match=r"shape \(N, 6\)"):
        nearest_code(torch.randn(3, 5), codebook)


def test_quantizer_outputs_are_codebook_rows_for_vectors_and_maps():
    torch.manual_seed(0)
    vq = VectorQuantizer(n_codes=7, dim=3)
    out = vq(torch.randn(10, 3))
    assert out.z_q.shape == (10, 3) and out.indices.shape == (10,)
    assert torch.allclose(out.z_q, vq.codebook[out.indices], atol=1e-6)  # z_e + (z_q - z_e) rounds
    fmap = torch.randn(2, 3, 4, 5)
    out = vq(fmap)
    assert out.z_q.shape == (2, 3, 4, 5) and out.indices.shape == (2, 4, 5)
    # the vector at (n, :, y, x) is the code its index names, and that code is the nearest one
    for n, y, x in [(0, 0, 0), (1, 3, 4), (0, 2, 1)]:
        k = out.indices[n, y, x]
        assert torch.allclose(out.z_q[n, :, y, x], vq.codebook[k], atol=1e-6)
        assert k == torch.cdist(fmap[n, :, y, x][None], vq.codebook).argmin()
    with pytest.raises(ValueError, match="shape"):
        vq(torch.randn(2, 4, 3, 3))


def test_straight_through_passes_the_gradient_unchanged():
    z_e = torch.randn(5, 4, requires_grad=True)
    codebook = torch.randn(3, 4)
    z_q = codebook[nearest_code(z_e.detach(), codebook)]
    out = straight_through(z_e, z_q)
    assert torch.allclose(out, z_q, atol=1e-6)  # the code's value, up to the rounding of z_e + (z_q - z_e)
    w = torch.randn(5, 4)
    (w * out).sum().backward()
    assert torch.equal(z_e.grad, w)  # d out / d z_e = identity


def test_straight_through_value_is_the_code():
    # exact for values where z_e + (z_q - z_e) does not round
    z_e = torch.tensor([[0.5, -1.0]])
    z_q = torch.tensor([[1.0, 0.0]])
    assert torch.equal(straight_through(z_e, z_q), z_q)


def test_vq_losses_values_and_where_their_gradients_go():
    z_e = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    codebook = torch.tensor([[0.0, 1.0], [3.0, 3.0]], requires_grad=True)
    idx = nearest_code(z_e.detach(), codebook.detach())
    assert idx.tolist() == [0, 0]  # distances 1 vs 18, and 1 vs 8
    codebook_loss, commitment = vq_losses(z_e, codebook[idx], beta=0.25)
    # z_q - z_e = [[0, 1], [-1, 0]]: mean square 2/4
    assert codebook_loss.item() == pytest.approx(0.5)
    assert commitment.item() == pytest.approx(0.125)
    codebook_loss.backward(retain_graph=True)
    assert z_e.grad is None  # the codebook term moves the codes only
    # d/de_0 of mean (e_0 - z_e_i)^2 over 4 entries = 2/4 * sum_i (e_0 - z_e_i) = 0.5 * ([0, 1] + [-1, 0])
    assert torch.allclose(codebook.grad, torch.tensor([[-0.5, 0.5], [0.0, 0.0]]))
    codebook.grad = None
    commitment.backward()
    assert codebook.grad is None  # the commitment term moves the encoder only
    # d/dz_e 0.25 * mean (z_e - z_q)^2 = 0.25 * 2 (z_e - z_q) / 4
    assert torch.allclose(z_e.grad, 0.125 * (z_e.detach() - codebook.detach()[idx]))


def test_quantizer_losses_and_codebook_learning():
    torch.manual_seed(1)
    vq = VectorQuantizer(n_codes=4, dim=2, beta=0.5)
    z = torch.randn(6, 2)
    out = vq(z)
    q = vq.codebook.detach()[out.indices]
    assert out.codebook_loss.item() == pytest.approx(((z - q) ** 2).mean().item(), rel=1e-6)
    assert out.commitment_loss.item() == pytest.approx(0.5 * ((z - q) ** 2).mean().item(), rel=1e-6)
    # a few steps on the codebook loss alone pull the codes onto the data (online k-means)
    data = torch.cat([torch.randn(100, 2) * 0.05 + torch.tensor(c) for c in ([2.0, 2.0], [-2.0, 2.0], [0.0, -2.0])])
    vq.init_from(data, generator=torch.Generator().manual_seed(0))
    assert all((vq.codebook.detach()[k] == data).all(1).any() for k in range(4))  # rows of the data
    with torch.no_grad():
        vq.codebook.add_(0.5)  # moved off the data: the codebook loss must bring the codes back
    opt = torch.optim.SGD(vq.parameters(), lr=1.0)
    first = None
    for _ in range(30):
        loss = vq(data).codebook_loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert vq(data).codebook_loss.item() < 0.1 * first


def test_patch_vq_autoencoder_shapes_gradients_and_decoding_from_indices():
    torch.manual_seed(0)
    ae = PatchVQAutoencoder(channels=1, patch=4, dim=5, n_codes=6)
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    x_hat, out = ae(x)
    assert x_hat.shape == x.shape and out.indices.shape == (3, 8, 8) and x_hat.abs().max() < 1
    assert torch.allclose(ae.decode_indices(out.indices), x_hat, atol=1e-6)
    loss = F.mse_loss(x_hat, x) + out.codebook_loss + out.commitment_loss
    loss.backward()
    # the straight-through estimator carries the reconstruction loss back to the encoder
    assert ae.encoder.weight.grad is not None and ae.encoder.weight.grad.abs().sum() > 0
    assert ae.quantizer.codebook.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiples of 4"):
        ae(torch.zeros(1, 1, 30, 30))


def test_codebook_usage_perplexity():
    counts, ppl = codebook_usage(torch.arange(8).repeat(5), 8)
    assert counts.tolist() == [5] * 8 and ppl == pytest.approx(8.0)
    counts, ppl = codebook_usage(torch.full((10,), 3), 8)
    assert counts[3] == 10 and counts.sum() == 10 and ppl == pytest.approx(1.0)
    _, ppl = codebook_usage(torch.tensor([0, 0, 0, 1]), 4)  # p = (3/4, 1/4)
    assert ppl == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))
    with pytest.raises(ValueError, match="0..3"):
        codebook_usage(torch.tensor([0, 4]), 4)


def test_adaptive_gan_weight_is_the_ratio_of_gradient_norms():
    torch.manual_seed(0)
    W = torch.randn(3, 4, requires_grad=True)
    x, t = torch.randn(4), torch.randn(3)
    y = W @ x
    rec = ((y - t) ** 2).sum()
    gan = -(torch.tensor([1.0, -2.0, 0.5]) * y).sum()
    lam = adaptive_gan_weight(rec, gan, W)
    g_rec = torch.outer(2 * (y.detach() - t), x)  # d rec / dW
    g_gan = -torch.outer(torch.tensor([1.0, -2.0, 0.5]), x)
    assert lam.item() == pytest.approx((g_rec.norm() / (g_gan.norm() + 1e-6)).item(), rel=1e-5)
    assert not lam.requires_grad
    (rec + lam * gan).backward()  # the graph is still there
    assert W.grad is not None


# ------------------------------------------------------------------------------------------------ SPADE
def _randomise(layer: SPADE, seed: int = 0) -> SPADE:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return layer


def test_spade_shapes_and_a_new_layer_is_plain_normalisation():
    torch.manual_seed(0)
    layer = SPADE(6, label_channels=3, hidden=8)
    x = torch.randn(4, 6, 8, 8)
    m = one_hot_map(torch.randint(0, 3, (4, 16, 16)), 3)  # a finer map: resized to 8x8
    out = layer(x, m)
    assert out.shape == (4, 6, 8, 8)
    assert torch.allclose(out, F.batch_norm(x, None, None, training=True), atol=1e-6)
    gamma, beta = layer.modulation(m, (8, 8))
    assert gamma.shape == beta.shape == (4, 6, 8, 8)
    with pytest.raises(ValueError, match=r"\(N, 3, h, w\)"):
        layer(x, torch.zeros(4, 2, 8, 8))
    with pytest.raises(ValueError, match="odd"):
        SPADE(6, 3, kernel_size=4)
    with pytest.raises(ValueError, match="'batch', 'instance'"):
        SPADE(6, 3, norm="layer")


def test_spade_with_a_constant_map_is_class_conditional_batch_norm():
    torch.manual_seed(0)
    k, c = 3, 5
    layer = _randomise(SPADE(c, label_channels=k, hidden=8, padding_mode="replicate"))
    x = torch.randn(6, c, 7, 7)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    m = one_hot_map(y[:, None, None].expand(6, 7, 7), k)  # each image one class everywhere
    out = layer(x, m)
    gamma, beta = layer.modulation(one_hot_map(torch.arange(k)[:, None, None].expand(k, 7, 7), k), (7, 7))
    assert torch.allclose(gamma, gamma[:, :, :1, :1].expand_as(gamma), atol=1e-5)  # constant in space
    cbn = ClassConditionalBatchNorm2d(c, k)
    with torch.no_grad():
        cbn.gain.weight.copy_(1 + gamma[:, :, 0, 0])
        cbn.bias.weight.copy_(beta[:, :, 0, 0])
    assert torch.allclose(out, cbn(x, y), atol=1e-5)
    # with the paper's zero padding it holds away from the border only
    zero = _randomise(SPADE(c, label_channels=k, hidden=8, padding_mode="zeros"))
    out = zero(x, m)
    with torch.no_grad():
        cbn.gain.weight.copy_(1 + zero.modulation(m[[0, 1, 2]], (7, 7))[0][:, :, 3, 3])
        cbn.bias.weight.copy_(zero.modulation(m[[0, 1, 2]], (7, 7))[1][:, :, 3, 3])
    ref = cbn(x, y)
    assert torch.allclose(out[:, :, 2:-2, 2:-2], ref[:, :, 2:-2, 2:-2], atol=1e-5)  # two 3x3 convs: 2 pixels
    assert not torch.allclose(out[:, :, 0, 0], ref[:, :, 0, 0], atol=1e-3)


def test_spade_modulation_follows_the_map_where_instance_norm_washes_it_away():
    torch.manual_seed(0)
    k = 4
    uniform = one_hot_map(torch.arange(k)[:, None, None].expand(k, 8, 8), k)  # one class per image
    conv = nn.Conv2d(k, 3, 3, padding=1, padding_mode="replicate")
    washed = F.instance_norm(conv(uniform))  # a constant map per image normalises to zero
    assert washed.abs().max() < 1e-3
    layer = _randomise(SPADE(3, label_channels=k, hidden=8, norm="instance", padding_mode="replicate"))
    x = torch.randn(1, 3, 8, 8).expand(k, 3, 8, 8)  # the same features for every class
    out = layer(x, uniform)
    assert (out[0] - out[1]).abs().mean() > 0.1  # the class still decides the output
    # a two-region map: the gain differs between the regions
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 1
    gamma, _ = layer.modulation(one_hot_map(labels, k), (8, 8))
    assert (gamma[0, :, 3:5, 1] - gamma[0, :, 3:5, 6]).abs().max() > 0.1


def test_one_hot_map():
    labels = torch.tensor([[[0, 2], [1, 1]]])
    m = one_hot_map(labels, 3)
    assert m.shape == (1, 3, 2, 2) and torch.equal(m.argmax(1), labels) and torch.equal(m.sum(1), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="0..2"):
        one_hot_map(torch.tensor([[[3]]]), 3)


# --------------------------------------------------------------------------------- inversion and editing
def _tiny_generator(seed: int = 0) -> nn.Module:
    """A small MLP generator z (N, 8) -> images (N, 1, 8, 8) in (-1, 1), with batch norm (so eval mode matters)."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(8, 64), nn.BatchNorm1d(64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                      nn.Unflatten(1, (1, 8, 8)))
    with torch.no_grad():  # running statistics from a few batches, then eval mode
        for _ in range(3):
            G(torch.randn(64, 8))
    return G.eval()


def _tiny_encoder(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(1), nn.Linear(64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 8))


def test_invert_recovers_a_generated_image_and_leaves_the_generator_alone():
    G = _tiny_generator()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    gen = torch.Generator().manual_seed(3)
    z_true = torch.randn(3, 8, generator=gen)
    with torch.no_grad():
        x = G(z_true)
    res = invert(G, x, z_dim=8, steps=150, lr=0.05, restarts=3, generator=gen)
    assert res.z.shape == (3, 8) and res.images.shape == x.shape and res.history.shape == (151,)
    assert res.history[-1] < 0.2 * res.history[0]
    assert torch.allclose(res.error, reconstruction_error(G, res.z, x), atol=1e-6)
    assert torch.allclose(res.history[-1], res.error.mean(), atol=1e-6)  # the kept restart is the best one
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert all(p.grad is None for p in G.parameters())
    assert not G.training
    # started at the true code with no steps, the error is zero
    exact = invert(G, x, z_dim=8, steps=0, restarts=1, z_init=z_true)
    assert exact.error.max() < 1e-10
    with pytest.raises(ValueError, match=r"z_init must have shape \(3, 8\)"):
        invert(G, x, z_dim=8, z_init=torch.zeros(2, 8))


def test_fit_encoder_learns_to_invert_the_generator():
    G = _tiny_generator(1)
    E = _tiny_encoder()
    losses = fit_encoder(G, E, z_dim=8, steps=150, batch_size=32, lr=2e-3,
                         generator=torch.Generator().manual_seed(0))
    assert len(losses) == 150 and np.isfinite(losses).all()
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15])
    assert all(p.grad is None for p in G.parameters())


def test_linear_direction_finds_the_planted_direction():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(400, 6, generator=gen)
    w = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0, 3.0])
    direction = linear_direction(z, z @ w + 4.0 + 0.01 * torch.randn(400, generator=gen))
    assert direction.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(direction, w / w.norm(), atol=1e-3)
    with pytest.raises(ValueError, match="more codes than dimensions"):
        linear_direction(z[:6], (z @ w)[:6])
    with pytest.raises(ValueError, match="zero"):
        linear_direction(z, torch.full((400,), 2.0))


def test_conditional_direction_is_orthogonal_to_the_others():
    gen = torch.Generator().manual_seed(0)
    others = torch.randn(3, 8, generator=gen)
    n = torch.randn(8, generator=gen)
    n = n / n.norm()
    m = conditional_direction(n, others)
    assert m.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert (others @ m).abs().max() < 1e-5  # no first-order change of the other attributes
    assert float(m @ n) > 0  # still the same way as the original direction
    # a direction already orthogonal to the others is unchanged
    q, _ = torch.linalg.qr(others.T)
    ortho = n - q @ (q.T @ n)
    ortho = ortho / ortho.norm()
    assert torch.allclose(conditional_direction(ortho, others), ortho, atol=1e-6)
    with pytest.raises(ValueError, match="span"):
        conditional_direction(others[0] + 2 * others[1], others)
    with pytest.raises(ValueError, match=r"\(K, D\)"):
        conditional_direction(n, torch.randn(3, 7))


def test_edit_codes():
    z, n = torch.zeros(3), torch.tensor([0.0, 1.0, 0.0])
    codes = edit_codes(z, n, torch.tensor([-1.0, 0.0, 2.0]))
    assert torch.equal(codes, torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(D,\)"):
        edit_codes(torch.zeros(2, 3), n, torch.zeros(1))
