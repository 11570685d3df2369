"""GAN inversion (find ``z`` with ``G(z) ~ x`` for a given image ``x``) and linear latent edits.

A trained generator can only edit an image it can draw. **Inversion** looks for the code of a real image:

- by optimisation (Zhu et al. 2016, "Generative visual manipulation on the natural image manifold"; Abdal
  et al. 2019, "Image2StyleGAN"): ``z* = argmin_z |G(z) - x|^2 + lambda |z|^2`` by gradient descent through
  the frozen generator, from several random starts (the objective is not convex), keeping the best;
- with an encoder (Perarnau et al. 2016, "Invertible conditional GANs"; pSp and e4e for StyleGAN, 2021): a
  network ``E`` trained on pairs the generator makes itself, minimising ``|E(G(z)) - z|^2``; one forward pass
  per image, less exact;
- both: the encoder's guess as the starting point of the optimisation ("hybrid" inversion).

**Editing** moves a code along a direction ``n`` and draws ``G(z + alpha n)``. InterFaceGAN (Shen et al.
2020) fits a linear model of an attribute on sampled codes and takes the unit normal of its decision
boundary; :func:`linear_direction` does this with a least-squares fit ``score ~ a + z.w``, ``n = w / |w|``.
An attribute that correlates with another (thick strokes with some digit classes) drags the other along;
InterFaceGAN's *conditional* edit removes from ``n`` its components along the other attributes' directions
(:func:`conditional_direction`), so that to first order the edit leaves them unchanged.
GANSpace (Haerkoenen et al. 2020) finds directions without labels, by PCA of codes or of early features;
:func:`gancourse.deep.latent.attribute_vector` is DCGAN's mean-difference version.

The generator is used in eval mode (batch norm on its running statistics) and is not changed: gradients are
taken with respect to the codes only.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.runtime import eval_mode
from gancourse.errors import check_positive, check_positive_int

__all__ = ["Inversion", "reconstruction_error", "invert", "fit_encoder", "linear_direction", "conditional_direction",
           "edit_codes"]


class Inversion(NamedTuple):
    """The result of :func:`invert`: the best code per image and what it cost."""

    z: torch.Tensor  # (N, z_dim), the best restart of each image
    images: torch.Tensor  # (N, C, H, W): G(z), detached
    error: torch.Tensor  # (N,): mean squared pixel error of G(z) against x
    history: torch.Tensor  # (steps + 1,): the mean over images of the best restart's error at each step


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")


def reconstruction_error(G: nn.Module, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``mean_pixels (G(z) - x)^2`` per image, shape (N,), with G in eval mode and no gradients."""
    _check_images(x)
    with torch.no_grad(), eval_mode(G):
        return ((G(z) - x) ** 2).flatten(1).mean(1)


