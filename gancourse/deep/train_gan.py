"""Training loop for unconditional image GANs: DCGAN (Radford et al. 2016) and WGAN-GP (Gulrajani et al. 2017).

One *step* is one generator update, preceded by ``n_critic`` discriminator
(critic) updates, each on a fresh real minibatch and fresh noise:

- ``loss="dcgan"``: ``DCGANDiscriminator`` with batch norm, the BCE loss on
  logits for D and the non-saturating loss for G, Adam(2e-4, betas (0.5, 0.999)),
  ``n_critic = 1``;
- ``loss="wgan-gp"``: ``WGANCritic`` (no batch norm), the Wasserstein loss plus
  the gradient penalty with ``lambda = 10``, ``n_critic = 5``,
  Adam(1e-4, betas (0, 0.9)) -- the paper's Algorithm 1.

Three tricks of Salimans et al. (2016) are options of the DCGAN loss (:mod:`gancourse.deep.tricks`):
one-sided label smoothing (``label_smoothing``, D's target for real images), minibatch
discrimination in D (``minibatch_discrimination`` kernels) and virtual batch norm in G
(``g_norm="virtual"``, with a reference batch of ``batch_size`` noise vectors). The first two
have the names and meanings of the NumPy engine's ``ToyConfig`` fields. WGAN-GP refuses the first
two: its critic has no labels, and its per-sample gradient penalty rules out a critic that
compares the samples of a batch.

All randomness of a run (minibatch order, noise, interpolation coefficients)
comes from one ``torch.Generator`` on the training device, seeded by the
config; a checkpoint stores it with the weights, the optimizer states, the
step counter, the history, the sample snapshots and the global generators, so
that training k steps, saving, loading and training k more gives the same
weights bit for bit as 2k steps in one go (on the CPU; CUDA kernels may be
non-deterministic unless deterministic algorithms are switched on).

Images must lie in [-1, 1] (8-bit images: ``x / 127.5 - 1``): others are refused
when the trainer is made, NaN/inf images when training starts, and a checkpoint
is only resumed on the images it was trained on (see :mod:`gancourse.deep.loop`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.dcgan import (
    CRITIC_NORMS,
    G_NORMS,
    DCGANDiscriminator,
    DCGANGenerator,
    WGANCritic,
)
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import (
    check_real_label,
    d_loss_bce,
    d_loss_wgan,
    g_loss_nonsaturating,
    g_loss_wgan,
    gradient_penalty,
    input_grad_norms,
    interpolate,
    wasserstein_estimate,
)
from gancourse.deep.runtime import (
    Batcher,
    CudaRunOptions,
    LossHistory,
    autocast,
    check_run_config,
    eval_mode,
    maybe_compile,
    seeded,
)
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["GANConfig", "GANTrainer", "GAN_LOSSES", "dcgan_preset", "wgan_gp_preset"]

GAN_LOSSES = ("dcgan", "wgan-gp")



@dataclass(frozen=True)
class GANConfig(CudaRunOptions):
    """Everything that defines a DCGAN / WGAN-GP run. Defaults: the DCGAN paper's settings."""

    loss: str = option("dcgan", "adversarial loss: DCGAN's BCE or WGAN-GP's critic", choices=GAN_LOSSES)
    steps: int = option(10000, "generator iterations")
    batch_size: int = option(64, "images per batch")
    z_dim: int = option(100, "latent dimension")
    channels: int = option(1, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(64, "generator base width (channels of its last hidden layer)")
    d_width: int = option(64, "discriminator base width (channels of its first layer)")
    critic_norm: str = option("none", "normalization in the discriminator (layer suits WGAN-GP)", choices=CRITIC_NORMS)
    lr_g: float = option(2e-4, "generator learning rate")
    lr_d: float = option(2e-4, "discriminator learning rate")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    n_critic: int = option(1, "discriminator steps per generator step")
    gp_lambda: float = option(10.0, "gradient-penalty weight lambda of WGAN-GP")
    label_smoothing: float = option(1.0, "target for real samples (one-sided label smoothing, e.g. 0.9; 1 = off)")
    minibatch_discrimination: int = option(0, "number of minibatch-discrimination kernels in D (0 = off)")
    g_norm: str = option("batch", "normalization in the generator: batch norm, or virtual batch norm against a "
                                  "fixed reference batch of noise", choices=G_NORMS)
    n_samples: int = option(64, "samples in each kept grid")

    def __post_init__(self) -> None:
        check_choice("loss", self.loss, GAN_LOSSES)
        check_choice("critic_norm", self.critic_norm, CRITIC_NORMS)
        check_run_config(self, extra_ints=("z_dim", "n_critic"), rates=("lr_g", "lr_d"))
        check_positive("gp_lambda", self.gp_lambda)
        check_real_label(self.label_smoothing)
        check_positive_int("minibatch_discrimination", self.minibatch_discrimination, minimum=0)
        check_choice("g_norm", self.g_norm, G_NORMS)
        if self.loss != "dcgan" and self.label_smoothing != 1.0:
            raise ValueError(f"label_smoothing applies to the cross-entropy loss 'dcgan', not {self.loss!r} "
                             f"(a critic has no labels); use label_smoothing=1.0")
        if self.loss != "dcgan" and self.minibatch_discrimination:
            raise ValueError(f"minibatch_discrimination applies to loss 'dcgan', not {self.loss!r}: the gradient "
                             f"penalty is taken per sample, and these features couple the samples of a batch; "
                             f"use minibatch_discrimination=0")


def dcgan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> GANConfig:
    """DCGAN on MNIST-5k with the paper's optimiser, at the size of ``tier`` (see :func:`preset_tier`):
    smoke shrinks widths and steps for a CPU test, lecture fits a 2-core CPU in minutes, full is the paper's."""
    base = dict(loss="dcgan", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1)
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=300, batch_size=32, g_width=32, d_width=32, z_dim=32, sample_every=50, log_every=10),
        lecture=dict(steps=3000, batch_size=64, g_width=32, d_width=32, z_dim=64, sample_every=500),
        full=dict(steps=8000, batch_size=128, g_width=64, d_width=64, z_dim=100, sample_every=1000),
    ))
    return GANConfig(**{**base, **overrides})


