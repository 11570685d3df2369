"""BigGAN's tricks at MNIST size (Brock, Donahue & Simonyan 2019, "Large scale GAN training for high fidelity
natural image synthesis").

The pieces, each one function or class:

- :class:`HierarchicalBatchNorm2d`: class-conditional batch norm whose gain and bias are **linear maps of a
  vector** ``c = [e(y), z_i]`` (the shared class embedding and this block's chunk of the latent), not rows of a
  per-class table: ``out = (1 + W_g c) * BN(x) + W_b c``. It is
  :class:`gancourse.deep.conditional.ClassConditionalBatchNorm2d` with :meth:`affine` replaced;
- :class:`BigGANGenerator`: a **shared embedding** ``e(y)`` (one table for all blocks) and **hierarchical
  latents**: ``z`` is split into ``n_blocks + 1`` equal chunks; the first feeds the linear layer that makes the
  4x4 map, chunk ``i + 1`` conditions the batch norms of residual up-block ``i``;
- :class:`BigGANDiscriminator`: residual down-blocks, ReLU, sum-pooling over positions, and the projection head
  ``psi(h) + <v_y, h>`` (Miyato & Koyama 2018) or, for the ablation, the label as one-hot planes concatenated
  with the image;
- :func:`apply_spectral_norm`: ``W / sigma(W)`` on every convolution, linear layer (and D's class embedding)
  with ``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et al. 2018), in G and D as in BigGAN;
- :func:`orthogonal_penalty` / :func:`orthogonal_regularization`: BigGAN's relaxed orthogonal regulariser
  ``R_beta(W) = beta * ||W^T W (.) (1 - I)||_F^2`` (section 3.1, beta = 1e-4), applied to G's weights;
- :func:`truncated_normal`: the truncation trick with resampling (section 3.1): ``z ~ N(0, I)`` with every
  value of magnitude above the threshold drawn again;

Shapes at width ``w`` (32x32, three blocks): ``G: z (N, 4k) + y (N,) -> (N, 4w, 4, 4) -> (N, 2w, 8, 8) ->
(N, w, 16, 16) -> (N, w, 32, 32) -> (N, C, 32, 32)``; ``D: (N, C, 32, 32) -> (N, w, 16, 16) -> (N, 2w, 8, 8)
-> (N, 4w, 4, 4) -> sum over positions (N, 4w) -> logits (N,)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gancourse.deep.conditional import DISCRIMINATORS, ClassConditionalBatchNorm2d, check_labels, one_hot_planes
from gancourse.errors import check_choice, check_positive, check_positive_int

__all__ = ["HierarchicalBatchNorm2d", "GBlock", "DBlock", "BigGANGenerator", "BigGANDiscriminator",
           "apply_spectral_norm", "has_spectral_norm", "orthogonal_penalty", "orthogonal_regularization",
           "regularized_weights", "truncated_normal", "ORTHO_BETA", "n_blocks_for"]

#: BigGAN's orthogonal regularisation strength (section 3.1)
ORTHO_BETA = 1e-4


def n_blocks_for(image_size: int) -> int:
    """Residual blocks between 4x4 and ``image_size`` (a power of two >= 8): ``log2(image_size) - 2``."""
    check_positive_int("image_size", image_size)
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two of at least 8 (8, 16, 32, 64, ...), got {image_size}")
    return int(math.log2(image_size)) - 2


class HierarchicalBatchNorm2d(ClassConditionalBatchNorm2d):
    """Batch norm with ``gamma = 1 + W_g c`` and ``beta = W_b c`` for a condition vector ``c`` (N, cond_dim).

    In BigGAN ``c = [e(y), z_i]``: the shared class embedding and the block's latent chunk. ``forward(x, c)``:
    x (N, C, H, W), c (N, cond_dim) -> (N, C, H, W). ``W_g, W_b`` have no bias (the 1 and the 0 play that role).
    """

    def __init__(self, num_features: int, cond_dim: int, eps: float = 1e-5, momentum: float = 0.1):
        self.cond_dim = check_positive_int("cond_dim", cond_dim)
        super().__init__(num_features, n_classes=1, eps=eps, momentum=momentum)
        self.gain = nn.Linear(cond_dim, num_features, bias=False)  # W_g
        self.bias = nn.Linear(cond_dim, num_features, bias=False)  # W_b
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh running statistics and small maps N(0, 0.02^2), so that a lone layer starts close to a plain batch
        norm (:class:`BigGANGenerator` re-initialises the maps orthogonally, as BigGAN)."""
        self.bn.reset_running_stats()
        for lin in (self.gain, self.bias):
            if isinstance(lin, nn.Linear):
                nn.init.normal_(lin.weight, 0.0, 0.02)

    def affine(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1 + W_g c, W_b c)``: two (N, C) tensors."""
        if c.ndim != 2 or c.shape[1] != self.cond_dim:
            raise ValueError(f"the condition must have shape (N, {self.cond_dim}), got {tuple(c.shape)}")
        return 1 + self.gain(c), self.bias(c)  # (N, cond) @ (cond, C) -> (N, C)

    def extra_repr(self) -> str:
        return f"{self.num_features}, cond_dim={self.cond_dim}"


class GBlock(nn.Module):
    """BigGAN's residual up-block: ``h = conv(relu(bn2(conv(up(relu(bn1(x, c)))), c)))``, skip ``conv1x1(up(x))``.

    (N, in, H, W) and (N, cond_dim) -> (N, out, 2H, 2W); both batch norms read the same condition ``c``.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int):
        super().__init__()
        self.bn1 = HierarchicalBatchNorm2d(in_channels, cond_dim)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = HierarchicalBatchNorm2d(out_channels, cond_dim)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")  # (N, in, 2H, 2W)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))  # (N, out, 2H, 2W)
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """BigGAN's residual down-block: ``h = pool(conv(relu(conv(relu(x)))))``, skip ``pool(conv1x1(x))``.

    The first block of D skips the leading ReLU (its input is the image) and pools before its 1x1 skip
    convolution, as in BigGAN's code. (N, in, H, W) -> (N, out, H/2, W/2) with ``downsample``, else same size.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True, preactivation: bool = True):
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels or downsample else None

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        if self.skip is None:
            return h + x
        s = self._pool(self.skip(x)) if self.preactivation else self.skip(self._pool(x))
        return h + s


def _orthogonal_init(net: nn.Module) -> None:
    """Orthogonal initialisation (Saxe et al. 2014), as BigGAN: every conv, linear and embedding weight."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
            if getattr(m, "bias", None) is not None and isinstance(m.bias, nn.Parameter):
                nn.init.zeros_(m.bias)


