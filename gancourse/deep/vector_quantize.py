"""Vector quantisation with a learned codebook (VQ-VAE), and the adaptive GAN weight of VQGAN.

VQ-VAE (van den Oord, Vinyals and Kavukcuoglu 2017, "Neural discrete representation learning") replaces each
encoder output vector ``z_e`` (D,) by its nearest row of a codebook ``E`` (K, D):

    k* = argmin_k |z_e - e_k|^2,    z_q = e_{k*}.

The argmin has no gradient, so the decoder's gradient with respect to ``z_q`` is copied onto ``z_e``
unchanged (the **straight-through estimator**): in code, ``z_q_st = z_e + sg[z_q - z_e]``, whose value is
``z_q`` and whose Jacobian with respect to ``z_e`` is the identity (``sg`` = stop-gradient, ``.detach()``).
The codebook then gets its own two terms, averaged over the vectors:

    codebook loss    |sg[z_e] - z_q|^2      moves the chosen codes towards the encoder outputs;
    commitment loss  beta |z_e - sg[z_q]|^2 keeps the encoder close to the codes it chose (beta = 0.25).

VQGAN (Esser, Rombach and Ommer 2021, "Taming transformers for high-resolution image synthesis") trains the
same quantised autoencoder with a perceptual loss and a patch discriminator's adversarial loss, weighted by

    lambda = |grad_{G_L} L_rec| / (|grad_{G_L} L_GAN| + delta),   delta = 1e-6,

the gradient norms taken at the decoder's last layer ``G_L`` (:func:`adaptive_gan_weight`); then a
transformer learns the prior over the grid of code indices.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.errors import check_positive, check_positive_int

__all__ = ["nearest_code", "straight_through", "vq_losses", "VQOutput", "VectorQuantizer", "codebook_usage",
           "adaptive_gan_weight", "PatchVQAutoencoder", "COMMITMENT_BETA"]

#: the commitment weight of the VQ-VAE paper
COMMITMENT_BETA = 0.25


def _check_vectors(z: torch.Tensor, codebook: torch.Tensor) -> None:
    if codebook.ndim != 2:
        raise ValueError(f"codebook must have shape (K, D), got {tuple(codebook.shape)}")
    if z.ndim != 2 or z.shape[1] != codebook.shape[1]:
        raise ValueError(f"z must have shape (N, {codebook.shape[1]}) to match the codebook, got {tuple(z.shape)}")


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``argmin_k |z_i - e_k|^2`` for vectors ``z`` (N, D) and a codebook (K, D): indices (N,), int64.

    Uses ``|z|^2 - 2 z.e + |e|^2``; ties go to the lowest index.
    """
    _check_vectors(z, codebook)
    d2 = (z * z).sum(1, keepdim=True) - 2 * z @ codebook.T + (codebook * codebook).sum(1)  # (N, D) @ (D, K) -> (N, K)
    return d2.argmin(dim=1)


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """``z_e + sg[z_q - z_e]``: the value of ``z_q``, the gradient passed to ``z_e`` unchanged (identity)."""
    if z_e.shape != z_q.shape:
        raise ValueError(f"z_e and z_q must have the same shape, got {tuple(z_e.shape)} and {tuple(z_q.shape)}")
    return z_e + (z_q - z_e).detach()


def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor, beta: float = COMMITMENT_BETA) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codebook, commitment)`` losses: ``mean |sg[z_e] - z_q|^2`` and ``beta * mean |z_e - sg[z_q]|^2``.

    Means over all entries (vectors and dimensions), as in common implementations. The first has gradients
    only for the codebook, the second only for the encoder.
    """
    if z_e.shape != z_q.shape:
        raise ValueError(f"z_e and z_q must have the same shape, got {tuple(z_e.shape)} and {tuple(z_q.shape)}")
    beta = check_positive("beta", beta, allow_zero=True)
    codebook = F.mse_loss(z_q, z_e.detach())
    commitment = beta * F.mse_loss(z_e, z_q.detach())
    return codebook, commitment


class VQOutput(NamedTuple):
    """What :class:`VectorQuantizer` returns."""

    z_q: torch.Tensor  # quantised, straight-through: the input's shape
    indices: torch.Tensor  # code index per vector: the input's shape without the channel axis
    codebook_loss: torch.Tensor  # scalar
    commitment_loss: torch.Tensor  # scalar (beta included)


class VectorQuantizer(nn.Module):
    """A codebook of ``n_codes`` vectors of ``dim`` entries, applied to every vector of the input.

    ``forward(z)`` takes vectors (N, D) or feature maps (N, D, H, W) (one vector per position) and returns a
    :class:`VQOutput`: ``z_q`` with the straight-through gradient, the indices (N,) or (N, H, W), and the
    codebook and commitment losses of :func:`vq_losses`. The codebook starts uniform in
    ``[-1/K, 1/K]``, as in VQGAN's code (taming-transformers) and many VQ-VAE implementations;
    :meth:`init_from` sets it to data vectors instead, which makes codes that are never chosen ("dead" codes)
    rarer.
    """

    def __init__(self, n_codes: int, dim: int, beta: float = COMMITMENT_BETA):
        super().__init__()
        self.n_codes = check_positive_int("n_codes", n_codes)
        self.dim = check_positive_int("dim", dim)
        self.beta = check_positive("beta", beta, allow_zero=True)
        self.codebook = nn.Parameter(torch.empty(n_codes, dim).uniform_(-1.0 / n_codes, 1.0 / n_codes))

    def _flat(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 2 and z.shape[1] == self.dim:
            return z
        if z.ndim == 4 and z.shape[1] == self.dim:
            return z.permute(0, 2, 3, 1).reshape(-1, self.dim)  # (N, D, H, W) -> (N*H*W, D)
        raise ValueError(f"z must have shape (N, {self.dim}) or (N, {self.dim}, H, W), got {tuple(z.shape)}")

    @torch.no_grad()
    def init_from(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Set the codebook to ``n_codes`` distinct vectors drawn from ``z`` (needs at least that many)."""
        flat = self._flat(z)
        if len(flat) < self.n_codes:
            raise ValueError(f"init_from needs at least n_codes = {self.n_codes} vectors, got {len(flat)}")
        pick = torch.randperm(len(flat), generator=generator)[: self.n_codes]
        self.codebook.copy_(flat[pick].to(self.codebook))

    def forward(self, z: torch.Tensor) -> VQOutput:
        flat = self._flat(z)  # (M, D)
        idx = nearest_code(flat.detach(), self.codebook.detach())  # (M,)
        q = self.codebook[idx]  # (M, D): rows of the codebook, differentiable in the codebook
        codebook_loss, commitment_loss = vq_losses(flat, q, self.beta)
        q_st = straight_through(flat, q)
        if z.ndim == 4:
            n, _, h, w = z.shape
            return VQOutput(q_st.reshape(n, h, w, self.dim).permute(0, 3, 1, 2), idx.reshape(n, h, w),
                            codebook_loss, commitment_loss)
        return VQOutput(q_st, idx, codebook_loss, commitment_loss)

    def extra_repr(self) -> str:
        return f"n_codes={self.n_codes}, dim={self.dim}, beta={self.beta}"


