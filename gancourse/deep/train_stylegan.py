"""Training loop of the small StyleGAN (Karras et al. 2019; StyleGAN2, Karras et al. 2020) on MNIST-5k.

One step, on a real minibatch ``x`` and latents ``z ~ N(0, I)``:

- styles: ``ws = broadcast(f(z))``; with probability ``mixing_prob`` a second ``z2`` and a crossover ``k``
  drawn uniformly in ``1 .. L-1`` give ``ws[:, k:] = f(z2)`` (style mixing regularisation, one ``k`` per
  minibatch as in the reference code); ``w_avg`` follows the batch mean of ``f(z)`` with ``w_avg_beta``;
- D: the non-saturating logistic loss ``E softplus(-D(x)) + E softplus(D(G(z)))``
  (:func:`gancourse.deep.losses.d_loss_bce`) plus, every ``r1_every`` steps, R1
  ``r1_every * gamma/2 E ||grad_x D(x)||^2`` on the real batch (lazy regularisation, StyleGAN2 section 4;
  ``r1_every = 1`` is StyleGAN's every-step R1) (:func:`gancourse.deep.losses.zero_centered_penalty`);
- G: ``E softplus(-D(G(z)))`` (:func:`gancourse.deep.losses.g_loss_nonsaturating`) on fresh latents;
- ``G_ema``: the exponential moving average of G's weights (and a copy of its buffers, ``w_avg`` among them),
  with a half-life of ``ema_images`` images (StyleGAN2: 10,000); it is the generator that is evaluated.

Adam with StyleGAN's betas (0, 0.99) and the equalized learning rate of :mod:`gancourse.deep.equalized`;
the mapping network's layers learn ``mapping_lr_mul`` (0.01) times slower. All randomness (minibatches,
latents, mixing, per-layer noise) comes from one seeded ``torch.Generator``, so that k steps, save, load and k
more steps equal 2k steps bit for bit on the CPU.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_bce, g_loss_nonsaturating, zero_centered_penalty
from gancourse.deep.runtime import Batcher, LossHistory, RunOptions, check_run_config, eval_mode, seeded
from gancourse.deep.stylegan import SYNTHESIS, StyleDiscriminator, StyleGenerator, truncate
from gancourse.errors import check_choice, check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["StyleGANConfig", "StyleGANTrainer", "stylegan_preset"]


@dataclass(frozen=True)
class StyleGANConfig(RunOptions):
    """Everything that defines a StyleGAN run. Defaults: StyleGAN2's modulated convolutions, style mixing with
    probability 0.9, R1 every 4 steps, Adam(2e-3, betas (0, 0.99))."""

    synthesis: str = option("modulated", "how styles act: AdaIN after instance norm (StyleGAN) or weight "
                                         "modulation/demodulation (StyleGAN2)", choices=SYNTHESIS)
    steps: int = option(10000, "generator iterations")
    batch_size: int = option(32, "images per batch")
    z_dim: int = option(64, "latent dimension of z")
    w_dim: int = option(64, "dimension of the intermediate latent w")
    mapping_layers: int = option(4, "layers of the mapping network z -> w (StyleGAN: 8)")
    mapping_lr_mul: float = option(0.01, "learning-rate multiplier of the mapping network")
    channels: int = option(1, "image channels")
    image_size: int = option(32, "image side in pixels (32)")
    g_width: int = option(16, "generator width (channels at 32x32; 2x at 16, 4x at 8 and 4)")
    d_width: int = option(16, "discriminator width (channels at 32x32)")
    lr: float = option(2e-3, "learning rate of G and D")
    beta1: float = option(0.0, "Adam beta1")
    beta2: float = option(0.99, "Adam beta2")
    r1_gamma: float = option(0.1, "R1 weight gamma (gamma/2 E ||grad D(x)||^2 on real images)")
    r1_every: int = option(4, "apply R1 every N steps, scaled by N (lazy regularisation); 1: every step")
    mixing_prob: float = option(0.9, "probability of style mixing in a generator batch")
    w_avg_beta: float = option(0.995, "decay of the running mean w_avg (the truncation centre)")
    ema_images: int = option(10000, "half-life of the generator's weight average G_ema, in images (0: no average)")
    n_samples: int = option(64, "fixed latents in each kept grid")

    def __post_init__(self) -> None:
        check_choice("synthesis", self.synthesis, SYNTHESIS)
        check_run_config(self, extra_ints=("z_dim", "w_dim", "mapping_layers", "r1_every"), rates=("lr",))
        check_positive("mapping_lr_mul", self.mapping_lr_mul)
        check_positive("r1_gamma", self.r1_gamma, allow_zero=True)
        check_positive_int("ema_images", self.ema_images, minimum=0)
        for name in ("mixing_prob", "w_avg_beta"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {v!r}")
        if self.image_size != 32:
            raise ValueError(f"image_size must be 32 (synthesis 4 -> 8 -> 16 -> 32), got {self.image_size}")
        if self.batch_size % min(4, self.batch_size):
            raise ValueError(f"batch_size ({self.batch_size}) must be divisible by the minibatch standard "
                             f"deviation's group (4)")


def stylegan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> StyleGANConfig:
    """The small StyleGAN on MNIST-5k at the size of ``tier`` (:func:`gancourse.deep.train_gan.preset_tier`):
    smoke is a CPU test of seconds, lecture fits a 2-core CPU in minutes, full is for a GPU. The lecture tier's
    Adam(5e-3) and R1 gamma 1 replace StyleGAN2's 2e-3 and 0.1, which suit millions of images: over its 80,000
    they gave FD-LeNet 208-427 on seeds 0-4, these 76-142 (docs/RESULTS.md)."""
    base = pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=40, batch_size=16, g_width=8, d_width=8, z_dim=32, w_dim=32, mapping_layers=2,
                   sample_every=20, log_every=10, n_samples=16, ema_images=500),
        lecture=dict(steps=2500, batch_size=32, g_width=16, d_width=16, z_dim=64, w_dim=64, mapping_layers=4,
                     lr=5e-3, r1_gamma=1.0, sample_every=500, ema_images=5000),
        full=dict(steps=20000, batch_size=64, g_width=32, d_width=32, z_dim=128, w_dim=128, mapping_layers=8,
                  sample_every=2000, ema_images=10000),
    )
    return StyleGANConfig(**{**base, **overrides})


class StyleGANTrainer(TrainingLoop):
    """Trains a :class:`StyleGenerator` and a :class:`StyleDiscriminator` on images (N, C, 32, 32) in [-1, 1].

    ``history`` records ``d_loss`` (without R1), ``g_loss``, the last R1 value ``r1`` and D's mean
    probability on real and generated images (``d_real``, ``d_fake``); ``snapshots`` holds ``(step, images)``
    of ``G_ema`` on ``fixed_z`` with constant noise.
    """

    KIND = "stylegan"
    STATE = ("G", "D", "G_ema", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z", "last_r1")

    def __init__(self, config: StyleGANConfig, images: torch.Tensor, device: torch.device | str = "cpu"):
        self._set_up(config, StyleGANConfig, device)
        c = config
        self.images = self._device_images("images", images, (c.channels, c.image_size, c.image_size))
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.G = StyleGenerator(c.z_dim, c.w_dim, c.mapping_layers, c.g_width, c.channels, c.image_size,
                                    c.synthesis, c.mapping_lr_mul).to(self.device)
            self.D = StyleDiscriminator(c.channels, c.d_width, c.image_size).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("d_loss", "g_loss", "r1", "d_real", "d_fake"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0
        self.last_r1 = torch.zeros((), device=self.device)

    # ------------------------------------------------------------------ styles
    def _styles(self, n: int) -> torch.Tensor:
        """Styles (n, L, w_dim) of fresh latents, mixed with a second latent with probability ``mixing_prob``;
        ``w_avg`` follows the first latents' ``w``."""
        c, G = self.config, self.G
        z = torch.randn(n, c.z_dim, generator=self.generator, device=self.device)
        w = G.mapping(z)  # (n, w_dim)
        G.update_w_avg(w, c.w_avg_beta)
        ws = G.broadcast(w)
        u = torch.rand((), generator=self.generator, device=self.device)
        k = torch.randint(1, G.num_ws, (), generator=self.generator, device=self.device)
        z2 = torch.randn(n, c.z_dim, generator=self.generator, device=self.device)
        if float(u) < c.mixing_prob:  # the draws above happen either way, so the stream does not depend on u
            first = torch.arange(G.num_ws, device=self.device) < k  # (L,)
            ws = torch.where(first[None, :, None], ws, G.broadcast(G.mapping(z2)))
        return ws

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One D update (with R1 every ``r1_every`` steps) and one G update; G_ema follows G."""
        c = self.config
        real = self.images[self.batcher.next()]  # (B, C, 32, 32)
        with torch.no_grad():
            fake = self.G.synthesis(self._styles(c.batch_size), generator=self.generator)
        l_real, l_fake = self.D(real), self.D(fake)
        loss_d = d_loss_bce(l_real, l_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if c.r1_gamma > 0 and self.step % c.r1_every == 0:
            r1 = zero_centered_penalty(self.D, real, c.r1_gamma)
            (r1 * c.r1_every).backward()
            self.last_r1 = r1.detach()
        self.opt_d.step()

        l_gen = self.D(self.G.synthesis(self._styles(c.batch_size), generator=self.generator))
        loss_g = g_loss_nonsaturating(l_gen)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self._update_ema()
        self.step += 1
        self.history.append(self.step, loss_d, loss_g, self.last_r1, torch.sigmoid(l_real).mean(),
                            torch.sigmoid(l_fake).mean())

    @torch.no_grad()
    def _update_ema(self) -> None:
        """``G_ema <- beta G_ema + (1 - beta) G`` with ``beta = 0.5 ** (batch / ema_images)``; buffers copied."""
        c = self.config
        beta = 0.5 ** (c.batch_size / c.ema_images) if c.ema_images else 0.0
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, z: torch.Tensor, psi: float = 1.0, noise_seed: int | None = 0, batch_size: int = 500,
                 ema: bool = True) -> torch.Tensor:
        """``G_ema(z)`` (or G's) truncated by ``psi``, clamped to [-1, 1], float32 on the CPU: (n, C, 32, 32).
        Noise: drawn from a generator seeded with ``noise_seed``, or the layers' constant maps if None."""
        G = self.G_ema if ema else self.G
        gen = None if noise_seed is None else torch.Generator(self.device).manual_seed(noise_seed)
        mode = "const" if noise_seed is None else "random"
        with eval_mode(G):
            outs = [G(z[i: i + batch_size].to(self.device), psi, mode, gen).clamp(-1, 1).float().cpu()
                    for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def sample(self, n: int, seed: int = 1234, psi: float = 1.0) -> torch.Tensor:
        """``n`` images from latents drawn with their own ``seed`` (the run's generator is not touched)."""
        z = torch.randn(check_positive_int("n", n), self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, psi, noise_seed=seed + 1)

    def truncated_ws(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """G_ema's styles (N, L, w_dim) of ``z``, truncated towards its ``w_avg`` by ``psi``."""
        with torch.no_grad():
            return self.G_ema.broadcast(truncate(self.G_ema.mapping(z.to(self.device)), self.G_ema.w_avg, psi))

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}

    def progress_label(self) -> str:
        return f"stylegan ({self.config.synthesis}) step"

    def snapshot(self) -> None:
        """Record ``(step, G_ema(fixed_z))`` with constant noise."""
        self.snapshots.append((self.step, self.generate(self.fixed_z, noise_seed=None)))
