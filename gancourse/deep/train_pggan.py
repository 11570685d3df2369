"""Training loop for the Progressive GAN (Karras et al. 2018) on images (N, C, S, S) in [-1, 1].

Step ``t`` has seen ``t * batch_size`` images; :class:`~gancourse.deep.pggan.GrowSchedule` turns that count into
the resolution ``r`` and fade ``alpha`` of the step, so the schedule is a function of the step counter alone and
a resumed run continues it where it stopped. The real batch is brought to ``r`` the way G's output is: average
pooled to ``r``, and during a fade blended as G blends, ``(1 - alpha) * up(pool_{r/2}(x)) + alpha * pool_r(x)``
(the reference code fades the reals too, so that D never tells real from fake by sharpness alone).

Losses (``loss``):

- ``"nonsaturating"`` (the default): D's BCE on logits and G's non-saturating loss, plus the paper's drift term
  ``drift * E[D(x)^2]`` on real scores. Chosen for CPU runs because it needs one backward pass through D where
  WGAN-GP needs two (the penalty's gradient of a gradient): measured on one CPU thread at the lecture widths, a
  WGAN-GP step cost 1.5x (32x32) to 1.8x (16x16) a non-saturating one, and at an equal number of images seen the
  cheaper loss leaves room for more of them within the lecture tier's minutes.
- ``"wgan-gp"``: the paper's loss, ``E D(G(z)) - E D(x) + lambda E(||grad D(xhat)|| - 1)^2 + drift E D(x)^2``
  with ``lambda = 10`` and ``drift = 1e-3`` (appendix A.1), one critic step per G step.

Optimiser: Adam with the paper's betas (0, 0.99) for both networks; the paper's learning rate is 1e-3 (the full
preset), the lecture preset's 5e-3. With the equalized learning rate every weight is stored at scale 1, so the
learning rate is the relative step of every layer; the paper's 1e-3 is meant for millions of images, and over the
lecture's 160k images larger steps learned faster (FD-LeNet of the 16x16 samples, upsampled, at the end of the
16x16 phase after 56k images: 439 at 3e-3 against 699 at 1e-3; final FD-LeNet 53.7 at 5e-3 against 60.4 at 3e-3;
seed 0). One Adam holds all of a network's
parameters from the start: a layer that has not yet been used has no gradient, and Adam skips it (its moments
start when it joins). Samples come from an exponential moving average of G's weights (the paper's "smoothed"
generator) with a half-life of ``ema_half_life`` images: ``beta = 0.5 ** (batch_size / ema_half_life)``.

A checkpoint holds both networks, the average, the optimizers, the run's ``torch.Generator``, the batcher and the
history, so k steps + save + load + k steps equal 2k steps bit for bit on the CPU, across phase boundaries too.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_bce, d_loss_wgan, g_loss_nonsaturating, g_loss_wgan, gradient_penalty
from gancourse.deep.pggan import GrowSchedule, PGDiscriminator, PGGenerator, downsample, upsample
from gancourse.deep.runtime import (
    Batcher,
    LossHistory,
    RunOptions,
    autocast,
    check_run_config,
    eval_mode,
    seeded,
    update_ema,
)
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["PGGANConfig", "PGGANTrainer", "pggan_preset", "PGGAN_LOSSES"]

PGGAN_LOSSES = ("nonsaturating", "wgan-gp")


@dataclass(frozen=True)
class PGGANConfig(RunOptions):
    """Everything that defines a Progressive GAN run. Defaults: the paper's optimiser and loss constants at a
    CPU size."""

    loss: str = option("nonsaturating", "adversarial loss: non-saturating with drift, or the paper's WGAN-GP with "
                                        "drift", choices=PGGAN_LOSSES)
    steps: int = option(3000, "generator iterations (images seen = steps * batch size)")
    batch_size: int = option(64, "images per batch (the same at every resolution)")
    stable_images: tuple[int, ...] = option((16000, 16000, 32000), "images trained at 4, 8 and 16 pixels before "
                                                                   "the next resolution fades in")
    fade_images: tuple[int, ...] = option((16000, 16000, 32000), "images over which 8, 16 and 32 pixels fade in")
    z_dim: int = option(128, "latent dimension")
    channels: int = option(1, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "final image side in pixels")
    g_width: int = option(16, "generator channels at the final resolution (doubling per halving)")
    d_width: int = option(16, "discriminator channels at the final resolution (doubling per halving)")
    width_max: int = option(128, "most channels of any layer")
    lr_g: float = option(1e-3, "generator learning rate")
    lr_d: float = option(1e-3, "discriminator learning rate")
    beta1: float = option(0.0, "Adam beta1")
    beta2: float = option(0.99, "Adam beta2")
    gp_lambda: float = option(10.0, "gradient-penalty weight lambda (wgan-gp)")
    drift: float = option(1e-3, "drift penalty epsilon_drift * E[D(x)^2] on real scores (0 = off)")
    mbstd_group: int = option(4, "minibatch standard deviation group size")
    ema_half_life: int = option(10000, "half-life in images of the generator's weight average (0 = no average)")
    # CudaRunOptions' amp without its compile
    amp: bool = option(True, "mixed precision (bfloat16 autocast) on CUDA; ignored on CPU")
    n_samples: int = option(64, "samples in each kept grid")

    def __post_init__(self) -> None:
        check_choice("loss", self.loss, PGGAN_LOSSES)
        check_run_config(self, extra_ints=("z_dim", "width_max", "mbstd_group"), rates=("lr_g", "lr_d"))
        check_positive("gp_lambda", self.gp_lambda)
        check_positive("drift", self.drift, allow_zero=True)
        check_positive_int("ema_half_life", self.ema_half_life, minimum=0)
        if self.batch_size % min(self.mbstd_group, self.batch_size):
            raise ValueError(f"batch_size ({self.batch_size}) must be divisible by mbstd_group ({self.mbstd_group})")
        schedule = self.schedule()  # checks the phases
        if self.steps * self.batch_size < schedule.growth_images:
            raise ValueError(f"steps * batch_size ({self.steps} * {self.batch_size} = {self.steps * self.batch_size} "
                             f"images) must reach the end of growing ({schedule.growth_images} images: stable "
                             f"{self.stable_images}, fades {self.fade_images}); raise steps or shorten the phases")

    def schedule(self) -> GrowSchedule:
        """The growth schedule: images seen -> (resolution, alpha)."""
        return GrowSchedule(self.image_size, self.stable_images, self.fade_images)

    @property
    def ema_beta(self) -> float:
        """The weight average's decay per step, ``0.5 ** (batch_size / ema_half_life)`` (0: no average)."""
        return 0.5 ** (self.batch_size / self.ema_half_life) if self.ema_half_life else 0.0


