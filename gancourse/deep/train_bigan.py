"""Training loop for BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): a GAN with an encoder.

Networks (:mod:`gancourse.deep.bigan`): an encoder ``E: x -> z`` (deterministic, as in BiGAN; by default its
code is standardised over the batch), a DCGAN generator ``G: z -> x`` and a joint discriminator ``D(x, z)`` (by
default with batch norm in its image path and dropout 0.2, whose masks come from the run's generator). One
*step*, on a real minibatch ``x`` and fresh noise ``z ~ N(0, I)``:

- ``D`` learns to tell the encoder's pairs from the generator's pairs (BCE on logits,
  :func:`gancourse.deep.losses.d_loss_bce`):
  ``L_D = -E log sigmoid(D(x, E(x))) - E log(1 - sigmoid(D(G(z), z)))``;
- ``E`` and ``G`` (one Adam over both) then minimise the same loss with the labels swapped, the
  non-saturating ("inverted labels") form of the game that BiGAN trains with:
  ``L_EG = -E log sigmoid(D(G(z), z)) - E log(1 - sigmoid(D(x, E(x)))) = d_loss_bce(l_fake, l_real)``.

The saddle point of the minimax game ``min_{G,E} max_D V`` with ``V = E log D(x, E(x)) + E log(1 - D(G(z), z))``
is where the two joint distributions agree, and there ``E = G^{-1}`` (BiGAN, theorems 1 and 2). No loss compares
``G(E(x))`` with ``x``: the trainer only *records* the reconstruction error ``|G(E(x)) - x|`` (and
``|E(G(z)) - z|``) of the batch every ``log_every`` steps in ``inversion``, in eval mode and without gradients,
to watch the inversion appear.

Adam(2e-4, betas (0.5, 0.999)) as in DCGAN and BiGAN. Randomness, checkpoints and exact resume as in
:mod:`gancourse.deep.train_gan`: one ``torch.Generator`` seeded by the config draws the minibatches and the noise;
the weights are initialised from the seed alone; k steps + save + load + k steps equals 2k steps bit for bit on
the CPU.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from gancourse.deep.bigan import IMAGE_SIZE, Encoder, JointDiscriminator
from gancourse.deep.dcgan import DCGANGenerator
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_bce
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
from gancourse.errors import check_positive
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["BiGANConfig", "BiGANTrainer", "bigan_preset", "bigan_d_loss", "bigan_eg_loss"]


@dataclass(frozen=True)
class BiGANConfig(CudaRunOptions):
    """Everything that defines a BiGAN run. Defaults: BiGAN's optimiser, a 32-dimensional standardised code, and a
    discriminator with batch norm in its image path (as DCGAN's) and dropout 0.2 (as ALI's)."""

    steps: int = option(10000, "iterations (one D update, then one joint E and G update)")
    batch_size: int = option(64, "images per batch")
    z_dim: int = option(32, "latent dimension: the length of the code E(x) that the linear probe reads")
    channels: int = option(1, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "image side in pixels (the networks are written for 32)")
    g_width: int = option(32, "generator base width (channels of its last hidden layer)")
    e_width: int = option(32, "encoder base width (channels of its first layer)")
    e_standardize: bool = option(True, "standardise each code dimension of E(x) over the batch (batch norm "
                                        "without gain or bias), so that its mean and variance match the prior's")
    d_width: int = option(32, "base width of the discriminator's image path")
    d_hidden: int = option(256, "width of the discriminator's code path and joint layers")
    d_dropout: float = option(0.2, "dropout after each of the discriminator's activations (ALI's 0.2)")
    d_batch_norm: bool = option(True, "batch norm in the discriminator's image path (as in DCGAN's)")
    lr_eg: float = option(2e-4, "learning rate of the encoder and the generator (one Adam)")
    lr_d: float = option(2e-4, "discriminator learning rate")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    weight_decay: float = option(0.0, "L2 weight decay of all three networks (BiGAN used 2.5e-5)")
    # RunOptions' field, told more precisely
    sample_every: int = option(500, "keep a grid of samples and reconstructions every N steps")
    n_samples: int = option(32, "samples (and reconstructed training digits) in each kept grid")

    def __post_init__(self) -> None:
        check_run_config(self, extra_ints=("z_dim", "e_width", "d_hidden"), rates=("lr_eg", "lr_d"))
        if self.image_size != IMAGE_SIZE:
            raise ValueError(f"image_size must be {IMAGE_SIZE} (the encoder and discriminator are written for "
                             f"{IMAGE_SIZE}x{IMAGE_SIZE} images), got {self.image_size!r}")
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        if check_positive("d_dropout", self.d_dropout, allow_zero=True) >= 1:
            raise ValueError(f"d_dropout must lie in [0, 1), got {self.d_dropout!r}")


def bigan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> BiGANConfig:
    """BiGAN on MNIST-5k with a 32-dimensional code, at the size of ``tier``
    (:func:`gancourse.deep.train_gan.preset_tier`): smoke shrinks widths and steps for a CPU test, lecture fits a
    2-core CPU in minutes, full trains longer and wider on a GPU."""
    base = pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=200, batch_size=32, g_width=16, e_width=16, d_width=16, d_hidden=64, sample_every=50,
                   log_every=10),
        lecture=dict(steps=2000, batch_size=64, g_width=32, e_width=32, d_width=32, d_hidden=256, sample_every=500),
        full=dict(steps=12000, batch_size=128, g_width=64, e_width=64, d_width=64, d_hidden=512, sample_every=1500),
    )
    return BiGANConfig(**{**base, **overrides})


def bigan_d_loss(real_pair_logits: torch.Tensor, fake_pair_logits: torch.Tensor) -> torch.Tensor:
    """``L_D = -E log sigmoid(D(x, E(x))) - E log(1 - sigmoid(D(G(z), z)))``: encoder pairs are "real"."""
    return d_loss_bce(real_pair_logits, fake_pair_logits)


def bigan_eg_loss(real_pair_logits: torch.Tensor, fake_pair_logits: torch.Tensor) -> torch.Tensor:
    """``L_EG = -E log sigmoid(D(G(z), z)) - E log(1 - sigmoid(D(x, E(x))))``: ``L_D`` with the labels swapped,
    so ``E`` and ``G`` are each pushed to make their pairs look like the other's (non-saturating for both)."""
    return d_loss_bce(fake_pair_logits, real_pair_logits)


