"""Training loop for class-conditional GANs on labelled images (Mirza & Osindero 2014; Miyato & Koyama 2018).

One step, on a real minibatch ``(x, y)`` and generated pairs ``(G(z, y'), y')`` with fresh noise ``z`` and
classes ``y'`` drawn uniformly:

- D: the BCE loss on logits, ``E softplus(-D(x, y)) + E softplus(D(G(z, y'), y'))``
  (:func:`gancourse.deep.losses.d_loss_bce`);
- G: the non-saturating loss ``E softplus(-D(G(z, y'), y'))`` (:func:`gancourse.deep.losses.g_loss_nonsaturating`)
  on the same generated pairs.

D is a :class:`~gancourse.deep.conditional.ProjectionDiscriminator` or a
:class:`~gancourse.deep.conditional.ConcatDiscriminator` (``discriminator``); G is a
:class:`~gancourse.deep.conditional.ConditionalGenerator`, with class-conditional batch norm unless
``conditional_bn`` is off. DCGAN's optimiser: Adam(2e-4, betas (0.5, 0.999)) for both.

As in :mod:`gancourse.deep.train_gan`, all randomness of a run (minibatch order, noise, generated classes)
comes from one ``torch.Generator`` seeded by the config, and a checkpoint holds every network, optimizer,
generator and batcher state with the history and snapshots, so that k steps, save, load and k more steps
equal 2k steps bit for bit on the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gancourse.deep.conditional import DISCRIMINATORS, ConditionalGenerator, check_labels, make_discriminator
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_bce, g_loss_nonsaturating
from gancourse.deep.runtime import (
    Batcher,
    CudaRunOptions,
    LossHistory,
    autocast,
    check_image_shape,
    check_run_config,
    eval_mode,
    maybe_compile,
    seeded,
)
from gancourse.errors import check_choice
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["CGANConfig", "CGANTrainer", "cgan_preset"]


@dataclass(frozen=True)
class CGANConfig(CudaRunOptions):
    """Everything that defines a conditional GAN run. Defaults: a projection discriminator, class-conditional
    BN in the generator, DCGAN's networks and optimiser."""

    discriminator: str = option("projection", "how D reads the label: projection <v_y, phi(x)> (Miyato & Koyama "
                                "2018) or one-hot planes concatenated with the image", choices=DISCRIMINATORS)
    conditional_bn: bool = option(True, "class-conditional batch norm in G in place of batch norm "
                                        "(de Vries et al. 2017)")
    steps: int = option(10000, "generator iterations")
    batch_size: int = option(64, "images per batch")
    z_dim: int = option(100, "latent dimension")
    embed_dim: int = option(32, "size of the generator's label embedding, concatenated to z")
    n_classes: int = option(10, "number of classes")
    channels: int = option(1, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(64, "generator base width (channels of its last hidden layer)")
    d_width: int = option(64, "discriminator base width (channels of its first layer)")
    lr_g: float = option(2e-4, "generator learning rate")
    lr_d: float = option(2e-4, "discriminator learning rate")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    n_samples: int = option(8, "noise codes in each kept grid: one row per class, the same codes in every row")

    def __post_init__(self) -> None:
        check_choice("discriminator", self.discriminator, DISCRIMINATORS)
        if not isinstance(self.conditional_bn, bool):
            raise ValueError(f"conditional_bn must be True or False, got {self.conditional_bn!r}")
        check_run_config(self, extra_ints=("z_dim", "embed_dim", "n_classes"), rates=("lr_g", "lr_d"))
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2 (a conditional GAN needs classes), got {self.n_classes}")


def cgan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> CGANConfig:
    """A conditional GAN on MNIST-5k with DCGAN's optimiser, at the size of ``tier``
    (:func:`gancourse.deep.train_gan.preset_tier`): smoke is a CPU test of seconds, lecture fits a 2-core CPU
    in minutes, full is DCGAN's size for a GPU."""
    base = dict(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999)
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=200, batch_size=32, g_width=16, d_width=16, z_dim=32, embed_dim=16, sample_every=50,
                   log_every=10),
        lecture=dict(steps=2500, batch_size=64, g_width=32, d_width=32, z_dim=64, embed_dim=32, sample_every=500),
        full=dict(steps=10000, batch_size=128, g_width=64, d_width=64, z_dim=100, embed_dim=64, sample_every=1000),
    ))
    return CGANConfig(**{**base, **overrides})


