"""A small LeNet for 32x32 digits: the feature extractor behind FD-LeNet and the classifier score.

Architecture (LeCun et al. 1998, "Gradient-based learning applied to document recognition", with
ReLU and max-pooling and wider layers):

    (N, 1, 32, 32) -> conv 5x5, 16 -> ReLU -> maxpool 2 -> (N, 16, 14, 14)
                   -> conv 5x5, 32 -> ReLU -> maxpool 2 -> (N, 32, 5, 5)
                   -> flatten 800 -> linear 128 -> ReLU      = features (N, 128)
                   -> linear 10                              = logits   (N, 10)

The course trains it with ``scripts/train_lenet.py`` on the MNIST-5k training split and commits the
weights as ``data/lenet_mnist5k.pt`` with their record ``data/lenet_mnist5k.json``; ``load_lenet``
reads them after checking their SHA-256 against the record.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.deep.checkpoint import is_git_lfs_pointer
from gancourse.deep.idx import ChecksumError, sha256_of
from gancourse.deep.runtime import eval_mode

__all__ = [
    "FEATURE_DIM",
    "LENET_PATH",
    "LENET_INFO_PATH",
    "LeNet",
    "to_grayscale",
    "random_shift",
    "train_lenet",
    "accuracy",
    "load_lenet",
    "lenet_info",
]

FEATURE_DIM = 128
_REPO = Path(__file__).resolve().parents[2]
LENET_PATH = _REPO / "data" / "lenet_mnist5k.pt"
LENET_INFO_PATH = _REPO / "data" / "lenet_mnist5k.json"


def to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 1, H, W) by ITU-R BT.601 luma, ``0.299 R + 0.587 G + 0.114 B``.

    One-channel input is returned unchanged. The LeNet only knows white digits on black; a coloured
    MNIST-M-style image turned grey is still far from that, so use this for images translated *to* the
    MNIST domain, not to judge the colour domain itself.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be a tensor (N, 1 or 3, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return torch.einsum("nchw,c->nhw", x, w)[:, None]  # (N, 3, H, W) -> (N, 1, H, W)


class LeNet(nn.Module):
    """LeNet for (N, 1, 32, 32) images in [-1, 1]: ``forward`` gives logits (N, 10), ``features`` (N, 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(32 * 5 * 5, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, 10)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 32, 32):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            hint = " (use to_grayscale for 3-channel images)" if isinstance(x, torch.Tensor) and x.ndim == 4 \
                and x.shape[1] == 3 else ""
            raise ValueError(f"LeNet input must have shape (N, 1, 32, 32), got {got}{hint}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, 128): the features FD-LeNet compares."""
        self._check(x)
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 1, 32, 32) -> (N, 16, 14, 14)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # -> (N, 32, 5, 5)
        return F.relu(self.fc1(h.flatten(1)))  # (N, 800) -> (N, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, 10)."""
        return self.fc2(self.features(x))


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random integer offset in [-max_shift, max_shift]^2,
    filling with background (-1). Shape is kept: (N, C, H, W) -> (N, C, H, W)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)  # (N, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * s + 1, (2, n), generator=generator)
    rows = dy[:, None] + torch.arange(h)  # (N, H)
    cols = dx[:, None] + torch.arange(w)  # (N, W)
    n_idx = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[n_idx, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def train_lenet(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    max_shift: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> LeNet:
    """Train a fresh LeNet with Adam and a cosine learning-rate decay to 0, on random shifts of ``x``.

    x : (N, 1, 32, 32) in [-1, 1], y : (N,) int64. Everything random comes from ``seed``.
    """
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 32, 32):
        raise ValueError(f"x must have shape (N, 1, 32, 32), got {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start: start + batch_size]
            xb = random_shift(x[idx], max_shift, gen)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}", flush=True)
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` whose arg-max logit equals ``y`` (``model`` in eval mode, then back in its own)."""
    dev = next(model.parameters()).device
    hits = 0
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            pred = model(x[start: start + batch_size].to(dev)).argmax(1).cpu()
            hits += int((pred == y[start: start + batch_size]).sum())
    return hits / len(x)


_CACHE: dict[tuple[str, str], LeNet] = {}



def _restore_hint() -> str:
    """The sentence every error about the weights ends with: how to get good ones back."""
    rel = LENET_PATH.relative_to(_REPO) if LENET_PATH.is_relative_to(_REPO) else LENET_PATH
    return (
        f"To fix it, restore the committed file with `git checkout -- {rel.as_posix()}` (after `git lfs pull` "
        f"if the repository uses git-lfs), or retrain it with `python scripts/train_lenet.py`."
    )


def _check_weights_file(path: Path, info_path: Path) -> None:
    """Refuse a weights file that is missing, a git-lfs pointer, or not the one ``info_path`` records."""
    if not path.is_file():
        raise FileNotFoundError(f"the LeNet weights {path} are missing; make them with `python scripts/train_lenet.py`")
    if is_git_lfs_pointer(path):
        raise ValueError(
            f"{path} is a git-lfs pointer file, not the LeNet weights (the repository was cloned without "
            f"git-lfs): fetch the real file with `git lfs pull`, or retrain it with `python scripts/train_lenet.py`."
        )
    expected = str(lenet_info(info_path).get("sha256", "")).strip().lower()
    got = sha256_of(path)
    if got != expected:
        raise ChecksumError(
            f"the LeNet weights {path} are damaged or are not the recorded ones: their SHA-256 differs from "
            f"the record {info_path}\n  expected: {expected or '(none recorded)'}\n  got:      {got}\n"
            f"Do not use them for FD-LeNet. {_restore_hint()}"
        )


def load_lenet(
    device: torch.device | str | None = None,
    *,
    path: str | Path | None = None,
    info_path: str | Path | None = None,
) -> LeNet:
    """The committed LeNet (``data/lenet_mnist5k.pt``) in eval mode on ``device`` (default: CPU).

    Before loading, the file's SHA-256 is checked against the record ``info_path`` (default: the
    committed ``data/lenet_mnist5k.json``), so a damaged copy, a git-lfs pointer or weights that are
    not the recorded ones raise a ``ValueError`` that names the file and how to restore it; so do
    weights holding NaN or inf. ``path`` loads another copy of the weights (checked against the same
    record unless ``info_path`` names another one).

    The same model object is returned for repeated calls with the same file and device; do not train it.
    """
    path = Path(LENET_PATH if path is None else path)
    info_path = Path(LENET_INFO_PATH if info_path is None else info_path)
    dev = torch.device("cpu" if device is None else device)
    key = (str(path.resolve()), str(dev))
    if key not in _CACHE:
        _check_weights_file(path, info_path)
        model = LeNet()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # the hash matched a record, yet torch cannot read it as LeNet weights
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ValueError(f"{path} cannot be read as LeNet weights ({type(exc).__name__}: {first}). "
                             f"{_restore_hint()}") from None
        bad = [name for name, p in model.state_dict().items() if not torch.isfinite(p).all()]
        if bad:
            raise ValueError(
                f"the LeNet weights {path} hold NaN or inf (in {', '.join(bad)}), so they cannot give "
                f"features. {_restore_hint()}"
            )
        for p in model.parameters():
            p.requires_grad_(False)
        _CACHE[key] = model.to(dev).eval()
    return _CACHE[key]


def lenet_info(path: str | Path | None = None) -> dict:
    """The record written next to the weights (default: the committed one): held-out accuracy, seed,
    epochs, split sizes, hash."""
    path = Path(LENET_INFO_PATH if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with `python scripts/train_lenet.py`")
    try:
        info = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the LeNet record {path} is not valid JSON ({exc}). {_restore_hint()}") from None
    if not isinstance(info, dict):
        raise ValueError(f"the LeNet record {path} must hold a JSON object, got {type(info).__name__}")
    return info


def _n_params(model: nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))
