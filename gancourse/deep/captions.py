"""Captions for MNIST digits, written from attributes measured on each image, and the words they use.

GAN-CLS (Reed et al. 2016) learns from images paired with sentences. MNIST has no sentences, so we write
them: each digit gets three attributes measured from its pixels (ink weights ``w = (x + 1) / 2`` of an
image ``x`` in [-1, 1]),

- **thickness**, from the ink mass ``m = mean(w)`` (the share of the frame covered by ink): "thin" / "thick";
- **slant**, from the principal axis of the ink (second central moments ``mu20, mu02, mu11`` of ``w``): the
  axis lies at ``theta = 1/2 atan2(2 mu11, mu20 - mu02)`` from the horizontal, and the tilt from the
  vertical is ``90 - |theta|`` degrees: "upright" / "slanted";
- **size**, from the area of the bounding box of the pixels brighter than mid-grey: "small" / "large"
  (MNIST scaled every digit to fit a 20x20 box, so this mostly measures the width),

each cut at the **median of the training digits of the same class** (:class:`AttributeThresholds`): a
"thick one" and a "thick eight" are thick for a one and for an eight, every word is used by about half of
each class, and the attribute words carry no information about the digit word. The caption puts the
class word and the three attribute words into one of several :data:`TEMPLATES` with different word
orders, so a reader must recognise the words, not their positions: "a thick upright small seven", "the
seven is small, thick and upright", ...

:class:`Vocabulary` turns captions into padded index tensors and back; a word it does not know is refused
with a ValueError that lists the words it knows.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gancourse.errors import check_positive_int

__all__ = [
    "DIGIT_WORDS", "ATTRIBUTES", "ATTRIBUTE_WORDS", "TEMPLATES", "N_MEANINGS", "PAD",
    "ink_mass", "tilt_degrees", "box_area", "measure_attributes",
    "AttributeThresholds", "caption", "captions_for", "meaning_code", "decode_meaning", "all_captions",
    "normalize", "Vocabulary", "VOCABULARY",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: the measured attributes, in the column order of :func:`measure_attributes`
ATTRIBUTES = ("thickness", "slant", "size")
#: the word for below (index 0) and above (index 1) the class median of each attribute
ATTRIBUTE_WORDS = {"thickness": ("thin", "thick"), "slant": ("upright", "slanted"), "size": ("small", "large")}
#: caption templates: the same four facts in different word orders
TEMPLATES = (
    "a {thickness} {slant} {size} {digit}",
    "a {size} {digit}, {thickness} and {slant}",
    "{digit}: {slant}, {size}, {thickness}",
    "the {digit} is {size}, {thickness} and {slant}",
    "the {slant} {digit} drawn {thickness} and {size}",
    "{thickness} and {size}, the {slant} {digit}",
)
#: distinct meanings: a digit and one word for each attribute, 10 * 2**3
N_MEANINGS = 10 * 2 ** len(ATTRIBUTES)
PAD = "<pad>"
_INK_LEVEL = 0.0  # a pixel counts for the bounding box when brighter than mid-grey (0 in [-1, 1])


def _check_images(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be a tensor (N, 1, H, W) in [-1, 1], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    return x.detach().float().cpu()


def ink_mass(x: torch.Tensor) -> torch.Tensor:
    """The share of the frame covered by ink, ``mean((x + 1) / 2)``: (N, 1, H, W) in [-1, 1] -> (N,)."""
    w = (_check_images(x)[:, 0] + 1) / 2  # (N, H, W) in [0, 1]
    return w.mean(dim=(1, 2))


def tilt_degrees(x: torch.Tensor) -> torch.Tensor:
    """The angle between the ink's principal axis and the vertical, in degrees in [0, 90]: (N, 1, H, W) -> (N,).

    With ink weights ``w = (x + 1) / 2`` and the central moments ``mu20 = E[(c - c_bar)^2]``,
    ``mu02 = E[(r - r_bar)^2]``, ``mu11 = E[(c - c_bar)(r - r_bar)]`` (c: column, r: row, weighted by w),
    the major axis lies at ``theta = 1/2 atan2(2 mu11, mu20 - mu02)`` from the horizontal and the tilt is
    ``90 - |theta|`` in degrees: 0 for a vertical bar, 45 for a diagonal, 90 for a horizontal bar.
    An image without ink has tilt 0.
    """
    w = (_check_images(x)[:, 0] + 1).double() / 2  # (N, H, W)
    _, h, wd = w.shape
    rows = torch.arange(h, dtype=w.dtype)[None, :, None]  # (1, H, 1)
    cols = torch.arange(wd, dtype=w.dtype)[None, None, :]  # (1, 1, W)
    mass = w.sum(dim=(1, 2)).clamp_min(1e-12)  # (N,)
    r_bar = (w * rows).sum(dim=(1, 2)) / mass  # (N,)
    c_bar = (w * cols).sum(dim=(1, 2)) / mass
    dr, dc = rows - r_bar[:, None, None], cols - c_bar[:, None, None]  # (N, H, 1), (N, 1, W)
    mu20 = (w * dc * dc).sum(dim=(1, 2)) / mass
    mu02 = (w * dr * dr).sum(dim=(1, 2)) / mass
    mu11 = (w * dc * dr).sum(dim=(1, 2)) / mass
    theta = 0.5 * torch.atan2(2 * mu11, mu20 - mu02)  # (N,) in (-pi/2, pi/2]
    return (90.0 - theta.abs() * 180.0 / math.pi).float()


def box_area(x: torch.Tensor) -> torch.Tensor:
    """The area in pixels of the bounding box of the pixels brighter than mid-grey: (N, 1, H, W) -> (N,).

    An image with no such pixel has area 0.
    """
    ink = _check_images(x)[:, 0] > _INK_LEVEL  # (N, H, W)
    any_row, any_col = ink.any(dim=2), ink.any(dim=1)  # (N, H), (N, W)

    def span(mask: torch.Tensor) -> torch.Tensor:  # (N, L) -> (N,): last - first + 1, 0 where empty
        idx = torch.arange(mask.shape[1])
        first = torch.where(mask, idx, mask.shape[1]).amin(dim=1)
        last = torch.where(mask, idx, -1).amax(dim=1)
        return (last - first + 1).clamp_min(0)

    return (span(any_row) * span(any_col)).float()


def measure_attributes(x: torch.Tensor) -> torch.Tensor:
    """Ink mass, tilt (degrees) and bounding-box area of each image: (N, 1, H, W) -> (N, 3), columns in
    the order of :data:`ATTRIBUTES`."""
    return torch.stack([ink_mass(x), tilt_degrees(x), box_area(x)], dim=1)


@dataclass(frozen=True)
class AttributeThresholds:
    """Per-class medians of the three measurements: ``medians`` (10, 3), rows digits, columns :data:`ATTRIBUTES`.

    A digit's word for an attribute is the upper one ("thick", "slanted", "large") when its measurement is
    strictly above the median of its class, else the lower one.
    """

    medians: torch.Tensor

    @classmethod
    def fit(cls, images: torch.Tensor, labels: torch.Tensor) -> AttributeThresholds:
        """The medians of each class's measurements (every class must be present)."""
        values = measure_attributes(images)  # (N, 3)
        labels = _check_labels(labels, len(values))
        missing = [d for d in range(10) if not bool((labels == d).any())]
        if missing:
            raise ValueError(f"every digit needs training images to fit its thresholds; none of {missing}")
        medians = torch.stack([values[labels == d].median(dim=0).values for d in range(10)])  # (10, 3)
        return cls(medians)

    def words(self, values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Upper-word indicators (N, 3) int64 (1: thick / slanted / large) of measurements ``values`` (N, 3)."""
        labels = _check_labels(labels, len(values))
        return (values > self.medians[labels]).long()  # (N, 3) > (N, 3)

    def attributes(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:meth:`words` of the measurements of ``images``: (N, 3) int64."""
        return self.words(measure_attributes(images), labels)


def _check_labels(labels: torch.Tensor, n: int) -> torch.Tensor:
    labels = torch.as_tensor(labels).long().cpu()
    if labels.shape != (n,) or (n and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"labels must be digits 0..9 of shape ({n},), got {tuple(labels.shape)}")
    return labels


def caption(digit: int, attributes: Sequence[int], template: int = 0) -> str:
    """The caption of ``digit`` with upper-word indicators ``attributes`` (thick, slanted, large) in
    template ``template``: ``caption(7, (1, 0, 0))`` is "a thick upright small seven"."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must lie in 0..9, got {digit!r}")
    if len(attributes) != len(ATTRIBUTES) or any(int(a) not in (0, 1) for a in attributes):
        raise ValueError(f"attributes must be {len(ATTRIBUTES)} indicators 0/1 ({', '.join(ATTRIBUTES)}), "
                         f"got {tuple(attributes)!r}")
    if not 0 <= int(template) < len(TEMPLATES):
        raise ValueError(f"template must lie in 0..{len(TEMPLATES) - 1}, got {template!r}")
    words = {name: ATTRIBUTE_WORDS[name][int(a)] for name, a in zip(ATTRIBUTES, attributes)}
    return TEMPLATES[int(template)].format(digit=DIGIT_WORDS[int(digit)], **words)


def captions_for(labels: torch.Tensor, attributes: torch.Tensor, templates: torch.Tensor) -> list[str]:
    """One caption per digit: labels (N,), attribute indicators (N, 3), template indices (N,)."""
    return [caption(int(d), a.tolist(), int(t)) for d, a, t in zip(labels, attributes, templates)]


def meaning_code(labels: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """What a caption says as one integer in [0, 80): ``8 digit + 4 thick + 2 slanted + large``: (N,) int64."""
    bits = attributes.long() * torch.tensor([4, 2, 1])  # (N, 3)
    return torch.as_tensor(labels).long() * 8 + bits.sum(dim=1)


def decode_meaning(code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`meaning_code`: (N,) -> labels (N,), attribute indicators (N, 3)."""
    code = torch.as_tensor(code).long()
    bits = torch.stack([(code >> 2) & 1, (code >> 1) & 1, code & 1], dim=1)  # (N, 3)
    return code // 8, bits


def all_captions() -> tuple[list[str], torch.Tensor]:
    """Every caption the templates can write, and its meaning code: ``N_MEANINGS * len(TEMPLATES)`` of them,
    ordered meaning-major (caption ``k`` has meaning ``k // len(TEMPLATES)``, template ``k % len(TEMPLATES)``)."""
    codes = torch.arange(N_MEANINGS).repeat_interleave(len(TEMPLATES))  # (80 T,)
    labels, bits = decode_meaning(codes)
    templates = torch.arange(len(TEMPLATES)).repeat(N_MEANINGS)
    return captions_for(labels, bits, templates), codes


_PUNCTUATION = ",.;:!?"


def normalize(text: str) -> list[str]:
    """The words of a caption: lower case, split at white space, punctuation ``,.;:!?`` dropped."""
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__}")
    return [w for w in (t.strip(_PUNCTUATION) for t in text.lower().split()) if w]


