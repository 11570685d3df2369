"""Training loop for StackedMNIST (:mod:`gancourse.deep.stacked_mnist`): 3-channel images, 1000 modes.

Real minibatches are drawn afresh at every step: ``batch_size`` triples of MNIST-5k training digits, chosen
uniformly and independently by the run's ``torch.Generator``, stacked as channels. The generator is DCGAN's
(:class:`~gancourse.deep.dcgan.DCGANGenerator` with 3 output channels); the discriminator is DCGAN's with
batch norm (``d_norm="batch"``) or without any normalisation (``"none"``, needed for a per-sample gradient
penalty to mean what it says).

Recipes (``recipe``; the other fields may still be changed one by one):

- ``dcgan``: DCGAN as published (Radford et al. 2016): BCE on logits, the non-saturating G loss,
  batch norm in D, Adam(2e-4, betas (0.5, 0.999)), no packing;
- ``pacgan``: the same networks and loss with *packing* (Lin et al. 2018, "PacGAN"; PacDCGAN2): D judges
  ``pack = m = 2`` samples at once, concatenated on the channel axis, ``(B, 3, S, S) -> (B/m, 3m, S, S)``; real
  packs hold only real images, fake packs only generated ones. A generator that repeats itself makes fake packs
  whose members look alike, which real packs never do, so D can punish mode collapse directly;
- ``course`` (the default): ``pacgan`` with Adam's learning rate raised to 5e-4 for both networks, which gets
  about twice as far in the lecture's steps;
- ``r3``: the RpGAN loss with R1 and R2 penalties (Huang et al. 2024): D minimises
  ``E softplus(D(G(z)) - D(x)) + gamma/2 (E||grad D(x)||^2 + E||grad D(G(z))||^2)``, G the
  relativistic pairing loss ``E softplus(D(x) - D(G(z)))``, with no normalisation in D, packed like ``pacgan``,
  sampling from a moving average of G's weights (``ema``).

All randomness (real triples, noise) comes from one generator seeded by the config, and a checkpoint holds
networks, optimizers, that generator, the history and the fixed noise: k steps, save, load and k more steps
equal 2k steps bit for bit on the CPU.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.dcgan import DCGANDiscriminator, DCGANGenerator, WGANCritic
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import (
    d_loss_bce,
    d_loss_rpgan,
    g_loss_nonsaturating,
    g_loss_rpgan,
    zero_centered_penalty,
)
from gancourse.deep.runtime import (
    CudaRunOptions,
    LossHistory,
    autocast,
    check_image_shape,
    check_run_config,
    eval_mode,
    maybe_compile,
    seeded,
    update_ema,
)
from gancourse.deep.stacked_mnist import draw_triples, mode_of_classes, stack
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["StackedConfig", "StackedTrainer", "stacked_preset", "RECIPES", "LOSSES", "D_NORMS", "pack", "unpack"]

RECIPES = ("course", "dcgan", "pacgan", "r3")
LOSSES = ("bce", "rpgan")
D_NORMS = ("batch", "none")
#: each recipe's fields (the rest comes from the tier)
RECIPE_FIELDS = {
    "course": dict(loss="bce", pack=2, d_norm="batch", gamma=0.0, ema=0.0, lr_g=5e-4, lr_d=5e-4),
    "dcgan": dict(loss="bce", pack=1, d_norm="batch", gamma=0.0, ema=0.0, lr_g=2e-4, lr_d=2e-4),
    "pacgan": dict(loss="bce", pack=2, d_norm="batch", gamma=0.0, ema=0.0, lr_g=2e-4, lr_d=2e-4),
    "r3": dict(loss="rpgan", pack=2, d_norm="none", gamma=1.0, ema=0.999, lr_g=2e-4, lr_d=2e-4),
}


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """Put ``m`` consecutive samples side by side on the channel axis: (B, C, H, W) -> (B/m, m C, H, W)."""
    m = check_positive_int("pack", m)
    b, c, h, w = x.shape
    if b % m:
        raise ValueError(f"a batch of {b} cannot be cut into packs of {m}; use a batch size divisible by the pack")
    return x.reshape(b // m, m * c, h, w)


def unpack(x: torch.Tensor, m: int) -> torch.Tensor:
    """The inverse of :func:`pack`: (B/m, m C, H, W) -> (B, C, H, W)."""
    n, mc, h, w = x.shape
    if mc % m:
        raise ValueError(f"{mc} channels cannot be split into {m} samples")
    return x.reshape(n * m, mc // m, h, w)


@dataclass(frozen=True)
class StackedConfig(CudaRunOptions):
    """Everything that defines a StackedMNIST run (defaults: the ``course`` recipe at DCGAN's size)."""

    recipe: str = option("course", "the recipe the preset fills in: course (packs of 2, lr 5e-4), dcgan (as "
                                   "published), pacgan (PacDCGAN2 as published), r3 (RpGAN + R1 + R2, packed, "
                                   "an average of G); single fields may still be changed",
                         choices=RECIPES)
    loss: str = option("bce", "adversarial loss: bce (non-saturating) or rpgan (relativistic pairing)",
                       choices=LOSSES)
    pack: int = option(2, "samples per discriminator input (PacGAN's m; 1 = no packing)")
    d_norm: str = option("batch", "normalisation in D: batch norm or none", choices=D_NORMS)
    gamma: float = option(0.0, "weight of the R1 and R2 penalties gamma/2 E||grad D||^2 (0 = off)")
    ema: float = option(0.0, "decay of the moving average of G's weights that samples are drawn from "
                             "(0 = sample from G itself)")
    steps: int = option(10000, "generator iterations")
    batch_size: int = option(64, "images per batch (a multiple of pack)")
    z_dim: int = option(100, "latent dimension")
    channels: int = option(3, "image channels (three stacked digits)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(64, "generator base width (channels of its last hidden layer)")
    d_width: int = option(64, "discriminator base width (channels of its first layer)")
    lr_g: float = option(5e-4, "generator learning rate")
    lr_d: float = option(5e-4, "discriminator learning rate")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    n_samples: int = option(64, "noise codes in each kept grid")

    def __post_init__(self) -> None:
        check_choice("recipe", self.recipe, RECIPES)
        check_choice("loss", self.loss, LOSSES)
        check_choice("d_norm", self.d_norm, D_NORMS)
        check_positive_int("pack", self.pack)
        check_positive("gamma", self.gamma, allow_zero=True)
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must lie in [0, 1) (0: no average), got {self.ema!r}")
        check_run_config(self, extra_ints=("z_dim",), rates=("lr_g", "lr_d"))
        if self.channels != 3:
            raise ValueError(f"StackedMNIST images have 3 channels, got channels={self.channels}")
        if self.batch_size % self.pack:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of pack ({self.pack})")
        if self.gamma > 0 and self.d_norm == "batch":
            raise ValueError("the R1/R2 penalty (gamma > 0) is per sample; batch norm in D couples the samples of "
                             "a batch, so use d_norm='none' with it")


def stacked_preset(smoke: bool = False, tier: str | None = None, **overrides) -> StackedConfig:
    """StackedMNIST with the fields of ``overrides.get("recipe", "course")`` (``RECIPE_FIELDS``) at the size of
    ``tier``: smoke is a CPU test of seconds, lecture fits a 2-core CPU, full is DCGAN's size for a GPU."""
    recipe = check_choice("recipe", overrides.get("recipe", "course"), RECIPES)
    base = dict(beta1=0.5, beta2=0.999, recipe=recipe, **RECIPE_FIELDS[recipe])
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=60, batch_size=16, g_width=8, d_width=8, z_dim=16, sample_every=30, log_every=10,
                   n_samples=16),
        lecture=dict(steps=12000, batch_size=64, g_width=48, d_width=48, z_dim=64, sample_every=2000),
        full=dict(steps=30000, batch_size=64, g_width=64, d_width=64, z_dim=100, sample_every=2000),
    ))
    return StackedConfig(**{**base, **overrides})


