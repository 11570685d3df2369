"""Training loop for CycleGAN (Zhu et al. 2017) between two unpaired image domains A and B.

Two generators ``G_AB: A -> B`` and ``G_BA: B -> A`` (ResNet) and two PatchGAN
discriminators ``D_A``, ``D_B``. Each step, on a minibatch ``a`` of A and an
independent minibatch ``b`` of B:

- generators (one Adam over both), the paper's un-halved least-squares term ``E(D(G(a)) - 1)^2``,
  twice :func:`gancourse.deep.losses.g_loss_lsgan`:
  ``L_G = 2 L_lsgan(D_B(G_AB(a))) + 2 L_lsgan(D_A(G_BA(b)))
  + lambda |G_BA(G_AB(a)) - a|_1 + lambda |G_AB(G_BA(b)) - b|_1
  + lambda_id (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)``
  with ``lambda = 10`` and ``lambda_id = 0.5 lambda``;
- discriminators (one Adam over both), LSGAN halved as in the paper, on real
  images and on translated images drawn through a 50-image history pool per domain.

Adam(2e-4, betas (0.5, 0.999)); the learning rate is constant for the first
``decay_start`` fraction of the steps and then falls linearly to 0. The
identity loss needs both generators to map a domain's images to the same
shape, so single-channel images (MNIST) are repeated to three channels: both
domains are then (N, 3, S, S) and the LeNet reads a translated digit back
through its grey level. Checkpoints resume exactly, as in :mod:`gancourse.deep.train_gan`, and
the same input checks apply: both domains in [-1, 1], no NaN/inf, resumed only on the same images.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from gancourse.deep.cyclegan import PatchDiscriminator, ResnetGenerator
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import cycle_loss, d_loss_lsgan, g_loss_lsgan, identity_loss
from gancourse.deep.pool import ImagePool
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
from gancourse.errors import check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["CycleGANConfig", "CycleGANTrainer", "cyclegan_preset", "gray_to_rgb", "linear_decay"]



@dataclass(frozen=True)
class CycleGANConfig(CudaRunOptions):
    """Everything that defines a CycleGAN run. Defaults: the paper's losses and optimiser, small networks."""

    steps: int = option(10000, "generator iterations")
    batch_size: int = option(16, "images per batch")
    channels: int = option(3, "image channels (1: grey, 3: colour)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(32, "generator base width")
    n_blocks: int = option(6, "residual blocks in each generator")
    d_width: int = option(64, "PatchGAN discriminator base width")
    d_layers: int = option(2, "PatchGAN downsampling layers (more: a larger receptive field)")
    lr: float = option(2e-4, "learning rate of all four networks")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    lambda_cycle: float = option(10.0, "cycle-consistency weight lambda")
    identity_fraction: float = option(0.5, "identity-loss weight as a fraction of lambda_cycle (0 = off)")
    pool_size: int = option(50, "history of generated images the discriminators see (0 = off)")
    decay_start: float = option(0.5, "fraction of the run after which the learning rate decays linearly to 0")
    n_samples: int = option(8, "image pairs in each kept grid")

    def __post_init__(self) -> None:
        check_run_config(self, extra_ints=("n_blocks", "d_layers"))
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {self.image_size!r}")
        check_positive("lambda_cycle", self.lambda_cycle, allow_zero=True)
        check_positive("identity_fraction", self.identity_fraction, allow_zero=True)
        if check_positive("decay_start", self.decay_start, allow_zero=True) > 1:
            raise ValueError(f"decay_start must lie in [0, 1], got {self.decay_start!r}")
        check_positive_int("pool_size", self.pool_size, minimum=0)


def cyclegan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> CycleGANConfig:
    """MNIST <-> MNIST-M-style at 32x32, at the size of ``tier`` (see :func:`gancourse.deep.train_gan.preset_tier`):
    smoke shrinks the networks and the run for a CPU test, lecture fits a 2-core CPU in minutes, full is larger."""
    base = pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=100, batch_size=8, g_width=8, n_blocks=2, d_width=16, sample_every=50, log_every=10),
        lecture=dict(steps=2000, batch_size=8, g_width=16, n_blocks=3, d_width=32, sample_every=250),
        full=dict(steps=10000, batch_size=16, g_width=32, n_blocks=6, d_width=64, sample_every=1000),
    )
    return CycleGANConfig(**{**base, **overrides})


def gray_to_rgb(x: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """(N, 1, H, W) -> (N, channels, H, W) by repetition; images that already have ``channels`` pass through."""
    if x.ndim != 4 or x.shape[1] not in (1, channels):
        raise ValueError(f"x must have shape (N, 1, H, W) or (N, {channels}, H, W), got {tuple(x.shape)}")
    return x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x


def linear_decay(step: int, steps: int, decay_start: float) -> float:
    """Learning-rate factor: 1 before ``decay_start * steps``, then linear to 0 at ``steps``."""
    start = int(decay_start * steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, steps - start))


def _set_requires_grad(modules, flag: bool) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