def pggan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> PGGANConfig:
    """Progressive GAN on MNIST-5k, at the size of ``tier`` (see :func:`gancourse.deep.train_gan.preset_tier`).

    lecture: 160k images in 2,500 steps of 64: 12k at 4x4, 12k fading into and 12k at 8x8, 24k fading into and
    24k at 16x16, 16k fading into 32x32 and the last 60k at 32x32, with widths 8 at 32x32 doubling to 64 (a CPU
    size). Measured at seed 0 (FD-LeNet at the end): growing over 44k images (to the end of the fade into 32x32)
    gave 85, over 72k 64, over these 100k 60, over 128k 75. full: the paper's learning rate and equal fade and
    stable phases, wider, for a GPU.
    """
    tier = preset_tier(smoke, tier)
    base = pick(
        tier,
        smoke=dict(steps=80, batch_size=16, g_width=8, d_width=8, width_max=32, z_dim=32, stable_images=(160, 160, 160),
                   fade_images=(160, 160, 160), sample_every=20, log_every=10, ema_half_life=500),
        lecture=dict(steps=2500, batch_size=64, g_width=8, d_width=8, width_max=64, z_dim=128, lr_g=5e-3, lr_d=5e-3,
                     stable_images=(12000, 12000, 24000), fade_images=(12000, 24000, 16000), ema_half_life=4000,
                     sample_every=250),
        full=dict(steps=20000, batch_size=64, g_width=32, d_width=32, width_max=256, z_dim=256,
                  stable_images=(100000, 100000, 200000), fade_images=(100000, 100000, 200000), sample_every=1000),
    )
    return PGGANConfig(**{**base, **overrides})