class BigGANGenerator(nn.Module):
    """``G(z, y)`` with a shared class embedding and hierarchical latents: (N, z_dim) + (N,) -> (N, C, S, S).

    ``z`` is split into ``n_blocks + 1`` chunks of ``z_dim / (n_blocks + 1)``: chunk 0 goes through a linear layer
    to the (N, 4w', 4, 4) map, chunk ``i + 1`` is concatenated with ``e(y)`` (N, shared_dim) to condition every
    batch norm of block ``i``. The output layer is a plain batch norm, ReLU, a 3x3 convolution and tanh. Every
    convolution, linear and embedding weight starts orthogonal (Saxe et al. 2014), the batch norms' maps included,
    as in BigGAN's code; all their singular values are then 1, so spectral norm changes nothing at the start.
    """

    def __init__(self, z_dim: int = 64, n_classes: int = 10, shared_dim: int = 32, channels: int = 1,
                 width: int = 32, image_size: int = 32):
        super().__init__()
        self.z_dim, self.n_classes = check_positive_int("z_dim", z_dim), check_positive_int("n_classes", n_classes)
        check_positive_int("shared_dim", shared_dim)
        check_positive_int("channels", channels)
        check_positive_int("width", width)
        k = n_blocks_for(image_size)
        if z_dim % (k + 1):
            raise ValueError(f"z_dim must split into {k + 1} equal chunks (one for the input layer, one per block "
                             f"at image_size {image_size}), so be a multiple of {k + 1}; got {z_dim}")
        self.chunk, self.image_size, self.n_blocks = z_dim // (k + 1), image_size, k
        self.shared = nn.Embedding(n_classes, shared_dim)  # e(y), shared by every block
        c0 = width * 2 ** (k - 1)
        self.c0 = c0
        self.linear = nn.Linear(self.chunk, c0 * 16)  # (N, chunk) -> (N, c0 * 4 * 4)
        ins = [c0] + [width * 2 ** max(k - 2 - i, 0) for i in range(k - 1)]
        outs = [width * 2 ** max(k - 2 - i, 0) for i in range(k)]
        self.blocks = nn.ModuleList(GBlock(i, o, shared_dim + self.chunk) for i, o in zip(ins, outs))
        self.out_bn = nn.BatchNorm2d(outs[-1])
        self.out_conv = nn.Conv2d(outs[-1], channels, 3, padding=1)
        _orthogonal_init(self)

    def conditions(self, z: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The condition of each block: ``[e(y), z_{i+1}]`` (N, shared_dim + chunk), i = 0 .. n_blocks - 1."""
        e = self.shared(y)  # (N, shared_dim)
        chunks = z.split(self.chunk, dim=1)  # n_blocks + 1 of (N, chunk)
        return [torch.cat([e, zi], dim=1) for zi in chunks[1:]]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        check_labels(y, self.n_classes, len(z))
        h = self.linear(z[:, : self.chunk]).view(len(z), self.c0, 4, 4)  # (N, c0, 4, 4)
        for block, c in zip(self.blocks, self.conditions(z, y)):
            h = block(h, c)  # (N, c, s, s) -> (N, c', 2s, 2s)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))  # (N, C, S, S)


class BigGANDiscriminator(nn.Module):
    """``D(x, y)``: residual down-blocks, ReLU, sum over positions ``h`` (N, D), then a head (logits (N,)).

    ``kind="projection"``: ``psi(h) + <v_y, h>`` (BigGAN's head); ``kind="concat"``: the one-hot label as K
    constant planes concatenated with the image at the input, and ``psi(h)`` only.
    """

    def __init__(self, channels: int = 1, n_classes: int = 10, width: int = 32, image_size: int = 32,
                 kind: str = "projection"):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.n_classes = check_positive_int("n_classes", n_classes)
        check_positive_int("width", width)
        self.kind = check_choice("discriminator", kind, DISCRIMINATORS)
        self.image_size = image_size
        k = n_blocks_for(image_size)
        c_in = channels + (n_classes if kind == "concat" else 0)
        outs = [width * 2 ** i for i in range(k)]
        self.blocks = nn.Sequential(*(DBlock(i, o, downsample=True, preactivation=j > 0)
                                      for j, (i, o) in enumerate(zip([c_in, *outs[:-1]], outs))))
        self.feature_dim = outs[-1]
        self.psi = nn.Linear(self.feature_dim, 1)  # (N, D) -> (N, 1)
        self.embed = nn.Embedding(n_classes, self.feature_dim) if kind == "projection" else None  # V
        _orthogonal_init(self)

    def phi(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Features ``h`` (N, D): the blocks, ReLU and a sum over positions (the concat kind needs ``y``)."""
        if self.kind == "concat":
            x = torch.cat([x, one_hot_planes(y, self.n_classes, x.shape[-1]).to(x.dtype)], dim=1)
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # (N, D, 4, 4) -> (N, D)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels, s, s):
            raise ValueError(f"x must have shape (N, {self.channels}, {s}, {s}), got {tuple(x.shape)}")
        check_labels(y, self.n_classes, len(x))
        h = self.phi(x, y)
        out = self.psi(h)[:, 0]  # (N,)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)  # <v_y, h>: sum_D (N, D) * (N, D) -> (N,)
        return out


def apply_spectral_norm(net: nn.Module, skip: tuple[nn.Module, ...] = ()) -> nn.Module:
    """Spectral normalisation ``W / sigma(W)`` (one power iteration per training forward) on every Conv2d,
    Linear and Embedding weight of ``net`` except the modules in ``skip``; returns ``net``."""
    for m in list(net.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and not any(m is s for s in skip):
            spectral_norm(m)
    return net


def has_spectral_norm(module: nn.Module) -> bool:
    """Whether ``module``'s weight is spectrally normalised."""
    return parametrize.is_parametrized(module, "weight")


def orthogonal_penalty(w: torch.Tensor, beta: float = ORTHO_BETA) -> torch.Tensor:
    """BigGAN's orthogonal regulariser ``beta * ||W W^T (.) (1 - I)||_F^2`` of one weight (differentiable).

    ``w`` (out, ...) is read as the matrix (out, fan_in) whose rows are the filters; the penalty pushes
    different filters towards orthogonality and leaves their norms free (the paper writes ``W^T W`` with the
    filters as columns: the same number). Its gradient is ``4 beta (W W^T (.) (1 - I)) W``; the authors' PyTorch
    code adds ``2 beta (W W^T (.) (1 - I)) W`` to the gradient by hand, which is this penalty with ``beta / 2``.
    """
    check_positive("beta", beta, allow_zero=True)
    m = w.reshape(len(w), -1)  # (out, fan_in)
    gram = m @ m.t()  # (out, fan_in) @ (fan_in, out) -> (out, out)
    off = gram - torch.diag_embed(torch.diagonal(gram))  # zero the diagonal: (.) (1 - I)
    return beta * off.square().sum()


def regularized_weights(G: nn.Module) -> list[torch.Tensor]:
    """The weights BigGAN's orthogonal regularisation acts on: every weight with at least two axes of G
    (convolutions, linear layers, the batch norms' maps), except the shared class embedding. Under spectral
    norm these are the unnormalised parameters (as in BigGAN's code)."""
    shared = {id(p) for p in G.shared.parameters()} if hasattr(G, "shared") else set()
    return [p for p in G.parameters() if p.ndim >= 2 and id(p) not in shared]


def orthogonal_regularization(G: nn.Module, beta: float = ORTHO_BETA) -> torch.Tensor:
    """``sum_W R_beta(W)`` over :func:`regularized_weights` of ``G``: add it to G's loss."""
    return sum((orthogonal_penalty(w, beta) for w in regularized_weights(G)), torch.zeros(()))


def truncated_normal(shape: tuple[int, ...], threshold: float | None, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu", max_rounds: int = 1000) -> torch.Tensor:
    """``z ~ N(0, I)`` of ``shape`` with every value of ``|z| > threshold`` drawn again until none is left
    (BigGAN's truncation trick, section 3.1). Each value then follows N(0, 1) conditioned on
    ``|z| <= threshold``; ``threshold=None`` is plain N(0, I). Smaller thresholds trade variety for fidelity."""
    z = torch.randn(shape, generator=generator, device=device)
    if threshold is None:
        return z
    check_positive("threshold", threshold)
    for _ in range(max_rounds):
        out = z.abs() > threshold
        n = int(out.sum())
        if n == 0:
            return z
        z[out] = torch.randn(n, generator=generator, device=device)
    raise ValueError(f"threshold {threshold} is too small: values kept falling outside it after {max_rounds} draws")
