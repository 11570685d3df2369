"""GAN-CLS (Reed et al. 2016, "Generative adversarial text to image synthesis"), in miniature.

Three networks:

- :class:`TextEncoder` ``phi``: caption indices (N, L) -> text embedding ``h`` (N, text_dim): word
  embeddings read by a GRU, whose state after the last word goes through a linear layer and a tanh.
  The paper pretrains its encoder (a char-CNN-RNN matched to images) and keeps it fixed while the GAN
  trains; ours is pretrained too, with :func:`pretrain_text_encoder`, to *read* a caption's four facts
  (digit, thickness, slant, size) from its words in any template, and is then frozen. It never sees an
  image: what "thick" looks like is left to the GAN.
- :class:`TextConditionedGenerator` ``G(z, h)``: ``h`` is compressed by a linear layer and a
  LeakyReLU(0.2) to ``proj_dim`` numbers (the paper's 128), concatenated with the noise ``z`` and fed to
  the DCGAN generator (:class:`gancourse.deep.dcgan.DCGANGenerator`).
- :class:`MatchingAwareDiscriminator` ``D(x, h)``: strided convolutions bring the image to a 4x4 map;
  ``h``, compressed by its own linear layer and LeakyReLU, is repeated over the 4x4 positions and
  concatenated depthwise; a 1x1 convolution (batch norm, LeakyReLU) mixes image and text, and a 4x4
  convolution gives one logit per pair. ``features(x)`` and ``score(f, h)`` split the two halves so a
  real batch is convolved once and scored with its right and its wrong captions.

The discriminator's loss of Algorithm 1 (:func:`d_loss_matching`), written for logits ``l = logit D``:

    L_D = -log s_r - (log(1 - s_w) + log(1 - s_f)) / 2
        = E softplus(-l_r) + (E softplus(l_w) + E softplus(l_f)) / 2,

with ``s_r = D(x, h)`` (real image, right text), ``s_w = D(x, h_wrong)`` (real image, wrong text) and
``s_f = D(G(z, h), h)`` (generated image, right text). Without the wrong-text term it is the plain
conditional loss ``E softplus(-l_r) + E softplus(l_f)``. The generator minimises ``-log s_f``; GAN-INT
adds ``-log D(G(z, h_bar), h_bar)`` at interpolated embeddings ``h_bar = beta h_1 + (1 - beta) h_2``
(:func:`interpolate_text`), ``beta = 0.5`` in the paper.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.captions import ATTRIBUTES, VOCABULARY, Vocabulary, all_captions, decode_meaning
from gancourse.deep.dcgan import DCGANGenerator, init_dcgan_weights
from gancourse.deep.losses import d_loss_bce
from gancourse.errors import check_positive, check_positive_int

__all__ = ["TextEncoder", "pretrain_text_encoder", "TextConditionedGenerator", "MatchingAwareDiscriminator",
           "d_loss_matching", "interpolate_text"]


class TextEncoder(nn.Module):
    """``phi(t)``: padded word indices (N, L) (0 = padding) -> embeddings (N, text_dim) in (-1, 1).

    ``embedding (V, embed_dim) -> GRU(hidden) -> state after the last word -> linear -> tanh``.
    """

    def __init__(self, vocab_size: int = len(VOCABULARY), embed_dim: int = 32, hidden: int = 64,
                 text_dim: int = 32):
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size, minimum=2)
        self.text_dim = check_positive_int("text_dim", text_dim)
        self.embed = nn.Embedding(vocab_size, check_positive_int("embed_dim", embed_dim), padding_idx=0)
        self.gru = nn.GRU(embed_dim, check_positive_int("hidden", hidden), batch_first=True)
        self.out = nn.Linear(hidden, text_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be int64 indices of shape (N, L), got {tuple(tokens.shape)} {tokens.dtype}")
        lengths = (tokens != 0).sum(dim=1)  # (N,)
        if bool((lengths == 0).any()):
            raise ValueError("every caption needs at least one word (a row of tokens is all padding)")
        if bool((tokens >= self.vocab_size).any()) or bool((tokens < 0).any()):
            raise ValueError(f"token indices must lie in 0..{self.vocab_size - 1}")
        states, _ = self.gru(self.embed(tokens))  # (N, L) -> (N, L, E) -> (N, L, hidden)
        last = states[torch.arange(len(tokens), device=tokens.device), lengths - 1]  # (N, hidden): after the last word
        return torch.tanh(self.out(last))  # (N, text_dim)


def pretrain_text_encoder(encoder: TextEncoder, steps: int = 300, lr: float = 3e-3,
                          vocabulary: Vocabulary = VOCABULARY) -> dict[str, float]:
    """Teach ``encoder`` to read captions, then freeze it (``requires_grad`` off, eval mode).

    On every caption the templates write (:func:`gancourse.deep.captions.all_captions`, one full batch),
    linear heads on the embedding predict the digit (cross-entropy over 10) and the three attribute
    words (binary cross-entropy), trained with Adam for ``steps`` steps. Returns the final loss and the
    heads' accuracies (``digit`` and each attribute, on the same captions). Deterministic given the
    encoder's initial weights; the heads are drawn from the global generator (fork it to keep it).
    """
    steps = check_positive_int("steps", steps)
    check_positive("lr", lr)
    captions, codes = all_captions()
    device = next(encoder.parameters()).device
    tokens = vocabulary.encode(captions).to(device)  # (80 T, L)
    digits, bits = decode_meaning(codes)
    digits, bits = digits.to(device), bits.float().to(device)  # (80 T,), (80 T, 3)
    heads = nn.Linear(encoder.text_dim, 10 + len(ATTRIBUTES)).to(device)
    opt = torch.optim.Adam([*encoder.parameters(), *heads.parameters()], lr=lr)
    encoder.train()
    for _ in range(steps):
        out = heads(encoder(tokens))  # (80 T, 13)
        loss = F.cross_entropy(out[:, :10], digits) + F.binary_cross_entropy_with_logits(out[:, 10:], bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        out = heads(encoder(tokens))
        acc = {"digit": float((out[:, :10].argmax(1) == digits).float().mean())}
        acc.update({name: float(((out[:, 10 + i] > 0).float() == bits[:, i]).float().mean())
                    for i, name in enumerate(ATTRIBUTES)})
    return {"loss": float(loss.detach()), **acc}


def _text_projection(text_dim: int, proj_dim: int) -> nn.Sequential:
    """The paper's compression of the embedding: linear to ``proj_dim``, LeakyReLU(0.2)."""
    return nn.Sequential(nn.Linear(check_positive_int("text_dim", text_dim), check_positive_int("proj_dim", proj_dim)),
                         nn.LeakyReLU(0.2))


