"""Training loop for the semi-supervised GAN (Salimans et al. 2016, section 5) and its 100-label baseline.

Data: of the training digits, ``labels_per_class`` per class keep their labels (:func:`draw_labeled`, fixed by
``label_seed``); the rest are used without labels. One *step*, on a labeled batch (its digits shifted by up to
``max_shift`` pixels), an unlabeled batch and fresh noise:

1. the classifier-discriminator ``D`` (K = 10 logits, fake logit 0: :mod:`gancourse.deep.ssgan`) takes one Adam
   step on ``L_sup + unsup_weight * L_unsup`` (the authors' code weighs ``L_unsup`` by 1/2);
2. the generator takes one Adam step on the feature-matching loss ``||E f(x) - E f(G(z))||^2``, ``f`` the last
   hidden layer of ``D``, on another unlabeled batch and fresh noise;
3. the **baseline**, the same network with the same initial weights, noise and augmentation, takes one step of
   the same optimiser on ``L_sup`` of the same labeled batch: what the labels alone achieve.

Adam(lr, betas (0.5, 0.999)) for all three; the learning rate is constant for the first ``decay_start``
fraction of the steps, then falls linearly to 0. Both classifiers start from the same weights, initialised
from the labeled digits (weight normalisation's data-dependent initialisation). All randomness comes from
the config's seed: one ``torch.Generator`` on the device (batches, noise) and one on the CPU (the shifts);
a checkpoint holds every network, optimiser, generator, batcher, the history and the snapshots, so that
k steps + save + load + k steps equals 2k steps bit for bit on the CPU.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancourse.deep.lenet import random_shift
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.runtime import (
    Batcher,
    CudaRunOptions,
    LossHistory,
    autocast,
    check_image_shape,
    check_run_config,
    data_fingerprint,
    eval_mode,
    maybe_compile,
    seeded,
)
from gancourse.deep.ssgan import (
    N_CLASSES,
    SSGANClassifier,
    SSGANGenerator,
    d_hidden_widths,
    d_of_logits,
    feature_matching_loss,
    supervised_loss,
    unsupervised_loss,
)
from gancourse.deep.train_cyclegan import linear_decay
from gancourse.errors import check_positive, check_positive_int
from gancourse.options import option
from gancourse.tiers import pick, preset_tier

__all__ = ["SSGANConfig", "SSGANTrainer", "ssgan_preset", "draw_labeled", "CLASSIFIERS"]

#: the two classifiers a trainer holds: the SSGAN's discriminator and the labels-only baseline
CLASSIFIERS = ("ssgan", "baseline")


@dataclass(frozen=True)
class SSGANConfig(CudaRunOptions):
    """Everything that defines a semi-supervised GAN run (and its baseline). Defaults: the paper's MNIST setup."""

    steps: int = option(3000, "training steps (each: one D, one G and one baseline update)")
    batch_size: int = option(100, "unlabeled (and generated) images per batch")
    labeled_batch: int = option(100, "labeled images per batch (at most the number of labels)")
    labels_per_class: int = option(10, "labeled training digits per class (10 classes)")
    label_seed: int = option(0, "seed of the draw of the labeled digits")
    z_dim: int = option(100, "latent dimension")
    channels: int = option(1, "image channels (grey digits)")
    image_size: int = option(32, "image side in pixels")
    border: int = option(2, "background pixels on each side that the networks skip (MNIST: 28x28 digits in 32x32)")
    d_width: int = option(500, "classifier's first hidden width (the next layers have half of it)")
    d_layers: int = option(3, "classifier's hidden layers")
    g_width: int = option(500, "generator's width (two hidden layers)")
    input_noise: float = option(0.6, "std of the Gaussian noise on the classifier's input pixels (in [-1, 1])")
    hidden_noise: float = option(0.5, "std of the Gaussian noise on the classifier's hidden layers")
    unsup_weight: float = option(0.5, "weight of the unsupervised (GAN) loss in D's loss")
    max_shift: int = option(0, "labeled digits are shifted by up to this many pixels (0 = no augmentation)")
    lr: float = option(3e-3, "learning rate of D, G and the baseline")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    decay_start: float = option(0.5, "fraction of the run after which the learning rate decays linearly to 0")
    # two of CudaRunOptions' fields, told more precisely
    seed: int = option(0, "random seed (weights, batches, noise)")
    compile: bool = option(False, "torch.compile the generator on CUDA; ignored on CPU")
    n_samples: int = option(64, "samples in each kept grid")

    def __post_init__(self) -> None:
        check_run_config(self, extra_ints=("labeled_batch", "labels_per_class", "z_dim", "d_layers"))
        if self.labeled_batch > N_CLASSES * self.labels_per_class:
            raise ValueError(f"labeled_batch ({self.labeled_batch}) must not exceed the number of labeled digits "
                             f"({N_CLASSES} x labels_per_class = {N_CLASSES * self.labels_per_class})")
        for name in ("input_noise", "hidden_noise", "unsup_weight"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_positive_int("max_shift", self.max_shift, minimum=0)
        if self.channels != 1:
            raise ValueError(f"channels must be 1 (grey digits), got {self.channels!r}")
        if not 0 <= self.border < self.image_size / 2:
            raise ValueError(f"border must lie in [0, image_size / 2), got {self.border!r}")
        if check_positive("decay_start", self.decay_start, allow_zero=True) > 1:
            raise ValueError(f"decay_start must lie in [0, 1], got {self.decay_start!r}")


def ssgan_preset(smoke: bool = False, tier: str | None = None, **overrides) -> SSGANConfig:
    """100 labels of MNIST-5k, the paper's losses and optimiser, at the size of ``tier``
    (see :func:`gancourse.deep.train_gan.preset_tier`): smoke is a CPU test of seconds, lecture fits a 2-core
    CPU in minutes (three hidden layers 500-250-250), full has the paper's depth (five hidden layers from 1000).
    Every tier shifts the labeled digits by up to 2 pixels, for the SSGAN and the baseline alike: the baseline
    should be as good as 100 labels can make it."""
    base = dict(max_shift=2)
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=60, batch_size=32, labeled_batch=32, d_width=64, d_layers=2, g_width=64, z_dim=32,
                   sample_every=30, log_every=10),
        lecture=dict(steps=5000, sample_every=1000),
        full=dict(steps=20000, d_width=1000, d_layers=5, sample_every=2000),
    ))
    return SSGANConfig(**{**base, **overrides})


