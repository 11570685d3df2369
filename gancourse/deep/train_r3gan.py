"""Training loop for R3GAN (Huang, Gokaslan, Kuleshov & Tompkin 2024): the relativistic pairing loss with
R1 and R2, on the modern ConvNets of :mod:`gancourse.deep.r3gan`.

One step, on a real minibatch ``x_i`` and generated images ``G(z_i)`` paired with it:

- D: ``L_D = E_i softplus(D(G(z_i)) - D(x_i)) + gamma/2 E||grad D(x)||^2 + gamma/2 E||grad D(G(z))||^2``
  (RpGAN, :func:`gancourse.deep.losses.d_loss_rpgan`, plus R1 on the reals and R2 on the fakes with the same
  ``gamma``: the paper's eq. 4, the "R3" of its name);
- G: ``L_G = E_i softplus(D(x_i) - D(G(z_i)))`` (:func:`gancourse.deep.losses.g_loss_rpgan`), on fresh noise
  paired with the same real minibatch, its logits taken from the updated D.

Adam with ``beta1 = 0`` (no momentum) and ``beta2 = 0.99`` for both players, as in the paper, one D step per
G step, and optionally an exponential moving average of G's weights (``ema``), which then draws every
sample and snapshot. Each penalty's input gradient comes from the same forward pass as the loss's logits
(``autograd.grad(..., create_graph=True)``), which gives :func:`gancourse.deep.losses.zero_centered_penalty`'s
value without a second forward pass.

As in the other trainers, all randomness of a run comes from one ``torch.Generator`` seeded by the config,
and a checkpoint holds networks, optimisers, the EMA copy, generator and batcher states, so that k steps,
save, load and k more steps equal 2k steps bit for bit on the CPU.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_rpgan, g_loss_rpgan
from gancourse.deep.r3gan import R3GANDiscriminator, R3GANGenerator
from gancourse.deep.runtime import (
    Batcher,
    CudaRunOptions,
    LossHistory,
    autocast,
    check_run_config,
    eval_mode,
    maybe_compile,
    seeded,
    update_ema,
)
from gancourse.errors import check_positive
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["R3GANConfig", "R3GANTrainer", "r3gan_preset", "logits_and_penalty"]


@dataclass(frozen=True)
class R3GANConfig(CudaRunOptions):
    """Everything that defines an R3GAN run. Defaults: the paper's optimiser, a small network for 32x32 digits."""

    steps: int = option(10000, "generator iterations")
    batch_size: int = option(64, "images per batch")
    z_dim: int = option(64, "latent dimension")
    channels: int = option(1, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(32, "generator base width w (stage widths 2w, 2w, w, w at 4, 8, 16, 32 pixels)")
    d_width: int = option(32, "discriminator base width (its stages mirror the generator's)")
    blocks: int = option(1, "residual blocks per stage in each network")
    expansion: int = option(2, "inverted-bottleneck expansion of each residual block")
    group_size: int = option(16, "channels per group of the grouped 3x3 convolutions")
    gamma: float = option(0.1, "weight gamma of R1 (on reals) and of R2 (on fakes), the same for both")
    lr_g: float = option(2e-4, "generator learning rate")
    lr_d: float = option(2e-4, "discriminator learning rate")
    beta1: float = option(0.0, "Adam beta1 (0 in the paper)")
    beta2: float = option(0.99, "Adam beta2 (0.99 in the paper)")
    ema: float = option(0.999, "decay of the moving average of G's weights that draws the samples (0 = off)")
    # two of CudaRunOptions' fields, told more precisely
    amp: bool = option(True, "mixed precision (bfloat16 autocast) on CUDA for the loss terms; ignored on CPU")
    compile: bool = option(False, "torch.compile the generator on CUDA; ignored on CPU")
    n_samples: int = option(64, "samples in each kept grid")

    def __post_init__(self) -> None:
        check_run_config(self, extra_ints=("z_dim", "blocks", "expansion", "group_size"), rates=("lr_g", "lr_d"))
        check_positive("gamma", self.gamma)
        if not 0.0 <= float(self.ema) < 1.0:
            raise ValueError(f"ema is a decay in [0, 1) (0 turns it off), got {self.ema!r}")
        hidden = {2 * self.g_width * self.expansion, self.g_width * self.expansion,
                  2 * self.d_width * self.expansion, self.d_width * self.expansion}
        bad = sorted(h for h in hidden if h % self.group_size)
        if bad:
            raise ValueError(f"group_size ({self.group_size}) must divide every expanded width of the residual "
                             f"blocks ({sorted(hidden)}); {bad} are not multiples of it")


def r3gan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> R3GANConfig:
    """R3GAN on MNIST-5k at the size of ``tier`` (:func:`gancourse.deep.train_gan.preset_tier`): smoke is a
    CPU test of seconds, lecture fits a 2-core CPU in minutes, full is a longer, wider run for a GPU.
    Adam with betas (0, 0.99) as the paper; its learning rate 2e-4 at smoke and full. The paper trains for
    millions of images; at the lecture tier's 64,000 (2,000 steps of 32) lr 2e-3 and gamma 1 were measured on
    MNIST-5k to turn the former 2e-4 and 0.1 (FD-LeNet 800 after 1,200 steps, digits unformed) into FD-LeNet 71
    (seed 0; docs/RESULTS.md). The paper's CIFAR-10 gamma is 0.05, decayed to 0.005 over training."""
    base = dict(lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99)
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=60, batch_size=16, g_width=8, d_width=8, group_size=8, z_dim=16, ema=0.9,
                   sample_every=20, log_every=10),
        lecture=dict(steps=2000, batch_size=32, g_width=16, d_width=16, group_size=8, z_dim=64, ema=0.99,
                     lr_g=2e-3, lr_d=2e-3, gamma=1.0, sample_every=250),
        full=dict(steps=10000, batch_size=64, g_width=64, d_width=64, blocks=2, group_size=16, z_dim=64,
                  ema=0.999, sample_every=1000),
    ))
    return R3GANConfig(**{**base, **overrides})