class TextConditionedGenerator(nn.Module):
    """``G(z, h)``: noise (N, z_dim) and text embeddings (N, text_dim) -> images (N, C, S, S) in [-1, 1].

    The convolutions have DCGAN's N(0, 0.02) initialisation; the text projection keeps torch's default,
    whose outputs are of the order of the noise's (N(0, 0.02) would start the text ten times fainter).
    """

    def __init__(self, z_dim: int = 100, text_dim: int = 32, proj_dim: int = 32, channels: int = 1,
                 width: int = 64, image_size: int = 32):
        super().__init__()
        self.z_dim, self.text_dim = check_positive_int("z_dim", z_dim), text_dim
        self.project = _text_projection(text_dim, proj_dim)
        self.net = DCGANGenerator(z_dim + proj_dim, channels, width, image_size)  # DCGAN's own initialisation

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim or h.shape != (len(z), self.text_dim):
            raise ValueError(f"z must have shape (N, {self.z_dim}) and h (N, {self.text_dim}), got "
                             f"{tuple(z.shape)} and {tuple(h.shape)}")
        return self.net(torch.cat([z, self.project(h)], dim=1))  # (N, z_dim + proj_dim) -> (N, C, S, S)


class MatchingAwareDiscriminator(nn.Module):
    """``D(x, h)``: images (N, C, S, S) and text embeddings (N, text_dim) -> logits (N,) of "real and matching"."""

    def __init__(self, text_dim: int = 32, proj_dim: int = 32, channels: int = 1, width: int = 64,
                 image_size: int = 32):
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8 \
                or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size!r}")
        self.channels, self.image_size, self.text_dim = channels, image_size, text_dim
        c = check_positive_int("width", width)
        layers: list[nn.Module] = [nn.Conv2d(check_positive_int("channels", channels), c, 4, 2, 1),
                                   nn.LeakyReLU(0.2, True)]  # no batch norm on the input
        size = image_size // 2
        while size > 4:  # (N, c, s, s) -> (N, 2c, s/2, s/2)
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            c, size = 2 * c, size // 2
        self.trunk = nn.Sequential(*layers)
        self.feature_channels = c
        self.project = _text_projection(text_dim, proj_dim)
        self.joint = nn.Sequential(
            nn.Conv2d(c + proj_dim, c, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, True),  # 1x1: mix
            nn.Conv2d(c, 1, 4, 1, 0), nn.Flatten(0),  # (N, c, 4, 4) -> (N,)
        )
        self.trunk.apply(init_dcgan_weights)  # the projections keep torch's default: N(0, 0.02) would mute the text
        self.joint.apply(init_dcgan_weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The image half: (N, C, S, S) -> (N, c, 4, 4)."""
        want = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, want))}), got {tuple(x.shape)}")
        return self.trunk(x)

    def score(self, f: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The joint half: image features (N, c, 4, 4) and embeddings (N, text_dim) -> logits (N,)."""
        if h.shape != (len(f), self.text_dim):
            raise ValueError(f"h must have shape ({len(f)}, {self.text_dim}), got {tuple(h.shape)}")
        t = self.project(h)[:, :, None, None].expand(-1, -1, *f.shape[2:])  # (N, P) -> (N, P, 4, 4)
        return self.joint(torch.cat([f, t], dim=1))  # (N, c + P, 4, 4) -> (N,)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x), h)


def d_loss_matching(real_right: torch.Tensor, fake_right: torch.Tensor,
                    real_wrong: torch.Tensor | None = None) -> torch.Tensor:
    """The discriminator's loss of GAN-CLS (Algorithm 1), on logits (N,) each:

    ``E softplus(-l_r) + (E softplus(l_w) + E softplus(l_f)) / 2``, which is the average of two BCE losses
    :func:`gancourse.deep.losses.d_loss_bce`: (real-right vs real-wrong) and (real-right vs fake-right).
    With ``real_wrong=None`` (no wrong-text term): ``E softplus(-l_r) + E softplus(l_f)``.
    """
    if real_wrong is None:
        return d_loss_bce(real_right, fake_right)
    return 0.5 * (d_loss_bce(real_right, real_wrong) + d_loss_bce(real_right, fake_right))


def interpolate_text(h1: torch.Tensor, h2: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """GAN-INT's embeddings between captions: ``beta h1 + (1 - beta) h2`` (same shapes; ``beta`` a number
    or a tensor that broadcasts, e.g. (K, 1) for K steps between two embeddings)."""
    if h1.shape != h2.shape:
        raise ValueError(f"h1 and h2 must have the same shape, got {tuple(h1.shape)} and {tuple(h2.shape)}")
    return beta * h1 + (1 - beta) * h2