class Vocabulary:
    """Words <-> indices; index 0 is the padding ``<pad>``.

    ``encode(captions)`` gives a padded int64 tensor (N, L) with L the longest caption's length (or
    ``length``); ``decode(tokens)`` gives the captions back as normalized text.
    """

    def __init__(self, words: Sequence[str]):
        unique = sorted(set(words) - {PAD})
        self.words: tuple[str, ...] = (PAD, *unique)
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def tokenize(self, text: str) -> list[int]:
        """The indices of a caption's words; an unknown word raises a ValueError listing the known ones."""
        words = normalize(text)
        if not words:
            raise ValueError(f"the caption {text!r} has no words")
        unknown = [w for w in words if w not in self.index or w == PAD]
        if unknown:
            raise ValueError(f"unknown word {unknown[0]!r} in the caption {text!r}; the vocabulary has "
                             f"{len(self) - 1} words: {', '.join(self.words[1:])}")
        return [self.index[w] for w in words]

    def encode(self, captions: Sequence[str] | str, length: int | None = None) -> torch.Tensor:
        """Captions -> padded indices (N, L) int64 (0 = padding); a single string gives (1, L)."""
        if isinstance(captions, str):
            captions = [captions]
        if len(captions) == 0:
            raise ValueError("encode needs at least one caption")
        ids = [self.tokenize(c) for c in captions]
        longest = max(map(len, ids))
        length = longest if length is None else check_positive_int("length", length)
        if longest > length:
            raise ValueError(f"a caption has {longest} words, more than length={length}")
        out = torch.zeros(len(ids), length, dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Padded indices (N, L) -> captions, words joined by single spaces (padding dropped)."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (N, L), got {tuple(tokens.shape)}")
        return [" ".join(self.words[i] for i in row.tolist() if i != 0) for row in tokens]


def _template_words() -> list[str]:
    words = [w for t in TEMPLATES for w in normalize(re.sub(r"\{\w+\}", " ", t))]
    return words + list(DIGIT_WORDS) + [w for pair in ATTRIBUTE_WORDS.values() for w in pair]


#: the vocabulary of every caption the templates write
VOCABULARY = Vocabulary(_template_words())