class CGANTrainer(TrainingLoop):
    """Trains ``G(z, y)`` and ``D(x, y)`` on images (N, C, S, S) in [-1, 1] with classes ``labels`` (N,).

    ``history`` records ``d_loss``, ``g_loss`` and D's mean probability on real and generated pairs
    (``d_real``, ``d_fake``); ``snapshots`` holds ``(step, images)`` with one row of ``n_samples`` images per
    class, from the same fixed noise in every row.
    """

    KIND = "cgan"
    STATE = ("G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z")

    def __init__(self, config: CGANConfig, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device | str = "cpu"):
        self._set_up(config, CGANConfig, device)
        c = config
        check_image_shape("images", images, (c.channels, c.image_size, c.image_size))
        check_labels(labels.cpu() if isinstance(labels, torch.Tensor) else labels, c.n_classes, len(images))
        self.images = self._device_images("images", images)
        self.labels = labels.to(self.device, torch.int64)
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = ConditionalGenerator(c.z_dim, c.n_classes, c.embed_dim, c.channels, c.g_width, c.image_size,
                                          c.conditional_bn).to(self.device)
            self.D = make_discriminator(c.discriminator, c.channels, c.n_classes, c.d_width,
                                        c.image_size).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self._G = maybe_compile(self.G, self.compiled)
        self._D = maybe_compile(self.D, self.compiled)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("d_loss", "g_loss", "d_real", "d_fake"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ sampling
    def fixed_labels(self) -> torch.Tensor:
        """The classes of a snapshot grid: ``0`` repeated ``n_samples`` times, then ``1``, ... (K * n_samples,)."""
        return torch.arange(self.config.n_classes).repeat_interleave(self.config.n_samples)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(z, y)`` in eval mode (batch norm uses running statistics), float32 on the CPU: (n, C, S, S)."""
        check_labels(labels.cpu() if isinstance(labels, torch.Tensor) else labels, self.config.n_classes, len(z))
        with eval_mode(self.G):
            outs = [self.G(z[i: i + batch_size].to(self.device), labels[i: i + batch_size].to(self.device)).float()
                    .cpu() for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, labels: torch.Tensor, seed: int = 1234, batch_size: int = 500) -> torch.Tensor:
        """One image of each class in ``labels`` (n,), from noise drawn with its own ``seed`` (the run's
        generator is not touched): (n, C, S, S)."""
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(labels, dtype=torch.int64)
        z = torch.randn(len(labels), self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, labels, batch_size)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One D update and one G update on fresh real pairs and generated pairs; losses go to ``history``."""
        c = self.config
        idx = self.batcher.next()
        real, y_real = self.images[idx], self.labels[idx]  # (B, C, S, S), (B,)
        z = torch.randn(c.batch_size, c.z_dim, generator=self.generator, device=self.device)
        y_fake = torch.randint(c.n_classes, (c.batch_size,), generator=self.generator, device=self.device)
        with autocast(self.device, self.amp):
            fake = self._G(z, y_fake)
            l_real, l_fake = self._D(real, y_real).float(), self._D(fake.detach(), y_fake).float()
        loss_d = d_loss_bce(l_real, l_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with autocast(self.device, self.amp):
            l_gen = self._D(fake, y_fake).float()
        loss_g = g_loss_nonsaturating(l_gen)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        self.history.append(self.step, loss_d, loss_g, torch.sigmoid(l_real).mean(), torch.sigmoid(l_fake).mean())

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images, "labels": self.labels}

    def progress_label(self) -> str:
        return f"cgan ({self.config.discriminator}) step"

    def snapshot(self) -> None:
        """Record ``(step, G(fixed_z, k))``: one row of ``n_samples`` images per class ``k``."""
        z = self.fixed_z.repeat(self.config.n_classes, 1)  # (K * n, z_dim): the same codes in every row
        self.snapshots.append((self.step, self.generate(z, self.fixed_labels())))