class PGGANTrainer(TrainingLoop):
    """Trains a :class:`PGGenerator` and a :class:`PGDiscriminator`, growing them on the config's schedule.

    ``history`` records the losses, D's mean output on real and generated images (``d_real``, ``d_fake``:
    probabilities for the non-saturating loss, scores for WGAN-GP) and, per step, ``resolution``, ``alpha``
    and ``images_seen``. ``snapshots`` holds ``(step, images)`` from the averaged generator at the step's
    resolution and fade (so early grids are 4x4 or 8x8).
    """

    KIND = "pggan"
    STATE = ("G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z")
    POSTFIX = ("d_loss", "g_loss", "resolution", "alpha")

    def __init__(self, config: PGGANConfig, images: torch.Tensor, device: torch.device | str = "cpu"):
        self._set_up(config, PGGANConfig, device)
        c = config
        self.grow = c.schedule()
        self.images = self._device_images("images", images, (c.channels, c.image_size, c.image_size))
        # the real images at every resolution, each pooled 2x2 from the one above (as D pools)
        self.pyramid = {c.image_size: self.images}
        for r in reversed(self.grow.resolutions[:-1]):
            self.pyramid[r] = downsample(self.pyramid[2 * r])
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = PGGenerator(c.z_dim, c.channels, c.image_size, c.g_width, c.width_max).to(self.device)
            self.D = PGDiscriminator(c.channels, c.image_size, c.d_width, c.width_max, c.mbstd_group).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2), eps=1e-8)
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("d_loss", "g_loss", "d_real", "d_fake", "resolution", "alpha", "images_seen"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ schedule
    @property
    def images_seen(self) -> int:
        """Real images shown to D so far: ``step * batch_size``."""
        return self.step * self.config.batch_size

    def phase(self) -> tuple[int, float]:
        """``(resolution, alpha)`` of the next step."""
        return self.grow(self.images_seen)

    def real_batch(self, idx: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
        """Real images ``idx`` at ``resolution``, faded as G's output is: (B, C, r, r)."""
        high = self.pyramid[resolution][idx]
        if alpha == 1.0 or resolution == self.grow.resolutions[0]:
            return high
        return (1.0 - alpha) * upsample(self.pyramid[resolution // 2][idx]) + alpha * high

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0, ema: bool = True,
                 batch_size: int = 500) -> torch.Tensor:
        """``G(z)`` clipped to [-1, 1], float32 on the CPU: (n, C, r, r); the averaged weights unless ``ema``
        is False (or the config keeps no average)."""
        net = self.G_ema if ema and self.config.ema_half_life else self.G
        with eval_mode(net):
            outs = [net(z[i: i + batch_size].to(self.device), resolution, alpha).float().clamp(-1, 1).cpu()
                    for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, n: int, seed: int = 1234, resolution: int | None = None, alpha: float = 1.0,
               batch_size: int = 500) -> torch.Tensor:
        """``n`` images at ``resolution`` (default: the final one) from noise drawn with its own ``seed``."""
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, resolution, alpha, batch_size=batch_size)

    # ------------------------------------------------------------------ one step
    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor, alpha: float) -> tuple[torch.Tensor, ...]:
        c = self.config
        with autocast(self.device, self.amp):
            l_real, l_fake = self.D(real, alpha).float(), self.D(fake, alpha).float()
        if c.loss == "wgan-gp":
            loss = d_loss_wgan(l_real, l_fake) + gradient_penalty(lambda x: self.D(x, alpha).float(), real, fake,
                                                                   c.gp_lambda, generator=self.generator)
            shown = l_real.mean(), l_fake.mean()
        else:
            loss = d_loss_bce(l_real, l_fake)
            shown = torch.sigmoid(l_real).mean(), torch.sigmoid(l_fake).mean()
        if c.drift:
            loss = loss + c.drift * l_real.square().mean()  # keeps D's scores near 0 (section A.1)
        return loss, *shown

    def train_step(self) -> None:
        """One D update and one G update at the schedule's resolution and fade; losses go to ``history``."""
        c = self.config
        resolution, alpha = self.phase()
        real = self.real_batch(self.batcher.next(), resolution, alpha)  # (B, C, r, r)
        z = torch.randn(c.batch_size, c.z_dim, generator=self.generator, device=self.device)
        with autocast(self.device, self.amp):
            fake = self.G(z, resolution, alpha).float()
        loss_d, d_real, d_fake = self._d_loss(real, fake.detach(), alpha)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with autocast(self.device, self.amp):
            l_gen = self.D(fake, alpha).float()
        loss_g = g_loss_wgan(l_gen) if c.loss == "wgan-gp" else g_loss_nonsaturating(l_gen)
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        loss_g.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        if c.ema_half_life:
            update_ema(self.G_ema, self.G, c.ema_beta)
        self.step += 1
        self.history.append(self.step, loss_d, loss_g, d_real, d_fake, resolution, alpha, self.images_seen)

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}

    def progress_label(self) -> str:
        return "pggan step"

    def snapshot(self) -> None:
        """Record ``(step, G_ema(fixed_z))`` at the resolution and fade of the step just taken."""
        resolution, alpha = self.grow(max(self.images_seen - self.config.batch_size, 0))
        self.snapshots.append((self.step, self.generate(self.fixed_z, resolution, alpha)))