class StackedTrainer(TrainingLoop):
    """Trains ``G(z)`` and ``D`` on stacked triples of ``digits`` (D, 1, 32, 32) in [-1, 1] with their classes
    ``digit_labels`` (D,).

    ``history`` records ``d_loss``, ``g_loss``, D's mean probability on real and generated packs (``d_real``,
    ``d_fake``; for ``rpgan`` the probability that the real member of a pair is judged more real) and the
    penalty ``reg`` (0 without one); ``snapshots`` holds ``(step, G_ema(fixed_z))``. Samples come from ``G_ema``,
    the moving average of G's weights (``ema``; with ``ema = 0`` it equals G).
    """

    KIND = "stackedmnist"
    STATE = ("G", "G_ema", "D", "opt_g", "opt_d", "generator", "history", "fixed_z")

    def __init__(self, config: StackedConfig, digits: torch.Tensor, digit_labels: torch.Tensor,
                 device: torch.device | str = "cpu"):
        self._set_up(config, StackedConfig, device)
        c, s = config, config.image_size
        check_image_shape("digits", digits, (1, s, s), n="D")
        if digit_labels.shape != (len(digits),):
            raise ValueError(f"digit_labels must have shape ({len(digits)},), got {tuple(digit_labels.shape)}")
        self.digits = self._device_images("digits", digits)
        self.digit_labels = digit_labels.to(self.device, torch.int64)
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = DCGANGenerator(c.z_dim, c.channels, c.g_width, s).to(self.device)
            d_channels = c.channels * c.pack
            self.D = (DCGANDiscriminator(d_channels, c.d_width, s) if c.d_norm == "batch"
                      else WGANCritic(d_channels, c.d_width, s, norm="none")).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self._G = maybe_compile(self.G, self.compiled)
        self._D = maybe_compile(self.D, self.compiled)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.history = LossHistory(("d_loss", "g_loss", "d_real", "d_fake", "reg"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ data and sampling
    def real_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fresh stacked images (n, 3, S, S) and their modes (n,), drawn with the run's generator."""
        t = draw_triples(n, len(self.digits), self.generator)  # (n, 3)
        return stack(self.digits, t), mode_of_classes(self.digit_labels[t])

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 1000, average: bool = True) -> torch.Tensor:
        """``G(z)`` in eval mode (batch norm uses running statistics), float32 on the CPU: (n, 3, S, S); from the
        moving average of G's weights unless ``average`` is False."""
        net = self.G_ema if average else self.G
        with eval_mode(net):
            outs = [net(z[i: i + batch_size].to(self.device)).float().cpu() for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, n: int, seed: int = 1234, batch_size: int = 1000, average: bool = True) -> torch.Tensor:
        """``n`` samples from noise drawn with its own ``seed`` (the run's generator is not touched)."""
        z = torch.randn(check_positive_int("n", n), self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, batch_size, average)

    # ------------------------------------------------------------------ one step
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._D(pack(x, self.config.pack)).float()  # (B, 3, S, S) -> (B/m, 3m, S, S) -> (B/m,)

    def train_step(self) -> None:
        """One D update and one G update; losses go to ``history``."""
        c = self.config
        real, _ = self.real_batch(c.batch_size)  # (B, 3, S, S)
        z = torch.randn(c.batch_size, c.z_dim, generator=self.generator, device=self.device)
        with autocast(self.device, self.amp):
            fake = self._G(z)
            l_real, l_fake = self._logits(real), self._logits(fake.detach())
        reg = torch.zeros((), device=self.device)
        if c.loss == "bce":
            loss_d = d_loss_bce(l_real, l_fake)
        else:
            loss_d = d_loss_rpgan(l_real, l_fake)
        if c.gamma > 0:
            critic = lambda x: self._D(x).float()  # noqa: E731 - on packs
            reg = (zero_centered_penalty(critic, pack(real, c.pack), c.gamma)
                   + zero_centered_penalty(critic, pack(fake.detach(), c.pack), c.gamma))
        self.opt_d.zero_grad(set_to_none=True)
        (loss_d + reg).backward()
        self.opt_d.step()
        with autocast(self.device, self.amp):
            l_gen = self._logits(fake)
        loss_g = g_loss_nonsaturating(l_gen) if c.loss == "bce" else g_loss_rpgan(l_gen, l_real.detach())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        update_ema(self.G_ema, self.G, c.ema)  # with ema = 0, G_ema is a copy of G
        self.step += 1
        if c.loss == "bce":
            d_real, d_fake = torch.sigmoid(l_real).mean(), torch.sigmoid(l_fake).mean()
        else:
            d_real = torch.sigmoid(l_real - l_fake).mean()
            d_fake = 1 - d_real
        self.history.append(self.step, loss_d, loss_g, d_real, d_fake, reg)

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"digits": self.digits}

    def progress_label(self) -> str:
        return f"stackedmnist ({self.config.recipe}) step"

    def snapshot(self) -> None:
        """Record ``(step, G_ema(fixed_z))``."""
        self.snapshots.append((self.step, self.generate(self.fixed_z)))
