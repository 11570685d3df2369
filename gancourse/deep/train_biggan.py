"""Training loop for BigGAN in miniature on labelled images (Brock, Donahue & Simonyan 2019).

One step: ``d_steps`` discriminator updates, each on a fresh real minibatch ``(x, y)`` and generated pairs
``(G(z, y'), y')`` with classes ``y'`` uniform, with the hinge loss (:func:`gancourse.deep.losses.d_loss_hinge`)

    L_D = E max(0, 1 - D(x, y)) + E max(0, 1 + D(G(z, y'), y')),

then one generator update on fresh pairs with ``L_G = -E D(G(z, y'), y') + sum_W R_beta(W)``
(:func:`gancourse.deep.losses.g_loss_hinge` and BigGAN's orthogonal regulariser on G's weights,
:func:`gancourse.deep.biggan.orthogonal_regularization`; ``ortho_weight = 0`` leaves it out). Adam with
``beta1 = 0`` for both, as BigGAN. With ``ema_decay > 0`` an exponential moving average of G's weights is kept
(a plain copy until ``ema_start``, as BigGAN starts its average late) and is the generator that samples.

Networks: :class:`~gancourse.deep.biggan.BigGANGenerator` (shared embedding, hierarchical latents) and
:class:`~gancourse.deep.biggan.BigGANDiscriminator` (projection or concatenation), with spectral norm on both
unless ``spectral_norm`` is off. All randomness of a run comes from one ``torch.Generator``; a checkpoint holds
every network (the average too), optimizer, generator and batcher state, so k steps, save, load and k more steps
equal 2k steps bit for bit on the CPU.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.biggan import (
    ORTHO_BETA,
    BigGANDiscriminator,
    BigGANGenerator,
    apply_spectral_norm,
    n_blocks_for,
    orthogonal_regularization,
    truncated_normal,
)
from gancourse.deep.conditional import DISCRIMINATORS, check_labels
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_hinge, g_loss_hinge
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
    update_ema,
)
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["BigGANConfig", "BigGANTrainer", "biggan_preset"]


@dataclass(frozen=True)
class BigGANConfig(CudaRunOptions):
    """Everything that defines a BigGAN run. Defaults: BigGAN's choices (projection, spectral norm in G and D,
    orthogonal regularisation 1e-4, hinge loss, Adam beta1 = 0, two D steps per G step) at MNIST size."""

    discriminator: str = option("projection", "how D reads the label: projection <v_y, h> (Miyato & Koyama 2018), "
                                "as BigGAN, or one-hot planes concatenated with the image", choices=DISCRIMINATORS)
    spectral_norm: bool = option(True, "spectral normalisation of every weight of G and D (Miyato et al. 2018)")
    ortho_weight: float = option(ORTHO_BETA, "beta of BigGAN's orthogonal regularisation of G's weights, "
                                             "beta ||W^T W (.) (1 - I)||_F^2 (0 = off)")
    ema_decay: float = option(0.999, "decay of the moving average of G's weights that samples (0 = sample from G)")
    ema_start: int = option(1000, "steps before the average starts (until then it copies G)")
    d_steps: int = option(2, "discriminator updates per generator update")
    steps: int = option(10000, "generator iterations")
    batch_size: int = option(256, "images per batch")
    z_dim: int = option(128, "latent dimension; split into equal chunks, one per generator block plus one")
    shared_dim: int = option(128, "size of the shared class embedding")
    n_classes: int = option(10, "number of classes")
    channels: int = option(1, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(64, "generator base width (channels of its last block)")
    d_width: int = option(64, "discriminator base width (channels of its first block)")
    lr_g: float = option(1e-4, "generator learning rate")
    lr_d: float = option(4e-4, "discriminator learning rate")
    beta1: float = option(0.0, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    n_samples: int = option(8, "noise codes in each kept grid: one row per class, the same codes in every row")

    def __post_init__(self) -> None:
        check_choice("discriminator", self.discriminator, DISCRIMINATORS)
        if not isinstance(self.spectral_norm, bool):
            raise ValueError(f"spectral_norm must be True or False, got {self.spectral_norm!r}")
        check_run_config(self, extra_ints=("z_dim", "shared_dim", "n_classes", "d_steps"), rates=("lr_g", "lr_d"))
        check_positive("ortho_weight", self.ortho_weight, allow_zero=True)
        if check_positive("ema_decay", self.ema_decay, allow_zero=True) >= 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}")
        check_positive_int("ema_start", self.ema_start, minimum=0)
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2 (a conditional GAN needs classes), got {self.n_classes}")
        k = n_blocks_for(self.image_size)
        if self.z_dim % (k + 1):
            raise ValueError(f"z_dim must be a multiple of {k + 1} (one chunk for the input layer and one per "
                             f"generator block at image_size {self.image_size}), got {self.z_dim}")


def biggan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> BigGANConfig:
    """BigGAN in miniature on MNIST-5k at the size of ``tier``: smoke is a CPU test of seconds, lecture fits a
    2-core CPU in minutes (one D step per G step, batch 32, width 16, and samples from G itself: over 2,000 steps
    G still moves fast, and an average with decay 0.999 from step 1,000 lagged behind it, label accuracy 0.57
    against G's 0.88), full is a GPU run with BigGAN's two D steps, a large batch and the moving average."""
    base = pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=120, batch_size=16, g_width=8, d_width=8, z_dim=32, shared_dim=16, d_steps=1,
                   lr_g=2e-4, lr_d=2e-4, ema_start=60, sample_every=40, log_every=10),
        lecture=dict(steps=2000, batch_size=32, g_width=16, d_width=16, z_dim=64, shared_dim=32, d_steps=1,
                     lr_g=2e-4, lr_d=2e-4, ema_decay=0.0, sample_every=500),
        full=dict(steps=10000, batch_size=256, g_width=64, d_width=64, z_dim=128, shared_dim=128, d_steps=2,
                  lr_g=1e-4, lr_d=4e-4, ema_start=1000, sample_every=1000),
    )
    return BigGANConfig(**{**base, **overrides})


class BigGANTrainer(TrainingLoop):
    """Trains BigGAN's ``G(z, y)`` and ``D(x, y)`` on images (N, C, S, S) in [-1, 1] with classes (N,).

    ``history`` records ``d_loss`` (the last D update's), ``g_loss`` (the hinge term), ``ortho`` (the
    regulariser), and D's mean score on real and generated pairs (``d_real``, ``d_fake``); ``snapshots`` holds
    ``(step, images)`` with one row of ``n_samples`` images per class from the same fixed noise.
    """

    KIND = "biggan"
    STATE = ("G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z")

    def __init__(self, config: BigGANConfig, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device | str = "cpu"):
        self._set_up(config, BigGANConfig, device)
        c = config
        check_image_shape("images", images, (c.channels, c.image_size, c.image_size))
        check_labels(labels.cpu() if isinstance(labels, torch.Tensor) else labels, c.n_classes, len(images))
        self.images = self._device_images("images", images)
        self.labels = labels.to(self.device, torch.int64)
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = BigGANGenerator(c.z_dim, c.n_classes, c.shared_dim, c.channels, c.g_width, c.image_size)
            self.D = BigGANDiscriminator(c.channels, c.n_classes, c.d_width, c.image_size, c.discriminator)
            if c.spectral_norm:
                apply_spectral_norm(self.G, skip=(self.G.shared,))  # BigGAN leaves the shared embedding alone
                apply_spectral_norm(self.D)
            self.G, self.D = self.G.to(self.device), self.D.to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)
        self._G = maybe_compile(self.G, self.compiled)
        self._D = maybe_compile(self.D, self.compiled)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("d_loss", "g_loss", "ortho", "d_real", "d_fake"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ sampling
    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that samples: the moving average with ``ema_decay > 0``, else G itself."""
        return self.G_ema if self.config.ema_decay > 0 else self.G

    def fixed_labels(self) -> torch.Tensor:
        """The classes of a snapshot grid: ``0`` repeated ``n_samples`` times, then ``1``, ... (K * n_samples,)."""
        return torch.arange(self.config.n_classes).repeat_interleave(self.config.n_samples)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 500,
                 net: torch.nn.Module | None = None) -> torch.Tensor:
        """``G(z, y)`` of the sampler (or ``net``) in eval mode, float32 on the CPU: (n, C, S, S)."""
        check_labels(labels.cpu() if isinstance(labels, torch.Tensor) else labels, self.config.n_classes, len(z))
        net = self.sampler if net is None else net
        with eval_mode(net):
            outs = [net(z[i: i + batch_size].to(self.device), labels[i: i + batch_size].to(self.device)).float()
                    .cpu() for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, labels: torch.Tensor, seed: int = 1234, truncation: float | None = None,
               batch_size: int = 500) -> torch.Tensor:
        """One image of each class in ``labels`` (n,) from noise drawn with its own ``seed`` (the run's generator
        is not touched), truncated at ``truncation`` (None: plain N(0, I)): (n, C, S, S)."""
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(labels, dtype=torch.int64)
        z = truncated_normal((len(labels), self.config.z_dim), truncation, torch.Generator().manual_seed(seed))
        return self.generate(z, labels, batch_size)

    # ------------------------------------------------------------------ one step
    def _fake_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        z = torch.randn(c.batch_size, c.z_dim, generator=self.generator, device=self.device)
        y = torch.randint(c.n_classes, (c.batch_size,), generator=self.generator, device=self.device)
        return z, y

    def train_step(self) -> None:
        """``d_steps`` D updates, one G update, then the moving average; losses go to ``history``."""
        c = self.config
        for _ in range(c.d_steps):
            idx = self.batcher.next()
            real, y_real = self.images[idx], self.labels[idx]  # (B, C, S, S), (B,)
            z, y_fake = self._fake_pairs()
            with autocast(self.device, self.amp):
                with torch.no_grad():
                    fake = self._G(z, y_fake)
                s_real, s_fake = self._D(real, y_real).float(), self._D(fake, y_fake).float()
            loss_d = d_loss_hinge(s_real, s_fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        z, y_fake = self._fake_pairs()
        with autocast(self.device, self.amp):
            s_gen = self._D(self._G(z, y_fake), y_fake).float()
        loss_g = g_loss_hinge(s_gen)
        ortho = orthogonal_regularization(self.G, c.ortho_weight) if c.ortho_weight > 0 else torch.zeros(())
        self.opt_g.zero_grad(set_to_none=True)
        (loss_g + ortho).backward()
        self.opt_g.step()
        self.step += 1
        if c.ema_decay > 0:
            update_ema(self.G_ema, self.G, c.ema_decay if self.step > c.ema_start else 0.0)
        self.history.append(self.step, loss_d, loss_g, ortho, s_real.mean(), s_fake.mean())

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images, "labels": self.labels}

    def progress_label(self) -> str:
        return f"biggan ({self.config.discriminator}) step"

    def snapshot(self) -> None:
        """Record ``(step, sampler(fixed_z, k))``: one row of ``n_samples`` images per class ``k``."""
        z = self.fixed_z.repeat(self.config.n_classes, 1)  # (K * n, z_dim): the same codes in every row
        self.snapshots.append((self.step, self.generate(z, self.fixed_labels())))
