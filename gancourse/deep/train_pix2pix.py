"""Training loop for pix2pix (Isola et al. 2017) with the paper's ablation: L1 only, cGAN only, L1 + cGAN.

One trainer holds three variants, each with its own U-Net generator (and PatchGAN discriminator for the two
adversarial ones). They start from the *same* initial weights and see the *same* minibatches, so that the
differences between them come from their objectives alone. With ``x`` an input, ``y`` its target and
``D(x, .)`` the patch logits on the pair (section 3.1 of the paper):

- **L1 only**: ``L_G = lambda E|y - G(x)|_1``;
- **cGAN only**: ``L_G = E softplus(-D(x, G(x)))`` (the non-saturating form of ``log D(x, G(x))``,
  :func:`gancourse.deep.losses.g_loss_nonsaturating`);
- **L1 + cGAN**: ``L_G = E softplus(-D(x, G(x))) + lambda E|y - G(x)|_1``, ``lambda = 100``;
- the discriminators: ``L_D = 1/2 [E softplus(-D(x, y)) + E softplus(D(x, G(x)))]``
  (:func:`gancourse.deep.losses.d_loss_bce`, halved as in the paper to slow D down relative to G).

Each step, for each variant in turn: ``G(x)`` once, one D update on real and generated pairs (adversarial
variants), then one G update. Adam(2e-4, betas (0.5, 0.999)) everywhere. Dropout (rate 0.5) in the generators'
decoders is the only noise: the paper puts it in the three decoder layers nearest the bottleneck, whose maps are at
most 1/32 of a 256x256 image's side; at 32x32 the first decoder layer (2x2) is the one that coarse, so
``n_dropout`` is 1 by default. Its masks come from the run's ``torch.Generator``, so a checkpoint resumes exactly
(k steps, save, load, k steps equals 2k steps bit for bit on the CPU), as in :mod:`gancourse.deep.train_gan`.

At evaluation (:meth:`Pix2PixTrainer.translate`) batch norm uses its running statistics, so an image's output
does not depend on the other images of its batch; dropout is switched off by default (the deterministic
translation), and ``dropout=True`` keeps it on, with seeded masks, as the paper does at test time.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import d_loss_bce, g_loss_nonsaturating
from gancourse.deep.paired import INPUT_CHANNELS, PAIRED_TASKS
from gancourse.deep.pix2pix import PatchGAN, UNetGenerator
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
from gancourse.errors import check_choice, check_positive
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["Pix2PixConfig", "Pix2PixTrainer", "pix2pix_preset", "VARIANTS", "VARIANT_NAMES", "l1_loss",
           "pix2pix_g_loss", "pix2pix_d_loss"]

#: the three objectives of the ablation, by key, and their names in reports
VARIANTS = ("l1", "cgan", "l1_cgan")
VARIANT_NAMES = {"l1": "L1", "cgan": "cGAN", "l1_cgan": "L1 + cGAN"}
ADVERSARIAL = ("cgan", "l1_cgan")


@dataclass(frozen=True)
class Pix2PixConfig(CudaRunOptions):
    """Everything that defines a pix2pix ablation run. Defaults: the paper's losses and optimiser, small networks."""

    steps: int = option(2500, "training steps (each updates all three variants)")
    batch_size: int = option(16, "image pairs per batch")
    task: str = option("lowres", "the paired task: digit from its 8x8 block means, from its edges, or from its "
                       "MNIST-M-style colouring (gancourse.deep.paired)", choices=PAIRED_TASKS)
    channels: int = option(1, "output channels (grey digits)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(16, "U-Net base width (channels of its first layer)")
    g_depth: int = option(5, "U-Net stride-2 stages (5 takes 32x32 to 1x1)")
    n_dropout: int = option(1, "decoder layers with dropout, counted from the bottleneck")
    p_dropout: float = option(0.5, "dropout rate in those layers")
    d_width: int = option(32, "PatchGAN base width")
    d_layers: int = option(1, "PatchGAN stride-2 layers (1: 16x16 patches on 32x32 images)")
    l1_lambda: float = option(100.0, "weight lambda of the L1 term")
    lr: float = option(2e-4, "learning rate of every network")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    # RunOptions' field, told more precisely
    sample_every: int = option(500, "keep a grid of translations every N steps")
    n_samples: int = option(10, "image pairs in each kept grid")

    def __post_init__(self) -> None:
        check_choice("task", self.task, PAIRED_TASKS)
        check_run_config(self, extra_ints=("g_depth", "d_layers"))
        if self.image_size % 2 ** self.g_depth:
            raise ValueError(f"image_size must be divisible by 2^g_depth = {2 ** self.g_depth}, got "
                             f"{self.image_size!r}")
        if isinstance(self.n_dropout, bool) or not isinstance(self.n_dropout, int) or \
                not 0 <= self.n_dropout < self.g_depth:
            raise ValueError(f"n_dropout must be an integer in [0, g_depth - 1 = {self.g_depth - 1}], got "
                             f"{self.n_dropout!r}")
        if check_positive("p_dropout", self.p_dropout, allow_zero=True) >= 1:
            raise ValueError(f"p_dropout must lie in [0, 1), got {self.p_dropout!r}")
        check_positive("l1_lambda", self.l1_lambda)

    @property
    def in_channels(self) -> int:
        """Channels of the task's inputs (:data:`gancourse.deep.paired.INPUT_CHANNELS`)."""
        return INPUT_CHANNELS[self.task]


def pix2pix_preset(smoke: bool = False, tier: str | None = None, **overrides) -> Pix2PixConfig:
    """The ablation at 32x32 with the paper's lambda = 100 and Adam(2e-4, (0.5, 0.999)), at the size of ``tier``
    (see :func:`gancourse.deep.train_gan.preset_tier`): smoke for a CPU test, lecture for a 2-core CPU in minutes,
    full for a GPU."""
    base = pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=40, batch_size=16, g_width=8, d_width=8, sample_every=20, log_every=10),
        lecture=dict(steps=2500, batch_size=16, g_width=16, d_width=32, sample_every=250),
        full=dict(steps=5000, batch_size=32, g_width=64, d_width=64, sample_every=1000),
    )
    return Pix2PixConfig(**{**base, **overrides})