def wgan_gp_preset(smoke: bool = False, tier: str | None = None, **overrides) -> GANConfig:
    """WGAN-GP on MNIST-5k: lambda = 10, n_critic = 5, Adam(1e-4, betas (0, 0.9)) as in the paper, at the
    size of ``tier`` (see :func:`preset_tier`); the lecture tier learns at 3e-4 to fit a CPU."""
    base = dict(loss="wgan-gp", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9, n_critic=5, gp_lambda=10.0)
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=60, batch_size=32, g_width=16, d_width=16, z_dim=32, sample_every=20, log_every=10),
        # a CPU run of minutes: small networks, and 3e-4 in place of the paper's 1e-4 to learn in 2,000 steps
        lecture=dict(steps=2000, batch_size=32, g_width=16, d_width=16, z_dim=64, lr_g=3e-4, lr_d=3e-4,
                     sample_every=250),
        full=dict(steps=8000, batch_size=64, g_width=64, d_width=64, z_dim=100, sample_every=1000),
    ))
    return GANConfig(**{**base, **overrides})


class GANTrainer(TrainingLoop):
    """Trains ``G`` and ``D`` on images ``x`` (N, C, S, S) in [-1, 1]; ``history`` and ``snapshots`` record the run.

    Images outside [-1, 1] raise a ``ValueError`` here; NaN/inf images raise
    :class:`gancourse.deep.runtime.NonFiniteImagesError` when :meth:`train` starts.
    """

    KIND = "gan"
    STATE = ("G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z")

    def __init__(self, config: GANConfig, images: torch.Tensor, device: torch.device | str = "cpu"):
        self._set_up(config, GANConfig, device)
        c = config
        self.images = self._device_images("images", images, (c.channels, c.image_size, c.image_size))
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = DCGANGenerator(c.z_dim, c.channels, c.g_width, c.image_size, norm=c.g_norm,
                                    n_reference=c.batch_size).to(self.device)
            if c.loss == "dcgan":
                self.D = DCGANDiscriminator(c.channels, c.d_width, c.image_size,
                                            minibatch_kernels=c.minibatch_discrimination).to(self.device)
            else:
                self.D = WGANCritic(c.channels, c.d_width, c.image_size, c.critic_norm).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        # the critic's penalty needs double backprop, which compiled graphs do not support: compile G only then
        self._G = maybe_compile(self.G, self.compiled)
        self._D = maybe_compile(self.D, self.compiled and c.loss == "dcgan")
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        names = ("d_loss", "g_loss", "d_real", "d_fake") if c.loss == "dcgan" else \
            ("d_loss", "g_loss", "w_estimate", "gp", "grad_norm")
        self.history = LossHistory(names)
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int) -> torch.Tensor:
        """``z ~ N(0, I)``, shape (n, z_dim), from the run's generator."""
        return torch.randn(n, self.config.z_dim, generator=self.generator, device=self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(z)`` in eval mode (batch norm uses running statistics), float32 on the CPU: (n, C, S, S)."""
        with eval_mode(self.G):
            outs = [self.G(z[i : i + batch_size].to(self.device)).float().cpu() for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, n: int, seed: int = 1234, batch_size: int = 500) -> torch.Tensor:
        """``n`` generated images from noise drawn with its own ``seed`` (the run's generator is not touched)."""
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, batch_size)

    # ------------------------------------------------------------------ one step
    def _real(self) -> torch.Tensor:
        return self.images[self.batcher.next()]  # (B, C, S, S)

    def _dcgan_step(self) -> tuple[torch.Tensor, ...]:
        real, z = self._real(), self.noise(self.config.batch_size)
        with autocast(self.device, self.amp):
            fake = self._G(z)
            l_real, l_fake = self._D(real).float(), self._D(fake.detach()).float()
        loss_d = d_loss_bce(l_real, l_fake, self.config.label_smoothing)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with autocast(self.device, self.amp):
            l_gen = self._D(fake).float()
        loss_g = g_loss_nonsaturating(l_gen)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return loss_d, loss_g, torch.sigmoid(l_real).mean(), torch.sigmoid(l_fake).mean()

    def _wgan_gp_step(self) -> tuple[torch.Tensor, ...]:
        c = self.config
        for _ in range(c.n_critic):
            real, z = self._real(), self.noise(c.batch_size)
            with autocast(self.device, self.amp):
                with torch.no_grad():
                    fake = self._G(z)
                s_real, s_fake = self._D(real).float(), self._D(fake).float()
            # the penalty in float32: its double backprop needs the precision
            gp, norms = gradient_penalty(self._D, real, fake.float(), c.gp_lambda, generator=self.generator,
                                         return_norms=True)
            loss_d = d_loss_wgan(s_real, s_fake) + gp
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        with autocast(self.device, self.amp):
            s_gen = self._D(self._G(self.noise(c.batch_size))).float()
        loss_g = g_loss_wgan(s_gen)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return loss_d, loss_g, wasserstein_estimate(s_real, s_fake).detach(), gp.detach(), norms.mean()

    def train_step(self) -> None:
        """One generator update (after ``n_critic`` D updates); losses go to ``history``."""
        scalars = self._dcgan_step() if self.config.loss == "dcgan" else self._wgan_gp_step()
        self.step += 1
        self.history.append(self.step, *scalars)

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}

    def progress_label(self) -> str:
        return f"{self.config.loss} step"

    def snapshot(self) -> None:
        """Record ``(step, G(fixed_z))`` in ``snapshots``."""
        self.snapshots.append((self.step, self.generate(self.fixed_z)))

    # ------------------------------------------------------------------ diagnostics
    @torch.no_grad()
    def real_confidence(self, real: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """``D(x) = sigmoid(logit)`` of real images in random batches, as training sees them (DCGAN loss only).

        The images are shuffled (``seed``) into batches of ``batch_size``, as the trainer draws them:
        a batch of one class (MNIST-5k comes sorted by class) would skew batch norm and look collapsed
        to minibatch discrimination. D runs in training mode on a copy, so that its running statistics
        are left alone; a last incomplete batch is dropped. Returns (n,) on the CPU, in the shuffled
        order, ``n = len(real)`` rounded down to whole batches. With one-sided label smoothing at
        ``a`` the optimal D scores no real image above ``a``.
        """
        if self.config.loss != "dcgan":
            raise ValueError(f"real_confidence needs a discriminator with a probability output (loss 'dcgan'), "
                             f"not the critic of {self.config.loss!r}")
        b = self.config.batch_size
        if len(real) < b:
            raise ValueError(f"real_confidence needs at least one batch of {b} images, got {len(real)}")
        order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
        D = copy.deepcopy(self.D).train()
        outs = [torch.sigmoid(D(real[order[i : i + b]].to(self.device, torch.float32)).float()).cpu()
                for i in range(0, len(real) - b + 1, b)]  # (b,) each
        return torch.cat(outs)

    def critic_grad_norms(self, real: torch.Tensor, n: int = 256, seed: int = 0) -> torch.Tensor:
        """``||grad_x D(xhat)||`` at ``n`` interpolates between ``real[:n]`` and fresh samples: (n,) on the CPU."""
        gen = torch.Generator().manual_seed(seed)
        real = real[:n].to(self.device, torch.float32)
        fake = self.generate(torch.randn(len(real), self.config.z_dim, generator=gen)).to(self.device)
        xhat = interpolate(real, fake, torch.rand(len(real), generator=gen))
        with eval_mode(self.D):
            return input_grad_norms(self.D, xhat).cpu()

    @torch.no_grad()
    def critic_estimate(self, real: torch.Tensor, seed: int = 0, batch_size: int = 500) -> float:
        """``E D(x) - E D(G(z))`` on the given real images and as many fresh samples (the W1 estimate)."""
        fake = self.generate(torch.randn(len(real), self.config.z_dim, generator=torch.Generator().manual_seed(seed)))
        with eval_mode(self.D):
            s_real = torch.cat([self.D(real[i : i + batch_size].to(self.device)).float() for i in
                                range(0, len(real), batch_size)])
            s_fake = torch.cat([self.D(fake[i : i + batch_size].to(self.device)).float() for i in
                                range(0, len(fake), batch_size)])
        return float(wasserstein_estimate(s_real, s_fake))