def invert(G: nn.Module, x: torch.Tensor, z_dim: int, steps: int = 300, lr: float = 0.05, restarts: int = 4,
           prior_weight: float = 1e-3, z_init: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> Inversion:
    """Optimisation-based inversion: ``argmin_z mean (G(z) - x)^2 + prior_weight * mean z^2`` for each image.

    ``x`` (N, C, H, W) in the generator's range. ``restarts`` codes per image start from N(0, I) (drawn with
    ``generator``), or the first from ``z_init`` (N, z_dim) when given (the rest random); all are optimised
    together with Adam(``lr``) for ``steps`` steps and the one with the lowest pixel error is kept.
    """
    _check_images(x)
    z_dim = check_positive_int("z_dim", z_dim)
    steps = check_positive_int("steps", steps, minimum=0)
    restarts = check_positive_int("restarts", restarts)
    check_positive("lr", lr)
    check_positive("prior_weight", prior_weight, allow_zero=True)
    n = len(x)
    z0 = torch.randn(restarts, n, z_dim, generator=generator).to(x)  # (R, N, z_dim)
    if z_init is not None:
        if z_init.shape != (n, z_dim):
            raise ValueError(f"z_init must have shape ({n}, {z_dim}), got {tuple(z_init.shape)}")
        z0[0] = z_init.detach().to(x)
    z = z0.reshape(restarts * n, z_dim).clone().requires_grad_(True)  # restart r of image i is row r * N + i
    target = x.repeat(restarts, 1, 1, 1)  # (R * N, C, H, W)
    opt = torch.optim.Adam([z], lr=lr)
    history = []
    with eval_mode(G):
        for step in range(steps + 1):
            pixel = ((G(z) - target) ** 2).flatten(1).mean(1)  # (R * N,)
            history.append(pixel.detach().reshape(restarts, n).min(0).values.mean())
            if step == steps:
                break
            loss = pixel.sum() + prior_weight * (z ** 2).mean(1).sum()  # a sum: each code its own objective
            grad, = torch.autograd.grad(loss, [z])  # the generator's weights get no gradient
            z.grad = grad
            opt.step()
    pixel = pixel.detach().reshape(restarts, n)
    best = pixel.argmin(0)  # (N,)
    z_best = z.detach().reshape(restarts, n, z_dim)[best, torch.arange(n)]  # (N, z_dim)
    with torch.no_grad(), eval_mode(G):
        images = G(z_best)
    return Inversion(z_best, images, pixel[best, torch.arange(n)], torch.stack(history))


def fit_encoder(G: nn.Module, encoder: nn.Module, z_dim: int, steps: int = 500, batch_size: int = 64,
                lr: float = 1e-3, generator: torch.Generator | None = None) -> list[float]:
    """Train ``encoder`` to invert ``G`` on its own samples: minimise ``mean |E(G(z)) - z|^2``, z ~ N(0, I).

    G stays in eval mode and unchanged; returns the loss of every step. Afterwards ``encoder(x)`` is a code
    for an image ``x`` in one forward pass (put the encoder in eval mode to use it).
    """
    z_dim = check_positive_int("z_dim", z_dim)
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    check_positive("lr", lr)
    device = next(encoder.parameters()).device
    opt = torch.optim.Adam(encoder.parameters(), lr=lr, betas=(0.5, 0.999))
    encoder.train()
    losses = []
    for _ in range(steps):
        z = torch.randn(batch_size, z_dim, generator=generator).to(device)
        with torch.no_grad(), eval_mode(G):
            x = G(z)
        loss = F.mse_loss(encoder(x), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def linear_direction(z: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """Unit vector ``w / |w|`` of the least-squares fit ``score ~ a + z.w`` on codes z (N, D), scores (N,): (D,).

    Moving a code along it raises the fitted score fastest (InterFaceGAN's boundary normal, with a linear
    regression in place of the linear SVM for a continuous attribute). Needs N > D.
    """
    if z.ndim != 2 or score.shape != (z.shape[0],):
        raise ValueError(f"z must be (N, D) and score (N,), got {tuple(z.shape)} and {tuple(score.shape)}")
    n, d = z.shape
    if bool((score == score[0]).all()):
        raise ValueError("the score is the same for every code: there is no direction to fit (it would be zero)")
    if n <= d:
        raise ValueError(f"need more codes than dimensions to fit a direction, got N = {n} codes of D = {d}")
    design = torch.cat([torch.ones(n, 1, dtype=torch.float64, device=z.device), z.double()], dim=1)  # (N, 1 + D)
    coef = torch.linalg.lstsq(design, score.double()[:, None]).solution[1:, 0]  # (D,)
    return (coef / coef.norm()).to(z.dtype)


def conditional_direction(direction: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """``direction`` (D,) with its projection on the span of ``others`` (K, D) removed, renormalised: (D,).

    ``n' = (I - Q Q^T) n / |(I - Q Q^T) n|`` with Q an orthonormal basis of the rows of ``others`` (InterFaceGAN's
    subspace projection, Shen et al. 2020). Moving along ``n'`` changes the linear models of the other
    attributes by zero. A ValueError if ``direction`` lies in their span.
    """
    if direction.ndim != 1 or others.ndim != 2 or others.shape[1] != direction.shape[0]:
        raise ValueError(f"direction must be (D,) and others (K, D), got {tuple(direction.shape)} and "
                         f"{tuple(others.shape)}")
    q, _ = torch.linalg.qr(others.double().T)  # (D, K): orthonormal columns spanning the others
    n = direction.double()
    rest = n - q @ (q.T @ n)  # (D,)
    if rest.norm() < 1e-6 * n.norm():  # float32 inputs: a combination of the others leaves rounding only
        raise ValueError("direction lies in the span of the other directions: nothing is left after projection")
    return (rest / rest.norm()).to(direction.dtype)


def edit_codes(z: torch.Tensor, direction: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """``z + alpha * direction`` for one code z (D,) and steps ``alphas`` (A,): codes (A, D)."""
    if z.ndim != 1 or direction.shape != z.shape:
        raise ValueError(f"z and direction must be codes of one shape (D,), got {tuple(z.shape)} and "
                         f"{tuple(direction.shape)}")
    return z + alphas.reshape(-1, 1).to(z) * direction  # (A, 1) * (D,) -> (A, D)
