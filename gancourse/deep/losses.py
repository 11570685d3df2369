"""GAN losses on logits (torch), the WGAN-GP gradient penalty, and CycleGAN's cycle and identity losses.

Each loss is the mean over every element of its logits (a PatchGAN's map of
logits counts each patch as one sample). Names follow ``gancourse.nn.losses``:

- standard GAN (Goodfellow et al. 2014), discriminator:
  ``L_D = -E log sigmoid(D(x)) - E log(1 - sigmoid(D(G(z))))``, with
  ``log sigmoid`` computed stably (``softplus``); generator, non-saturating:
  ``L_G = -E log sigmoid(D(G(z)))``;
- least squares (Mao et al. 2017; CycleGAN's choice): ``L_D = 1/2 E(D(x) - 1)^2
  + 1/2 E D(G(z))^2``, ``L_G = E(D(G(z)) - 1)^2``;
- Wasserstein (Arjovsky et al. 2017): ``L_D = E D(G(z)) - E D(x)``, ``L_G = -E D(G(z))``;
- hinge (Lim & Ye 2017; Miyato et al. 2018; BigGAN's choice): ``L_D = E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))``,
  ``L_G = -E D(G(z))``;
- relativistic pairing, RpGAN (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024), on pairs ``(x_i, G(z_i))``:
  ``L_D = E softplus(D(G(z_i)) - D(x_i))``, ``L_G = E softplus(D(x_i) - D(G(z_i)))``;
- zero-centred gradient penalties (Mescheder et al. 2018): R1 ``gamma/2 E ||grad D(x)||^2`` on real samples,
  R2 the same on generated ones (R3GAN uses both);
- gradient penalty (Gulrajani et al. 2017): ``lambda E_xhat (||grad D(xhat)||_2 - 1)^2``
  on ``xhat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` per sample, the norm taken
  over all non-batch dimensions;
- cycle consistency and identity (Zhu et al. 2017): ``lambda E|F(G(x)) - x|_1`` and
  ``lambda_id E|G(y) - y|_1`` with ``lambda = 10``, ``lambda_id = 0.5 lambda``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gancourse.errors import check_positive

__all__ = [
    "d_loss_bce", "check_real_label", "g_loss_nonsaturating", "d_loss_lsgan", "g_loss_lsgan", "d_loss_wgan", "g_loss_wgan",
    "d_loss_hinge", "g_loss_hinge", "d_loss_rpgan", "g_loss_rpgan", "zero_centered_penalty",
    "wasserstein_estimate", "interpolate", "input_grad_norms", "gradient_penalty", "cycle_loss", "identity_loss",
    "GP_LAMBDA", "CYCLE_LAMBDA", "IDENTITY_FRACTION",
]

GP_LAMBDA = 10.0
CYCLE_LAMBDA = 10.0
IDENTITY_FRACTION = 0.5


def _check_nonempty(name: str, t: torch.Tensor) -> None:
    """Raise a ValueError if ``t`` has no elements: a loss is a mean, and a mean over nothing is NaN.

    O(1) (``numel`` reads the shape, with no device synchronisation).
    """
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}): a loss is a mean over at least one sample")


def check_real_label(real_label: float) -> float:
    """``real_label`` as a float in (0, 1] (the real target of one-sided label smoothing; 1 = no smoothing)."""
    a = check_positive("label_smoothing", real_label)
    if a > 1.0:
        raise ValueError(f"label_smoothing is the target for real samples, in (0, 1] (1 = off, e.g. 0.9), "
                         f"got {real_label!r}")
    return a


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Discriminator cross-entropy, with one-sided label smoothing (Salimans et al. 2016, section 3.4).

    ``L_D = -E[a log sigmoid(l_real) + (1 - a) log(1 - sigmoid(l_real))] - E log(1 - sigmoid(l_fake))
          = E[a softplus(-l_real) + (1 - a) softplus(l_real)] + E softplus(l_fake)``
    with the real target ``a = real_label`` in (0, 1] (1: the plain loss ``E softplus(-l_real) + E softplus(l_fake)``;
    Salimans et al. use 0.9); generated samples keep the target 0. As ``gancourse.nn.d_loss_bce``.
    """
    _check_nonempty("real_logits", real_logits)
    _check_nonempty("fake_logits", fake_logits)
    a = check_real_label(real_label)
    real_term = F.softplus(-real_logits) if a == 1.0 else a * F.softplus(-real_logits) + (1 - a) * F.softplus(real_logits)
    return real_term.mean() + F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-E log sigmoid(l_fake) = E softplus(-l_fake)`` (the generator maximises log D(G(z)))."""
    _check_nonempty("fake_logits", fake_logits)
    return F.softplus(-fake_logits).mean()


def d_loss_lsgan(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``1/2 E(l_real - 1)^2 + 1/2 E l_fake^2`` (targets 1 for real, 0 for fake)."""
    _check_nonempty("real_logits", real_logits)
    _check_nonempty("fake_logits", fake_logits)
    return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())