def draw_labeled(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Sorted indices (K * per_class,) of ``per_class`` digits of each class 0..K-1 of ``labels`` (N,),
    drawn without replacement by a CPU generator seeded with ``seed``: the same draw for the same labels
    and seed. A class with fewer than ``per_class`` digits is refused with a ValueError."""
    labels = labels.detach().cpu()
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for k in range(N_CLASSES):
        of_k = torch.nonzero(labels == k)[:, 0]  # (n_k,)
        if len(of_k) < per_class:
            raise ValueError(f"class {k} has {len(of_k)} digits, fewer than labels_per_class={per_class}")
        chosen.append(of_k[torch.randperm(len(of_k), generator=gen)[:per_class]])
    return torch.cat(chosen).sort().values


class SSGANTrainer(TrainingLoop):
    """Trains the semi-supervised GAN and its baseline on digits ``images`` (N, 1, S, S) in [-1, 1] with
    ``labels`` (N,); only the drawn ``labeled_index`` keep their labels, the other images are unlabeled."""

    KIND = "ssgan"
    STATE = ("D", "G", "baseline", "opt_d", "opt_g", "opt_b", "generator", "shift_generator", "batch_lab",
             "batch_unl", "history", "fixed_z", "labeled_index")
    POSTFIX = ("sup", "unsup", "fm", "base_sup")

    def __init__(self, config: SSGANConfig, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device | str = "cpu"):
        self._set_up(config, SSGANConfig, device)
        c, S = config, config.image_size
        check_image_shape("images", images, (c.channels, S, S))
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        self.labeled_index = draw_labeled(labels, c.labels_per_class, c.label_seed)  # (K * per_class,)
        unlabeled = torch.ones(len(images), dtype=torch.bool)
        unlabeled[self.labeled_index] = False
        self.x_lab = self._device_images("images", images[self.labeled_index]).contiguous()
        self.y_lab = labels[self.labeled_index].to(self.device, torch.int64)
        self.x_unl = self._device_images("images", images[unlabeled]).contiguous()
        if len(self.x_unl) < c.batch_size:
            raise ValueError(f"batch_size ({c.batch_size}) exceeds the {len(self.x_unl)} unlabeled images")
        with seeded(c.seed):  # the initial weights depend on the seed only
            self.D = SSGANClassifier(S, d_hidden_widths(c.d_width, c.d_layers), N_CLASSES, c.input_noise,
                                     c.hidden_noise, c.border).to(self.device)
            self.D.init_from_data(self.x_lab)
            self.baseline = copy.deepcopy(self.D)  # the same network, from the same weights
            self.G = SSGANGenerator(c.z_dim, (c.g_width, c.g_width), S, c.border).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self._G = maybe_compile(self.G, self.compiled)
        betas, fused = (c.beta1, c.beta2), self.device.type in ("cpu", "cuda") or None  # one kernel per step
        self.opt_d = torch.optim.Adam(self.D.parameters(), c.lr, betas, fused=fused)
        self.opt_g = torch.optim.Adam(self.G.parameters(), c.lr, betas, fused=fused)
        self.opt_b = torch.optim.Adam(self.baseline.parameters(), c.lr, betas, fused=fused)
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 1)
        self.shift_generator = torch.Generator().manual_seed(c.seed + 2)  # CPU: random_shift draws there
        self.batch_lab = Batcher(len(self.x_lab), c.labeled_batch, self.generator, self.device)
        self.batch_unl = Batcher(len(self.x_unl), c.batch_size, self.generator, self.device)
        self.history = LossHistory(("d_loss", "sup", "unsup", "fm", "base_sup", "d_real", "d_fake", "train_acc",
                                    "base_train_acc", "lr"))
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ sampling and classifying
    def noise(self, n: int) -> torch.Tensor:
        """``z ~ N(0, I)``, shape (n, z_dim), from the run's generator."""
        return torch.randn(n, self.config.z_dim, generator=self.generator, device=self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(z)`` in eval mode (batch norm's running statistics), float32 on the CPU: (n, 1, S, S)."""
        with eval_mode(self.G):
            return torch.cat([self.G(z[i : i + batch_size].to(self.device)).float().cpu()
                              for i in range(0, len(z), batch_size)])

    def sample(self, n: int, seed: int = 1234, batch_size: int = 500) -> torch.Tensor:
        """``n`` generated images from noise drawn with its own ``seed`` (the run's generator is not touched)."""
        z = torch.randn(n, self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, batch_size)

    def classifier(self, which: str = "ssgan") -> SSGANClassifier:
        """The SSGAN's discriminator (``"ssgan"``) or the labels-only baseline (``"baseline"``)."""
        if which not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {which!r}; valid options are: {', '.join(map(repr, CLASSIFIERS))}")
        return self.D if which == "ssgan" else self.baseline

    @torch.no_grad()
    def logits(self, x: torch.Tensor, which: str = "ssgan", batch_size: int = 500) -> torch.Tensor:
        """The K class logits (N, K) of images ``x`` (N, 1, S, S), in eval mode (no noise), on the CPU."""
        net = self.classifier(which)
        with eval_mode(net):
            return torch.cat([net(x[i : i + batch_size].to(self.device, torch.float32)).float().cpu()
                              for i in range(0, len(x), batch_size)])

    def predict(self, x: torch.Tensor, which: str = "ssgan") -> torch.Tensor:
        """Predicted classes (N,) of images ``x``: the argmax of the K logits."""
        return self.logits(x, which).argmax(1)

    def error(self, x: torch.Tensor, y: torch.Tensor, which: str = "ssgan") -> float:
        """Share of images ``x`` whose predicted class differs from the label ``y`` (N,)."""
        return float((self.predict(x, which) != y.cpu()).double().mean())

    # ------------------------------------------------------------------ one step
    def _labeled(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batch_lab.next()
        x, y = self.x_lab[idx], self.y_lab[idx]  # (B_lab, 1, S, S), (B_lab,)
        if self.config.max_shift:
            x = random_shift(x.cpu(), self.config.max_shift, self.shift_generator).to(self.device)
        return x, y

    def train_step(self) -> None:
        """One D update, one G update and one baseline update; the scalars go to ``history``."""
        c, gen = self.config, self.generator
        lr = c.lr * linear_decay(self.step, c.steps, c.decay_start)
        for opt in (self.opt_d, self.opt_g, self.opt_b):
            for group in opt.param_groups:
                group["lr"] = lr
        x_lab, y_lab = self._labeled()
        x_unl = self.x_unl[self.batch_unl.next()]  # (B, 1, S, S)

        # D: supervised + unsupervised, in one pass over the three batches (D has no batch statistics)
        n_lab, n_unl = len(x_lab), len(x_unl)
        with autocast(self.device, self.amp):
            fake = self._G(self.noise(c.batch_size))
            l_all = self.D(torch.cat([x_lab, x_unl, fake.detach()]), gen).float()  # (B_lab + 2B, K)
        l_lab, l_unl, l_fake = l_all[:n_lab], l_all[n_lab : n_lab + n_unl], l_all[n_lab + n_unl :]
        sup, unsup = supervised_loss(l_lab, y_lab), unsupervised_loss(l_unl, l_fake)
        loss_d = sup + c.unsup_weight * unsup
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # G: feature matching on the last hidden layer of the updated D
        x_real = self.x_unl[self.batch_unl.next()]
        with autocast(self.device, self.amp):
            _, f_all = self.D.forward_features(torch.cat([x_real, self._G(self.noise(c.batch_size))]), gen)
        f_all = f_all.float()  # (2B, F): real rows, then generated rows
        fm = feature_matching_loss(f_all[: len(x_real)].detach(), f_all[len(x_real) :])
        self.opt_g.zero_grad(set_to_none=True)
        fm.backward(inputs=list(self.G.parameters()))  # no gradient for D's weights
        self.opt_g.step()

        # the baseline: the same labeled batch, the labels alone
        with autocast(self.device, self.amp):
            l_base = self.baseline(x_lab, gen).float()
        base_sup = supervised_loss(l_base, y_lab)
        self.opt_b.zero_grad(set_to_none=True)
        base_sup.backward()
        self.opt_b.step()

        self.step += 1
        acc = (l_lab.detach().argmax(1) == y_lab).float().mean()
        base_acc = (l_base.detach().argmax(1) == y_lab).float().mean()
        self.history.append(self.step, loss_d, sup, unsup, fm, base_sup, d_of_logits(l_unl.detach()).mean(),
                            d_of_logits(l_fake.detach()).mean(), acc, base_acc,
                            torch.tensor(lr, device=self.device))

    def networks(self) -> list[torch.nn.Module]:
        return [self.D, self.G, self.baseline]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"labeled": self.x_lab, "unlabeled": self.x_unl}

    def data_fingerprint(self) -> dict[str, dict]:
        """The images' fingerprints and that of the labels of the labeled digits."""
        return {**super().data_fingerprint(), "labels": data_fingerprint(self.y_lab)}

    def snapshot(self) -> None:
        """Record ``(step, G(fixed_z))`` in ``snapshots``."""
        self.snapshots.append((self.step, self.generate(self.fixed_z)))

    # ------------------------------------------------------------------ checkpoints
    def load_state(self, state: dict) -> None:
        if not torch.equal(state["labeled_index"].cpu(), self.labeled_index.cpu()):
            raise ValueError("the checkpoint's labeled digits are not the ones this trainer drew")
        super().load_state(state)