def _set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class BiGANTrainer(TrainingLoop):
    """Trains ``E``, ``G`` and ``D`` on images (N, C, 32, 32) in [-1, 1]; ``history`` and ``snapshots`` record it."""

    KIND = "bigan"
    STATE = ("E", "G", "D", "opt_eg", "opt_d", "generator", "batcher", "history", "inversion", "fixed_z",
             "fixed_x")
    POSTFIX = ("d_loss", "eg_loss", "d_real", "d_fake")

    def __init__(self, config: BiGANConfig, images: torch.Tensor, device: torch.device | str = "cpu"):
        self._set_up(config, BiGANConfig, device)
        c = config
        self.images = self._device_images("images", images, (c.channels, c.image_size, c.image_size))
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.E = Encoder(c.z_dim, c.channels, c.e_width, c.e_standardize).to(self.device)
            self.G = DCGANGenerator(c.z_dim, c.channels, c.g_width, c.image_size).to(self.device)
            self.D = JointDiscriminator(c.z_dim, c.channels, c.d_width, c.d_hidden, c.d_dropout,
                                        c.d_batch_norm).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
            self.fixed_x = self.images[torch.randperm(len(self.images))[: c.n_samples].to(self.device)]
        self._E, self._G, self._D = (maybe_compile(m, self.compiled) for m in (self.E, self.G, self.D))
        betas = (c.beta1, c.beta2)
        self.opt_eg = torch.optim.Adam(itertools.chain(self.E.parameters(), self.G.parameters()), lr=c.lr_eg,
                                       betas=betas, weight_decay=c.weight_decay)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=betas, weight_decay=c.weight_decay)
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        self.D.set_generator(self.generator)
        self.history = LossHistory(("d_loss", "eg_loss", "d_real", "d_fake"))
        self.inversion = LossHistory(("recon_l1", "latent_l1"))  # every log_every steps: see _watch_inversion
        self.snapshots: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ the maps
    def noise(self, n: int) -> torch.Tensor:
        """``z ~ N(0, I)``, shape (n, z_dim), from the run's generator."""
        return torch.randn(n, self.config.z_dim, generator=self.generator, device=self.device)

    @torch.no_grad()
    def _apply(self, net: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        with eval_mode(net):
            return torch.cat([net(x[i: i + batch_size].to(self.device, torch.float32)).float().cpu()
                              for i in range(0, len(x), batch_size)])

    def encode(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``E(x)`` in eval mode: images (n, C, 32, 32) -> codes (n, z_dim), float32 on the CPU."""
        return self._apply(self.E, x, batch_size)

    def generate(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(z)`` in eval mode: codes (n, z_dim) -> images (n, C, 32, 32), float32 on the CPU."""
        return self._apply(self.G, z, batch_size)

    def reconstruct(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(E(x))``: images (n, C, 32, 32) -> images (n, C, 32, 32), float32 on the CPU."""
        return self.generate(self.encode(x, batch_size), batch_size)

    def sample(self, n: int, seed: int = 1234, batch_size: int = 500) -> torch.Tensor:
        """``n`` images ``G(z)`` from noise drawn with its own ``seed`` (the run's generator is not touched)."""
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, batch_size)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One D update on (x, E(x)) against (G(z), z), then one joint E and G update; losses go to ``history``."""
        x = self.images[self.batcher.next()]  # (B, C, S, S)
        z = self.noise(self.config.batch_size)  # (B, z_dim)
        with autocast(self.device, self.amp):
            ez, gz = self._E(x), self._G(z)  # (B, z_dim), (B, C, S, S)
            l_real, l_fake = self._D(x, ez.detach()).float(), self._D(gz.detach(), z).float()
        loss_d = bigan_d_loss(l_real, l_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        _set_requires_grad(self.D, False)  # E and G's update needs no gradient for D's weights
        with autocast(self.device, self.amp):
            loss_eg = bigan_eg_loss(self._D(x, ez).float(), self._D(gz, z).float())
        self.opt_eg.zero_grad(set_to_none=True)
        loss_eg.backward()
        self.opt_eg.step()
        _set_requires_grad(self.D, True)

        self.step += 1
        self.history.append(self.step, loss_d, loss_eg, torch.sigmoid(l_real).mean(), torch.sigmoid(l_fake).mean())
        if self.step % self.config.log_every == 0:
            self._watch_inversion(x, z, gz.detach())

    @torch.no_grad()
    def _watch_inversion(self, x: torch.Tensor, z: torch.Tensor, gz: torch.Tensor) -> None:
        """Record ``|G(E(x)) - x|`` and ``|E(G(z)) - z|`` (means) of this step's batch in ``inversion``, in eval
        mode and without gradients: watched, not trained (no random numbers, no effect on the run)."""
        with eval_mode(self.E, self.G), autocast(self.device, self.amp):
            recon_l1 = (self._G(self._E(x)).float() - x).abs().mean()  # (B, C, S, S) -> ()
            latent_l1 = (self._E(gz).float() - z).abs().mean()  # (B, z_dim) -> ()
        self.inversion.append(self.step, recon_l1, latent_l1)
        self.inversion.flush()

    def networks(self) -> list[torch.nn.Module]:
        return [self.E, self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}

    def snapshot(self) -> None:
        """Record ``(step, G(fixed_z), G(E(fixed_x)))`` in ``snapshots``."""
        self.snapshots.append((self.step, self.generate(self.fixed_z), self.reconstruct(self.fixed_x)))
