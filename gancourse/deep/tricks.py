"""Three of the "improved techniques" of Salimans et al. (2016) for image GANs, in torch.

Salimans, Goodfellow, Zaremba, Cheung, Radford and Chen (2016), "Improved techniques for training
GANs", section 3:

- **minibatch discrimination** (3.2): D sees, for each sample, how close it is to the other samples
  of its batch, so a generator that collapses onto a few points is easy to spot.
  ``M_i = f(x_i) T`` with ``T`` of shape (A, B, C) turns the A features of ``x_i`` into B rows of
  length C; ``c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_L1)`` and ``o(x_i)_b = sum_j c_b(x_i, x_j)``
  (the sum includes ``j = i``, which adds the constant 1, as in the NumPy engine's layer);
  the B numbers ``o(x_i)`` are appended to the features, and D's last layer reads both;
- **one-sided label smoothing** (3.4): D's target for real samples is ``a`` (e.g. 0.9) instead of 1,
  and stays 0 for generated ones (the ``real_label`` of :func:`gancourse.deep.losses.d_loss_bce`). The optimal D becomes ``a p_data / (p_data + p_g)``: its
  confidence on real data is capped at ``a``, and (because the fake target stays 0) the generator
  still has no reason to put mass where there is no data;
- **virtual batch normalization** (3.5): batch norm makes each output of G depend on the other
  samples of its batch. VBN normalizes each example with the statistics of a *reference batch*
  chosen once at the start of training, mixed with the example's own statistics (weights
  ``B/(B+1)`` and ``1/(B+1)`` for a reference batch of B examples); the reference batch itself is
  normalized with its own statistics and is passed through the current network at every forward,
  so its statistics follow the weights. The paper uses it in the generator only (it doubles the
  forward pass), and so do we: the reference batch is a fixed batch of noise vectors.

(Feature matching and historical averaging, the paper's other two tricks, are in the NumPy
engine: :mod:`gancourse.nn.tricks`.)
"""
from __future__ import annotations

import torch
from torch import nn

from gancourse.errors import check_positive, check_positive_int

__all__ = ["VirtualBatchNorm2d", "MinibatchDiscrimination", "MBD_KERNEL_DIM"]

#: C, the length of each minibatch-discrimination kernel's rows (the authors' code uses 5)
MBD_KERNEL_DIM = 5


class VirtualBatchNorm2d(nn.Module):
    """Virtual batch norm over channels (Salimans et al. 2016, section 3.5), for (R + N, C, H, W) inputs.

    The **first** ``n_reference = R`` rows of the input are the reference batch's activations at this
    layer, the other N rows the examples to normalize. With per-channel means over (rows, H, W)

        ``mu_ref = E_ref[x]``, ``s_ref = E_ref[x^2]`` (reference batch),
        ``mu_i = E_hw[x_i]``, ``s_i = E_hw[x_i^2]`` (example i alone),

    example i is normalized with ``mu = mu_i / (R + 1) + R mu_ref / (R + 1)`` and
    ``var = s_i / (R + 1) + R s_ref / (R + 1) - mu^2``, the reference rows with ``mu_ref`` and
    ``s_ref - mu_ref^2`` alone; then ``y = gain (x - mu) / sqrt(var + eps) + bias``. An example's
    output depends on itself and the reference batch only, never on the other examples it is
    batched with. There are no running statistics: training and evaluation are the same function.
    """

    def __init__(self, num_features: int, n_reference: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = check_positive_int("num_features", num_features)
        self.n_reference = check_positive_int("n_reference", n_reference)
        self.eps = check_positive("eps", eps)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def _normalize(self, x: torch.Tensor, mean: torch.Tensor, mean_sq: torch.Tensor) -> torch.Tensor:
        """``gain (x - mean) / sqrt(mean_sq - mean^2 + eps) + bias``; statistics broadcast to x (., C, 1, 1)."""
        var = (mean_sq - mean.square()).clamp_min(0)  # E[x^2] - E[x]^2 can round below 0
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (R + N, {self.num_features}, H, W), got {tuple(x.shape)}")
        r = self.n_reference
        if x.shape[0] < r:
            raise ValueError(f"x must start with the {r} rows of the reference batch, got {x.shape[0]} rows")
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))  # statistics in float32 at least (autocast)
        ref, rest = x32[:r], x32[r:]  # (R, C, H, W), (N, C, H, W)
        mu_ref = ref.mean(dim=(0, 2, 3), keepdim=True)[0]  # (1, C, 1, 1) -> (C, 1, 1)
        s_ref = ref.square().mean(dim=(0, 2, 3), keepdim=True)[0]
        new = 1.0 / (r + 1)  # the example's own weight; the reference batch has r / (r + 1)
        mu = new * rest.mean(dim=(2, 3), keepdim=True) + (1 - new) * mu_ref  # (N, C, 1, 1)
        s = new * rest.square().mean(dim=(2, 3), keepdim=True) + (1 - new) * s_ref
        out = torch.cat([self._normalize(ref, mu_ref, s_ref), self._normalize(rest, mu, s)])
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, n_reference={self.n_reference}, eps={self.eps:g}"


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2): features (N, A) -> (N, A + B).

    ``M = f T``: (N, A) x (A, B, C) -> (N, B, C); ``c_b(i, j) = exp(-||M_i,b - M_j,b||_1)``;
    ``o_i,b = sum_j c_b(i, j)`` over the N samples of the batch (j = i included: the constant 1).
    Output ``[f_i, o_i]``. The samples compared are the rows of one call: feed real and generated
    batches in separate calls, as the trainer does, so that D compares each only with its own kind.
    ``T`` starts from N(0, ``init_std``), the DCGAN initialisation.
    """

    def __init__(self, in_features: int, n_kernels: int, kernel_dim: int = MBD_KERNEL_DIM, init_std: float = 0.02):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.n_kernels = check_positive_int("n_kernels", n_kernels)
        self.kernel_dim = check_positive_int("kernel_dim", kernel_dim)
        self.T = nn.Parameter(torch.empty(in_features, n_kernels, kernel_dim))
        nn.init.normal_(self.T, 0.0, check_positive("init_std", init_std))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if f.ndim != 2 or f.shape[1] != self.in_features:
            raise ValueError(f"features must have shape (N, {self.in_features}), got {tuple(f.shape)}")
        with torch.autocast(f.device.type, enabled=False):  # L1 distances of nearby rows need float32
            f32 = f.to(torch.promote_types(f.dtype, torch.float32))
            M = torch.einsum("na,abc->nbc", f32, self.T.to(f32.dtype))  # (N, A) x (A, B, C) -> (N, B, C)
            l1 = (M[:, None] - M[None, :]).abs().sum(dim=3)  # (N, 1, B, C) - (1, N, B, C) -> (N, N, B)
            o = torch.exp(-l1).sum(dim=1)  # c_b(i, j) summed over j: (N, N, B) -> (N, B)
        return torch.cat([f32, o], dim=1).to(f.dtype)  # (N, A + B)

    def extra_repr(self) -> str:
        return f"{self.in_features}, n_kernels={self.n_kernels}, kernel_dim={self.kernel_dim}"