class CycleGANTrainer(TrainingLoop):
    """Trains CycleGAN on unpaired images ``a`` (N, 1 or C, S, S) and ``b`` (M, C, S, S) in [-1, 1]."""

    KIND = "cyclegan"
    STATE = ("G_AB", "G_BA", "D_A", "D_B", "opt_g", "opt_d", "generator", "pool_generator", "batch_a",
             "batch_b", "pool_a", "pool_b", "history", "fixed_a", "fixed_b")
    POSTFIX = ("g_loss", "cycle", "d_loss_b")

    def __init__(self, config: CycleGANConfig, a: torch.Tensor, b: torch.Tensor, device: torch.device | str = "cpu"):
        self._set_up(config, CycleGANConfig, device)
        c, S = config, config.image_size
        for name, x in (("a", a), ("b", b)):
            check_image_shape(name, x, ((1, c.channels), S, S))
        self.a = self._device_images("a", gray_to_rgb(a, c.channels)).contiguous()
        self.b = self._device_images("b", gray_to_rgb(b, c.channels)).contiguous()
        with seeded(c.seed):
            self.G_AB = ResnetGenerator(c.channels, c.channels, c.g_width, c.n_blocks).to(self.device)
            self.G_BA = ResnetGenerator(c.channels, c.channels, c.g_width, c.n_blocks).to(self.device)
            self.D_A = PatchDiscriminator(c.channels, c.d_width, c.d_layers).to(self.device)
            self.D_B = PatchDiscriminator(c.channels, c.d_width, c.d_layers).to(self.device)
            self.fixed_a = self.a[torch.randperm(len(self.a))[: c.n_samples].to(self.device)]
            self.fixed_b = self.b[torch.randperm(len(self.b))[: c.n_samples].to(self.device)]
        self._G_AB, self._G_BA = (maybe_compile(m, self.compiled) for m in (self.G_AB, self.G_BA))
        self._D_A, self._D_B = (maybe_compile(m, self.compiled) for m in (self.D_A, self.D_B))
        betas = (c.beta1, c.beta2)
        self.opt_g = torch.optim.Adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), c.lr, betas)
        self.opt_d = torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), c.lr, betas)
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.pool_generator = torch.Generator().manual_seed(c.seed + 2)
        self.batch_a = Batcher(len(self.a), c.batch_size, self.generator, self.device)
        self.batch_b = Batcher(len(self.b), c.batch_size, self.generator, self.device)
        self.pool_a = ImagePool(c.pool_size, self.pool_generator, self.device)
        self.pool_b = ImagePool(c.pool_size, self.pool_generator, self.device)
        self.history = LossHistory(("g_loss", "adv_g", "cycle", "identity", "d_loss_a", "d_loss_b", "lr"))
        self.snapshots: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ translation
    @torch.no_grad()
    def _apply(self, net: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        x = gray_to_rgb(x, self.config.channels)
        with eval_mode(net):
            return torch.cat([net(x[i : i + batch_size].to(self.device, torch.float32)).float().cpu()
                              for i in range(0, len(x), batch_size)])

    def translate_ab(self, a: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """``G_AB(a)``: A images (N, 1 or C, S, S) -> B images (N, C, S, S), float32 on the CPU."""
        return self._apply(self.G_AB, a, batch_size)

    def translate_ba(self, b: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """``G_BA(b)``: B images (N, C, S, S) -> A images (N, C, S, S), float32 on the CPU."""
        return self._apply(self.G_BA, b, batch_size)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        c = self.config
        lr = c.lr * linear_decay(self.step, c.steps, c.decay_start)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        real_a = self.a[self.batch_a.next()]  # (B, C, S, S)
        real_b = self.b[self.batch_b.next()]
        lam_id = c.identity_fraction * c.lambda_cycle

        # generators: adversarial + cycle + identity, with the discriminators frozen
        _set_requires_grad((self.D_A, self.D_B), False)
        with autocast(self.device, self.amp):
            fake_b, fake_a = self._G_AB(real_a), self._G_BA(real_b)
            rec_a, rec_b = self._G_BA(fake_b), self._G_AB(fake_a)
            # the paper's E(D(G(a)) - 1)^2 (no 1/2 on the generator's side): twice the 1/2-convention loss
            adv = 2 * (g_loss_lsgan(self._D_B(fake_b).float()) + g_loss_lsgan(self._D_A(fake_a).float()))
            cyc = cycle_loss(real_a, rec_a.float(), c.lambda_cycle) + cycle_loss(real_b, rec_b.float(), c.lambda_cycle)
            if lam_id > 0:
                idt = identity_loss(real_b, self._G_AB(real_b).float(), lam_id) + \
                    identity_loss(real_a, self._G_BA(real_a).float(), lam_id)
            else:
                idt = torch.zeros((), device=self.device)
        loss_g = adv + cyc + idt
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        _set_requires_grad((self.D_A, self.D_B), True)

        # discriminators: real vs translated images from the history pools
        old_b, old_a = self.pool_b.query(fake_b.float()), self.pool_a.query(fake_a.float())
        with autocast(self.device, self.amp):
            loss_d_b = d_loss_lsgan(self._D_B(real_b).float(), self._D_B(old_b).float())
            loss_d_a = d_loss_lsgan(self._D_A(real_a).float(), self._D_A(old_a).float())
        self.opt_d.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        self.opt_d.step()
        self.step += 1
        self.history.append(self.step, loss_g, adv, cyc, idt, loss_d_a, loss_d_b, torch.tensor(lr, device=self.device))

    def networks(self) -> list[torch.nn.Module]:
        return [getattr(self, name) for name in self._NETS]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"a": self.a, "b": self.b}

    def snapshot(self) -> None:
        """Record ``(step, G_AB(fixed_a), G_BA(fixed_b))`` in ``snapshots``."""
        self.snapshots.append((self.step, self.translate_ab(self.fixed_a), self.translate_ba(self.fixed_b)))

    _NETS = ("G_AB", "G_BA", "D_A", "D_B")