def g_loss_lsgan(fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss ``1/2 E(l_fake - 1)^2`` (Mao et al. 2017, c = 1), the 1/2 of
    ``d_loss_lsgan`` and of the NumPy engine's ``gancourse.nn.g_loss_lsgan``."""
    _check_nonempty("fake_logits", fake_logits)
    return 0.5 * (fake_logits - 1).square().mean()


def d_loss_wgan(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss ``E f(G(z)) - E f(x)`` (the negative of the Wasserstein estimate)."""
    _check_nonempty("real_scores", real_scores)
    _check_nonempty("fake_scores", fake_scores)
    return fake_scores.mean() - real_scores.mean()


def g_loss_wgan(fake_scores: torch.Tensor) -> torch.Tensor:
    """``-E f(G(z))``."""
    _check_nonempty("fake_scores", fake_scores)
    return -fake_scores.mean()


def d_loss_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss ``E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))`` (Lim & Ye 2017; Miyato et al. 2018)."""
    _check_nonempty("real_scores", real_scores)
    _check_nonempty("fake_scores", fake_scores)
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def g_loss_hinge(fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge generator loss ``-E D(G(z))`` (the same as WGAN's)."""
    return g_loss_wgan(fake_scores)


def _paired(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
    _check_nonempty("real_logits", real_logits)
    if real_logits.shape != fake_logits.shape:
        raise ValueError(f"rpgan pairs real and generated samples: the logits must have the same shape, got "
                         f"{tuple(real_logits.shape)} and {tuple(fake_logits.shape)}")


def d_loss_rpgan(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Relativistic pairing loss ``E_i softplus(D(G(z_i)) - D(x_i))`` (Jolicoeur-Martineau 2019; Huang et al. 2024, eq. 2)."""
    _paired(real_logits, fake_logits)
    return F.softplus(fake_logits - real_logits).mean()


def g_loss_rpgan(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Relativistic pairing generator loss ``E_i softplus(D(x_i) - D(G(z_i)))``; the real logits are needed
    (pass them detached: G's gradient flows through ``D(G(z_i))`` only)."""
    _paired(real_logits, fake_logits)
    return F.softplus(real_logits - fake_logits).mean()


def zero_centered_penalty(critic, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma/2 * mean_i ||grad_x D(x_i)||^2``: R1 when ``x`` are real samples, R2 when they are generated
    (Mescheder et al. 2018; Huang et al. 2024 use both). ``x`` is detached; the result is differentiable in the
    critic's parameters (double backprop). Matches ``gancourse.nn.r1_penalty`` on the same gradients."""
    gamma = check_positive("gamma", gamma)
    _check_nonempty("x", x)
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return 0.5 * gamma * g.flatten(1).square().sum(1).mean()  # (N, C, H, W) -> (N,) -> ()


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``E f(x) - E f(G(z))``: the critic's estimate of W1 (up to its Lipschitz constant)."""
    _check_nonempty("real_scores", real_scores)
    _check_nonempty("fake_scores", fake_scores)
    return real_scores.mean() - fake_scores.mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``xhat_i = eps_i x_i + (1 - eps_i) G(z)_i`` with one ``eps_i ~ U[0, 1]`` per sample.

    ``eps`` may be given, shape (N,) or (N, 1) (any shape with N elements); otherwise it
    is drawn from ``generator`` (on the generator's device; the global CPU generator if None) and moved to the data's.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    _check_nonempty("real", real)
    n = real.shape[0]
    if eps is None:
        device = generator.device if generator is not None else torch.device("cpu")
        eps = torch.rand(n, generator=generator, dtype=real.dtype, device=device)
    elif eps.numel() != n:
        raise ValueError(f"eps must hold one coefficient per sample ({n}), got shape {tuple(eps.shape)}")
    eps = eps.to(dtype=real.dtype, device=real.device).reshape((n,) + (1,) * (real.ndim - 1))  # (N, 1, ..., 1)
    return eps * real + (1 - eps) * fake


def input_grad_norms(critic, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """``||grad_x f(x_i)||_2`` per sample, over all non-batch dimensions: shape (N,).

    ``f`` must map (N, ...) to one score per sample (or a map of scores, which
    are summed per sample). With ``create_graph=True`` the norms stay
    differentiable in the critic's parameters (double backprop).
    """
    _check_nonempty("x", x)
    x = x.detach().requires_grad_(True)
    scores = critic(x)
    (g,) = torch.autograd.grad(scores.sum(), x, create_graph=create_graph)
    return _safe_norms(g.flatten(1))  # (N, C, H, W) -> (N, C*H*W) -> (N,)


def _safe_norms(g: torch.Tensor) -> torch.Tensor:
    """``||g_i||_2`` per row of ``g`` (N, D), with ``d||g_i||/dg_i = 0`` where ``g_i = 0``.

    The norm is not differentiable at 0; the minimum-norm subgradient there is 0, the value
    ``gancourse.nn.wgan_gp_penalty`` uses (so the penalty's gradient from such a row is
    ``2 lambda (0 - 1) * 0 / N = 0``). Some torch versions' norm backward (double backward in
    particular) gives NaN at 0 instead; here the zero rows are replaced by ones before the norm and
    their norm set to 0 after it, so no backward ever evaluates the norm's derivative at 0. The
    other rows' values and gradients are those of ``g.norm(2, dim=1)``, bit for bit. A row whose
    squared norm underflows to 0 counts as a zero row, as in the NumPy engine.
    """
    live = torch.linalg.vector_norm(g.detach(), dim=1) > 0  # (N,)
    safe = torch.where(live[:, None], g, torch.ones_like(g))  # (N, D): the zero rows become ones
    return torch.where(live, torch.linalg.vector_norm(safe, dim=1), torch.zeros_like(live, dtype=g.dtype))


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, lam: float = GP_LAMBDA,
                     eps: torch.Tensor | None = None, generator: torch.Generator | None = None,
                     return_norms: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """WGAN-GP penalty ``lam * mean_i (||grad f(xhat_i)||_2 - 1)^2`` at random interpolates.

    ``real`` and ``fake`` (N, ...) are detached (the penalty trains the critic
    only); ``eps`` (N,) fixes the interpolation coefficients, else they are
    drawn from ``generator``. The result is differentiable in the critic's
    parameters. ``return_norms=True`` also returns the detached norms (N,).
    """
    lam = check_positive("lam", lam)
    xhat = interpolate(real.detach(), fake.detach(), eps, generator)  # (N, ...)
    norms = input_grad_norms(critic, xhat, create_graph=True)  # (N,)
    penalty = lam * (norms - 1).square().mean()
    return (penalty, norms.detach()) if return_norms else penalty


def cycle_loss(x: torch.Tensor, x_reconstructed: torch.Tensor, lam: float = CYCLE_LAMBDA) -> torch.Tensor:
    """``lam * E|F(G(x)) - x|_1`` (mean absolute error over all elements)."""
    if x.shape != x_reconstructed.shape:
        raise ValueError(f"x_reconstructed must have x's shape {tuple(x.shape)}, got {tuple(x_reconstructed.shape)}")
    _check_nonempty("x", x)
    return lam * (x_reconstructed - x).abs().mean()


def identity_loss(y: torch.Tensor, g_of_y: torch.Tensor, lam: float = IDENTITY_FRACTION * CYCLE_LAMBDA) -> torch.Tensor:
    """``lam * E|G(y) - y|_1``: a generator fed an image of its own target domain should leave it alone."""
    if y.shape != g_of_y.shape:
        raise ValueError(f"g_of_y must have y's shape {tuple(y.shape)}, got {tuple(g_of_y.shape)}")
    _check_nonempty("y", y)
    return lam * (g_of_y - y).abs().mean()