def logits_and_penalty(D: torch.nn.Module, x: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``D(x)`` (N,) and ``gamma/2 mean_i ||grad_x D(x_i)||^2`` from one forward pass (double backprop).

    The value equals :func:`gancourse.deep.losses.zero_centered_penalty` (R1 on reals, R2 on fakes); ``x``
    is detached, so the penalty trains D only."""
    x = x.detach().requires_grad_(True)
    logits = D(x).float()
    (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return logits, 0.5 * gamma * g.flatten(1).square().sum(1).mean()  # (N, C, H, W) -> (N,) -> ()


class R3GANTrainer(TrainingLoop):
    """Trains R3GAN's ``G`` and ``D`` on images (N, C, 32, 32) in [-1, 1].

    ``history`` records ``d_loss`` (RpGAN's term alone), ``g_loss``, ``r1``, ``r2`` and the mean logit gap
    ``gap = E D(x) - E D(G(z))``; ``snapshots`` holds ``(step, images)`` drawn from ``fixed_z`` by the EMA
    generator (by G itself when ``ema = 0``).
    """

    KIND = "r3gan"
    STATE = ("G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z")

    def __init__(self, config: R3GANConfig, images: torch.Tensor, device: torch.device | str = "cpu"):
        self._set_up(config, R3GANConfig, device)
        c = config
        self.images = self._device_images("images", images, (c.channels, c.image_size, c.image_size))
        nets = dict(blocks=c.blocks, expansion=c.expansion, group_size=c.group_size, image_size=c.image_size)
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = R3GANGenerator(c.z_dim, c.channels, c.g_width, **nets).to(self.device)
            self.D = R3GANDiscriminator(c.channels, c.d_width, **nets).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self._G = maybe_compile(self.G, self.compiled)  # D needs double backprop: never compiled
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("d_loss", "g_loss", "r1", "r2", "gap"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ sampling
    def noise(self, n: int) -> torch.Tensor:
        """``z ~ N(0, I)``, shape (n, z_dim), from the run's generator."""
        return torch.randn(n, self.config.z_dim, generator=self.generator, device=self.device)

    @property
    def sampler(self) -> torch.nn.Module:
        """The network that draws samples: the EMA of G, or G itself when ``ema = 0``."""
        return self.G_ema if self.config.ema > 0 else self.G

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(z)`` by :attr:`sampler`, clipped to [-1, 1], float32 on the CPU: (n, C, 32, 32)."""
        with eval_mode(self.sampler):
            outs = [self.sampler.images(z[i: i + batch_size].to(self.device)).float().cpu()
                    for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, n: int, seed: int = 1234, batch_size: int = 500) -> torch.Tensor:
        """``n`` generated images from noise drawn with its own ``seed`` (the run's generator is not touched)."""
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, batch_size)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One D update (RpGAN + R1 + R2) and one G update (RpGAN); losses go to ``history``."""
        c = self.config
        real = self.images[self.batcher.next()]  # (B, C, 32, 32)
        with torch.no_grad(), autocast(self.device, self.amp):
            fake = self._G(self.noise(c.batch_size)).float()
        # the penalties' double backprop in float32
        l_real, r1 = logits_and_penalty(self.D, real, c.gamma)
        l_fake, r2 = logits_and_penalty(self.D, fake, c.gamma)
        rp = d_loss_rpgan(l_real, l_fake)
        self.opt_d.zero_grad(set_to_none=True)
        (rp + r1 + r2).backward()
        self.opt_d.step()
        self.D.requires_grad_(False)  # G's step needs gradients through D, not into it
        try:
            with autocast(self.device, self.amp):
                l_gen = self.D(self._G(self.noise(c.batch_size))).float()
                with torch.no_grad():
                    l_ref = self.D(real).float()
            loss_g = g_loss_rpgan(l_gen, l_ref)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        if c.ema > 0:
            # the decay warms up as min(ema, (1 + t) / (10 + t)): early averages do not lean on the random start
            update_ema(self.G_ema, self.G, min(c.ema, (1 + self.step) / (10 + self.step)))
        self.step += 1
        self.history.append(self.step, rp.detach(), loss_g.detach(), r1.detach(), r2.detach(),
                            (l_real - l_fake).mean().detach())

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}

    def progress_label(self) -> str:
        return "r3gan step"

    def snapshot(self) -> None:
        """Record ``(step, sampler(fixed_z))`` in ``snapshots``."""
        self.snapshots.append((self.step, self.generate(self.fixed_z)))