class PatchVQAutoencoder(nn.Module):
    """The smallest VQ autoencoder: every ``patch`` x ``patch`` tile of an image becomes one code index.

    ``encode``: a ``patch``-strided convolution, (N, C, S, S) -> (N, dim, S/patch, S/patch); ``quantizer``: a
    :class:`VectorQuantizer` of ``n_codes``; ``decode``: the mirror transposed convolution and tanh, back to
    (N, C, S, S) in (-1, 1). Each tile is encoded, quantised and decoded on its own, so the codebook is a
    dictionary of tiles. ``forward(x)`` returns ``(x_hat, VQOutput)``; :meth:`decode_indices` draws an image
    from a grid of indices (N, S/patch, S/patch), as a prior over the grid would (VQGAN's transformer).
    """

    def __init__(self, channels: int = 1, patch: int = 4, dim: int = 8, n_codes: int = 32,
                 beta: float = COMMITMENT_BETA):
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.patch = check_positive_int("patch", patch)
        self.encoder = nn.Conv2d(channels, dim, patch, stride=patch)  # (N, C, S, S) -> (N, dim, S/p, S/p)
        self.quantizer = VectorQuantizer(n_codes, dim, beta)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(dim, channels, patch, stride=patch), nn.Tanh())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] % self.patch or x.shape[3] % self.patch:
            raise ValueError(f"x must have shape (N, {self.channels}, H, W) with H and W multiples of "
                             f"{self.patch}, got {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(z_q)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Grid of code indices (N, h, w) -> image (N, C, h * patch, w * patch)."""
        q = self.quantizer.codebook[indices]  # (N, h, w, dim)
        return self.decode(q.permute(0, 3, 1, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, VQOutput]:
        out = self.quantizer(self.encode(x))
        return self.decode(out.z_q), out


def codebook_usage(indices: torch.Tensor, n_codes: int) -> tuple[np.ndarray, float]:
    """``(counts, perplexity)`` of code indices: counts (K,) and ``exp(H(p))`` of their frequencies ``p``.

    The perplexity is the number of equally used codes that would have the same entropy: ``n_codes`` when
    all codes are used equally, 1 when one code takes everything.
    """
    n_codes = check_positive_int("n_codes", n_codes)
    flat = indices.reshape(-1).cpu()
    if flat.numel() == 0:
        raise ValueError("indices is empty")
    if flat.min() < 0 or flat.max() >= n_codes:
        raise ValueError(f"indices must lie in 0..{n_codes - 1}, got values from {int(flat.min())} to "
                         f"{int(flat.max())}")
    counts = torch.bincount(flat, minlength=n_codes).numpy()
    p = counts[counts > 0] / counts.sum()
    return counts, float(np.exp(-(p * np.log(p)).sum()))


def adaptive_gan_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                        delta: float = 1e-6, max_weight: float = 1e4) -> torch.Tensor:
    """VQGAN's ``lambda = |grad_{G_L} L_rec| / (|grad_{G_L} L_GAN| + delta)``, clamped to ``[0, max_weight]``.

    ``last_layer`` is the weight tensor of the decoder's last layer ``G_L``; both losses must depend on it.
    Returned detached (a weight, not a path for gradients). The graph is kept for the caller's backward.
    """
    check_positive("delta", delta)
    g_rec, = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
    g_gan, = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)
    return (g_rec.norm() / (g_gan.norm() + delta)).clamp(0.0, max_weight).detach()
