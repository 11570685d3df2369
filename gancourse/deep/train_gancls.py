"""Training loop for GAN-CLS (Reed et al. 2016) on captioned MNIST-5k digits.

Before training, the trainer measures each training digit's thickness, slant and size, cuts them at the
class medians (:class:`gancourse.deep.captions.AttributeThresholds`) and pretrains the text encoder to read
the captions (:func:`gancourse.deep.gancls.pretrain_text_encoder`); the frozen encoder's embeddings of
every caption the templates can write are kept in a table, indexed by meaning and template.

One *step* (Algorithm 1 of the paper), on a minibatch of real digits ``x``:

1. each digit gets its right caption ``t`` in a random template, and a wrong caption ``t_w``: another
   meaning drawn uniformly from the 79 others, in a random template; ``h = phi(t)``, ``h_w = phi(t_w)``;
2. ``x_f = G(z, h)``; D is updated on ``L_D = E softplus(-D(x, h)) + (E softplus(D(x, h_w)) +
   E softplus(D(x_f, h))) / 2`` (``wrong_text=False``: ``E softplus(-D(x, h)) + E softplus(D(x_f, h))``);
3. G is updated on ``-E log sigmoid D(x_f, h)``, plus, with ``gan_int``, ``-E log sigmoid D(G(z', h_bar),
   h_bar)`` at ``h_bar = beta h + (1 - beta) h_w`` (GAN-INT, ``beta = 0.5``).

Every step draws the same random numbers whatever ``wrong_text`` and ``gan_int`` say, so runs that differ
only in those options see the same minibatches, captions and noise. Adam(2e-4, betas (0.5, 0.999)) as in
the paper. Checkpoints resume exactly, as in :mod:`gancourse.deep.train_gan`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from gancourse.deep.captions import (
    N_MEANINGS,
    TEMPLATES,
    VOCABULARY,
    AttributeThresholds,
    all_captions,
    meaning_code,
)
from gancourse.deep.gancls import (
    MatchingAwareDiscriminator,
    TextConditionedGenerator,
    TextEncoder,
    d_loss_matching,
    interpolate_text,
    pretrain_text_encoder,
)
from gancourse.deep.loop import TrainingLoop
from gancourse.deep.losses import g_loss_nonsaturating
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

__all__ = ["GANCLSConfig", "GANCLSTrainer", "gancls_preset", "snapshot_layout"]


@dataclass(frozen=True)
class GANCLSConfig(CudaRunOptions):
    """Everything that defines a GAN-CLS run. Defaults: the paper's losses and optimiser, small networks."""

    steps: int = option(5000, "generator iterations")
    batch_size: int = option(64, "images per batch")
    z_dim: int = option(100, "noise dimension")
    channels: int = option(1, "image channels (1: grey)")
    image_size: int = option(32, "image side in pixels")
    g_width: int = option(64, "generator base width (channels of its last hidden layer)")
    d_width: int = option(64, "discriminator base width (channels of its first layer)")
    embed_dim: int = option(32, "word-embedding size of the text encoder")
    text_hidden: int = option(64, "GRU state size of the text encoder")
    text_dim: int = option(32, "text embedding size phi(t)")
    proj_dim: int = option(32, "size the embedding is compressed to inside G and D (the paper's 128)")
    encoder_steps: int = option(200, "pretraining steps of the text encoder (full batch of all captions)")
    wrong_text: bool = option(True, "train D on real images with wrong captions too (GAN-CLS); off: plain conditional GAN")
    gan_int: bool = option(True, "add GAN-INT's generator term at interpolated caption embeddings")
    int_beta: float = option(0.5, "GAN-INT's beta: h_bar = beta h_1 + (1 - beta) h_2")
    lr_g: float = option(2e-4, "generator learning rate")
    lr_d: float = option(2e-4, "discriminator learning rate")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    n_samples: int = option(40, "samples in each kept grid (columns: digits 0-9; rows: thin, thick, ...)")

    def __post_init__(self) -> None:
        check_run_config(self, extra_ints=("z_dim", "embed_dim", "text_hidden", "text_dim", "proj_dim",
                                           "encoder_steps"), rates=("lr_g", "lr_d"))
        if check_positive("int_beta", self.int_beta, allow_zero=True) > 1:
            raise ValueError(f"int_beta must lie in [0, 1], got {self.int_beta!r}")
        for name in ("wrong_text", "gan_int", "amp", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")


def gancls_preset(smoke: bool = False, tier: str | None = None, **overrides) -> GANCLSConfig:
    """GAN-CLS on captioned MNIST-5k with the paper's optimiser, wrong-text term and GAN-INT, at the size of
    ``tier`` (see :func:`gancourse.deep.train_gan.preset_tier`): smoke for a CPU test, lecture for a 2-core
    CPU in minutes, full for a GPU."""
    base = dict(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, wrong_text=True, gan_int=True, int_beta=0.5)
    base.update(pick(
        preset_tier(smoke, tier),
        smoke=dict(steps=60, batch_size=32, z_dim=16, g_width=16, d_width=16, embed_dim=16, text_hidden=32,
                   text_dim=16, proj_dim=16, encoder_steps=20, sample_every=20, log_every=10),
        lecture=dict(steps=2500, batch_size=64, z_dim=32, g_width=32, d_width=32, encoder_steps=200,
                     sample_every=500),
        full=dict(steps=8000, batch_size=64, z_dim=100, g_width=64, d_width=64, text_dim=64, proj_dim=64,
                  encoder_steps=300, sample_every=1000),
    ))
    return GANCLSConfig(**{**base, **overrides})


def snapshot_layout(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kept grids' captions: sample ``i`` is digit ``i % 10`` (a column), row ``r = i // 10`` is thin for
    even ``r`` and thick for odd ``r`` (upright and large), and both rows of a pair share their noise.
    Returns meaning codes (n,), noise indices (n,) into ``n`` noise vectors, and the rows' thickness (n,)."""
    i = torch.arange(check_positive_int("n", n))
    digit, row = i % 10, i // 10
    thick = row % 2
    bits = torch.stack([thick, torch.zeros_like(thick), torch.ones_like(thick)], dim=1)  # thick?, upright, large
    return meaning_code(digit, bits), (row // 2) * 10 + digit, thick


class GANCLSTrainer(TrainingLoop):
    """Trains the text encoder (pretraining), then ``G`` and ``D`` on digits ``images`` (N, 1, S, S) in
    [-1, 1] with their ``labels`` (N,), captioned from measured attributes.

    ``encoder_state`` (a state dict of a :class:`TextEncoder` of the same sizes) skips the pretraining and
    uses those weights; the encoder depends only on the seed and its sizes, so a trainer of the same
    config gets the same one either way.
    """

    KIND = "gan-cls"
    STATE = ("encoder", "G", "D", "opt_g", "opt_d", "generator", "batcher", "history", "fixed_z")
    POSTFIX = ("d_loss", "g_loss")

    def __init__(self, config: GANCLSConfig, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device | str = "cpu", encoder_state: dict | None = None):
        self._set_up(config, GANCLSConfig, device)
        c = config
        check_image_shape("images", images, (c.channels, c.image_size, c.image_size))
        if c.channels != 1:
            raise ValueError(f"captions are measured on grey digits: channels must be 1, got {c.channels}")
        labels = torch.as_tensor(labels).long().cpu()
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        self.images = self._device_images("images", images)
        self.labels = labels
        self.thresholds = AttributeThresholds.fit(images.cpu(), labels)
        self.attributes = self.thresholds.attributes(images.cpu(), labels)  # (N, 3) in {0, 1}
        self.codes = meaning_code(labels, self.attributes).to(self.device)  # (N,) in [0, 80)
        self.vocabulary = VOCABULARY
        self.encoder_report: dict[str, float] = {}
        with seeded(c.seed):  # the encoder depends on the seed only
            self.encoder = TextEncoder(len(self.vocabulary), c.embed_dim, c.text_hidden, c.text_dim).to(self.device)
            if encoder_state is None:
                self.encoder_report = pretrain_text_encoder(self.encoder, c.encoder_steps, vocabulary=self.vocabulary)
            else:
                self.encoder.load_state_dict(encoder_state)
                self.encoder.eval().requires_grad_(False)
        self.caption_table = self._caption_table()  # (80, T, text_dim)
        with seeded(c.seed + 1):  # the initial weights depend on the seed only
            self.G = TextConditionedGenerator(c.z_dim, c.text_dim, c.proj_dim, c.channels, c.g_width,
                                              c.image_size).to(self.device)
            self.D = MatchingAwareDiscriminator(c.text_dim, c.proj_dim, c.channels, c.d_width,
                                                c.image_size).to(self.device)
            self.fixed_z = torch.randn(c.n_samples, c.z_dim).to(self.device)
        self._G, self._D = maybe_compile(self.G, self.compiled), maybe_compile(self.D, self.compiled)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator(self.device).manual_seed(c.seed + 2)
        self.batcher = Batcher(len(self.images), c.batch_size, self.generator, self.device)
        names = ("d_loss", "g_loss", "d_real", "d_wrong", "d_fake") if c.wrong_text else \
            ("d_loss", "g_loss", "d_real", "d_fake")
        self.history = LossHistory(names)
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self.step = 0

    # ------------------------------------------------------------------ text
    @torch.no_grad()
    def _caption_table(self) -> torch.Tensor:
        """``phi`` of every caption the templates write: (N_MEANINGS, len(TEMPLATES), text_dim)."""
        captions, _ = all_captions()
        return self.embed(captions).to(self.device).reshape(N_MEANINGS, len(TEMPLATES), -1)

    @torch.no_grad()
    def embed(self, captions: list[str] | str) -> torch.Tensor:
        """``phi(t)`` of captions (any words of the vocabulary, in any order): (N, text_dim) on the device."""
        tokens = self.vocabulary.encode(captions).to(self.device)  # (N, L)
        with eval_mode(self.encoder):
            return self.encoder(tokens).float()

    def embed_meanings(self, codes: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
        """Embeddings of the captions with meaning ``codes`` (N,) in ``templates`` (N,): (N, text_dim)."""
        return self.caption_table[codes.to(self.device), templates.to(self.device)]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, z: torch.Tensor, h: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``G(z, h)`` in eval mode, float32 on the CPU: (N, C, S, S)."""
        if len(z) != len(h):
            raise ValueError(f"z and h must hold as many rows, got {len(z)} and {len(h)}")
        with eval_mode(self.G):
            outs = [self.G(z[i: i + batch_size].to(self.device), h[i: i + batch_size].to(self.device)).float().cpu()
                    for i in range(0, len(z), batch_size)]
        return torch.cat(outs)

    def generate_text(self, captions: list[str] | str, z: torch.Tensor | None = None, seed: int = 1234) -> torch.Tensor:
        """Images of ``captions``, with noise ``z`` (N, z_dim) or noise drawn with its own ``seed``."""
        h = self.embed(captions)
        if z is None:
            z = torch.randn(len(h), self.config.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.generate(z, h)

    @torch.no_grad()
    def match_logits(self, images: torch.Tensor, h: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``D(x, h)`` in eval mode for images (N, C, S, S) and embeddings (N, text_dim): logits (N,) on the CPU."""
        with eval_mode(self.D):
            return torch.cat([self.D(images[i: i + batch_size].to(self.device, torch.float32),
                                     h[i: i + batch_size].to(self.device)).float().cpu()
                              for i in range(0, len(images), batch_size)])

    # ------------------------------------------------------------------ one step
    def _captions(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Right and wrong caption embeddings (B, text_dim) of the digits ``idx``; always the same draws."""
        b, n_t = len(idx), len(TEMPLATES)
        right_t = torch.randint(n_t, (b,), generator=self.generator, device=self.device)
        shift = torch.randint(1, N_MEANINGS, (b,), generator=self.generator, device=self.device)
        wrong_t = torch.randint(n_t, (b,), generator=self.generator, device=self.device)
        code = self.codes[idx]
        wrong = (code + shift) % N_MEANINGS  # uniform over the 79 other meanings
        return self.caption_table[code, right_t], self.caption_table[wrong, wrong_t]

    def train_step(self) -> None:
        """One D update (three terms, or two without the wrong text) and one G update; losses to ``history``."""
        c = self.config
        idx = self.batcher.next()
        real = self.images[idx]  # (B, C, S, S)
        h, h_wrong = self._captions(idx)  # (B, text_dim) each
        z = torch.randn(len(idx), c.z_dim, generator=self.generator, device=self.device)
        z_int = torch.randn(len(idx), c.z_dim, generator=self.generator, device=self.device)

        with autocast(self.device, self.amp):
            fake = self._G(z, h)
            f_real = self.D.features(real)  # (B, c, 4, 4): scored with the right and the wrong caption
            l_real = self.D.score(f_real, h).float()
            l_wrong = self.D.score(f_real, h_wrong).float() if c.wrong_text else None
            l_fake = self._D(fake.detach(), h).float()
        loss_d = d_loss_matching(l_real, l_fake, l_wrong)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        with autocast(self.device, self.amp):
            loss_g = g_loss_nonsaturating(self._D(fake, h).float())
            if c.gan_int:
                h_bar = interpolate_text(h, h_wrong, c.int_beta)  # between two captions' embeddings
                loss_g = loss_g + g_loss_nonsaturating(self._D(self._G(z_int, h_bar), h_bar).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        probs = [torch.sigmoid(l).mean() for l in (l_real, l_wrong, l_fake) if l is not None]
        self.history.append(self.step, loss_d, loss_g, *probs)

    def networks(self) -> list[torch.nn.Module]:
        return [self.G, self.D]

    def training_images(self) -> dict[str, torch.Tensor]:
        return {"images": self.images}

    def data_fingerprint(self) -> dict[str, dict]:
        """The images' fingerprint and the labels' (the captions are made from both)."""
        fingerprint = super().data_fingerprint()
        fingerprint["labels"] = {"shape": [len(self.labels)],
                                 "sha256": hashlib.sha256(self.labels.numpy().tobytes()).hexdigest()}
        return fingerprint

    def snapshot_captions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept grids' caption embeddings (n, text_dim) and noise (n, z_dim) (:func:`snapshot_layout`)."""
        codes, z_idx, _ = snapshot_layout(self.config.n_samples)
        h = self.embed_meanings(codes, torch.zeros_like(codes))
        return h, self.fixed_z[z_idx]

    def snapshot(self) -> None:
        """Record ``(step, G(fixed_z, fixed captions))`` in ``snapshots``."""
        h, z = self.snapshot_captions()
        self.snapshots.append((self.step, self.generate(z, h)))

    # ------------------------------------------------------------------ checkpoints
    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.caption_table = self._caption_table()  # the restored encoder's codes