# ------------------------------------------------------------------ losses
def l1_loss(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``E|y - G(x)|_1``: the mean absolute difference over every element (same shapes)."""
    if target.shape != output.shape:
        raise ValueError(f"output must have the target's shape {tuple(target.shape)}, got {tuple(output.shape)}")
    return (output - target).abs().mean()


def pix2pix_g_loss(fake_logits: torch.Tensor | None, target: torch.Tensor, output: torch.Tensor,
                   l1_lambda: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``L_G = E softplus(-D(x, G(x))) + lambda E|y - G(x)|_1``; returns ``(L_G, adversarial term, L1)``.

    ``fake_logits`` None drops the adversarial term (L1 only); ``l1_lambda = 0`` drops the L1 term (cGAN only).
    The L1 is returned unweighted either way.
    """
    l1 = l1_loss(target, output)
    adv = g_loss_nonsaturating(fake_logits) if fake_logits is not None else torch.zeros((), device=output.device)
    return adv + l1_lambda * l1, adv, l1


def pix2pix_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``1/2 [E softplus(-D(x, y)) + E softplus(D(x, G(x)))]``: BCE on pairs, halved as in the paper."""
    return 0.5 * d_loss_bce(real_logits, fake_logits)


def _set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Pix2PixTrainer(TrainingLoop):
    """Trains the three variants on pairs ``inputs`` (N, C_in, S, S) -> ``targets`` (N, C, S, S) in [-1, 1].

    ``G[v]`` / ``D[v]`` / ``opt_g[v]`` / ``opt_d[v]`` are variant ``v``'s networks and optimisers (``v`` in
    :data:`VARIANTS`; no D for ``"l1"``); ``history`` records each variant's terms, ``snapshots`` its translations
    of ``fixed_inputs``.
    """

    KIND = "pix2pix"
    STATE = ("G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_inputs", "fixed_targets")
    POSTFIX = ("l1_l1", "cgan_l1", "l1_cgan_l1", "l1_cgan_d")

    def __init__(self, config: Pix2PixConfig, inputs: torch.Tensor, targets: torch.Tensor,
                 device: torch.device | str = "cpu"):
        self._set_up(config, Pix2PixConfig, device)
        c, S = config, config.image_size
        for name, x, ch in (("inputs", inputs, c.in_channels), ("targets", targets, c.channels)):
            check_image_shape(name, x, (ch, S, S))
        if len(inputs) != len(targets):
            raise ValueError(f"inputs and targets must hold the same number of pairs, got {len(inputs)} and "
                             f"{len(targets)}")
        self.inputs = self._device_images("inputs", inputs).contiguous()
        self.targets = self._device_images("targets", targets).contiguous()
        with seeded(c.seed):  # the initial weights depend on the seed only
            g0 = UNetGenerator(c.in_channels, c.channels, c.g_width, c.g_depth, c.n_dropout, c.p_dropout)
            d0 = PatchGAN(c.in_channels, c.channels, c.d_width, c.d_layers)
            fixed = torch.randperm(len(self.inputs))[: c.n_samples]
        # every variant starts from the same weights
        self.G = {v: copy.deepcopy(g0).to(self.device) for v in VARIANTS}
        self.D = {v: copy.deepcopy(d0).to(self.device) for v in ADVERSARIAL}
        self._G = {v: maybe_compile(m, self.compiled) for v, m in self.G.items()}
        self._D = {v: maybe_compile(m, self.compiled) for v, m in self.D.items()}
        self.fixed_inputs = self.inputs[fixed.to(self.device)]
        self.fixed_targets = self.targets[fixed.to(self.device)]
        betas = (c.beta1, c.beta2)
        self.opt_g = {v: torch.optim.Adam(self.G[v].parameters(), c.lr, betas) for v in VARIANTS}
        self.opt_d = {v: torch.optim.Adam(self.D[v].parameters(), c.lr, betas) for v in ADVERSARIAL}
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.batcher = Batcher(len(self.inputs), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("l1_l1", "cgan_adv", "cgan_l1", "cgan_d", "l1_cgan_adv", "l1_cgan_l1",
                                    "l1_cgan_d"))
        self.snapshots: list[tuple[int, dict[str, torch.Tensor]]] = []
        self.step = 0

    # ------------------------------------------------------------------ translation
    @torch.no_grad()
    def translate(self, x: torch.Tensor, variant: str = "l1_cgan", dropout: bool = False, seed: int = 0,
                  batch_size: int = 500) -> torch.Tensor:
        """``G_variant(x)``: inputs (N, C_in, S, S) -> outputs (N, C, S, S), float32 on the CPU.

        Batch norm uses its running statistics; dropout is off unless ``dropout=True`` (then its masks are
        drawn from a generator seeded with ``seed``; the run's generator is not touched).
        """
        check_choice("variant", variant, VARIANTS)
        gen = torch.Generator(self.device).manual_seed(seed) if dropout else None
        net = self.G[variant]
        with eval_mode(net):
            return torch.cat([net(x[i: i + batch_size].to(self.device, torch.float32), gen, dropout).float().cpu()
                              for i in range(0, len(x), batch_size)])

    # ------------------------------------------------------------------ one step
    def _adversarial_step(self, v: str, x: torch.Tensor, y: torch.Tensor, lam: float) -> tuple[torch.Tensor, ...]:
        G, D = self._G[v], self._D[v]
        with autocast(self.device, self.amp):
            fake = G(x, self.generator)
            l_real, l_fake = D(x, y).float(), D(x, fake.detach()).float()
        loss_d = pix2pix_d_loss(l_real, l_fake)
        self.opt_d[v].zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d[v].step()
        _set_requires_grad(self.D[v], False)
        with autocast(self.device, self.amp):
            l_gen = D(x, fake).float()
        loss_g, adv, l1 = pix2pix_g_loss(l_gen, y, fake.float(), lam)
        self.opt_g[v].zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g[v].step()
        _set_requires_grad(self.D[v], True)
        return adv, l1, loss_d

    def train_step(self) -> None:
        """One update of each variant on the same minibatch; the terms go to ``history``."""
        c = self.config
        idx = self.batcher.next()
        x, y = self.inputs[idx], self.targets[idx]  # (B, C_in, S, S), (B, C, S, S)
        with autocast(self.device, self.amp):
            fake = self._G["l1"](x, self.generator)
        loss, _, l1_l1 = pix2pix_g_loss(None, y, fake.float(), c.l1_lambda)
        self.opt_g["l1"].zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g["l1"].step()
        cgan = self._adversarial_step("cgan", x, y, 0.0)
        both = self._adversarial_step("l1_cgan", x, y, c.l1_lambda)
        self.step += 1
        self.history.append(self.step, l1_l1, *cgan, *both)

    def networks(self) -> list[torch.nn.Module]:
        return [*self.G.values(), *self.D.values()]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs, "targets": self.targets}

    def snapshot(self) -> None:
        """Record ``(step, {variant: G_variant(fixed_inputs)})`` in ``snapshots``."""
        self.snapshots.append((self.step, {v: self.translate(self.fixed_inputs, v) for v in VARIANTS}))
