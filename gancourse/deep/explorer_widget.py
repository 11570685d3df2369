"""The image-track explorer: latent walks and the truncation trick on a trained generator, drawn in the browser.

For codes ``z ~ N(0, I)`` the explorer shows

- a **walk** from ``z_a`` to ``z_b`` (seeded by ``seed_a`` and ``seed_b``) in ``n_walk`` frames, along a great
  circle (``slerp``) or a straight line (``lerp``; ``gancourse.deep.latent.interpolate_latents``), and the image at
  any position ``t`` in ``[0, 1]`` of it;
- the **truncation trick**: every code is pulled towards the prior's mean, ``z_psi = psi z`` (the mean of
  ``N(0, I)`` is 0; StyleGAN writes ``w' = w_mean + psi (w - w_mean)`` in its W space). ``psi < 1`` trades
  diversity for typical, cleaner samples, ``psi = 0`` gives one image for every code, ``psi > 1`` exaggerates;
- a grid of samples from fixed codes at the current ``psi``, with its *diversity*: the per-pixel standard
  deviation across the grid, averaged over pixels (0 at ``psi = 0``).

The kernel runs the generator (any ``generate(z) -> (N, C, S, S)`` images in [-1, 1], such as
``GANTrainer.generate``) and sends the images as float32 buffers in [0, 1]; the browser draws them on canvases.
Images are cached per code set, so moving ``t`` runs the generator on one code only.

>>> explorer = image_explorer(trainer)          # doctest: +SKIP
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import traitlets

try:
    import anywidget
except ImportError as exc:  # pragma: no cover - anywidget comes with the dev and notebooks extras
    raise ImportError('the image explorer needs anywidget: python -m pip install -e ".[dev]"') from exc

from gancourse.deep.latent import interpolate_latents, lerp, slerp
from gancourse.errors import check_positive_int
from gancourse.options import check_choices, option
from gancourse.viz.widget_io import STATIC, RequestedFrames, f32, json_safe, module_source

__all__ = ["ImageExplorerSettings", "CONTROLS", "CONTROL_SPECS", "truncate", "latent_codes", "ImageExplorer",
           "image_frame", "diversity", "ImageExplorerWidget", "image_explorer"]

CONTROLS = ("seed_a", "seed_b", "method", "t", "psi")
PSI_RANGE = (0.0, 1.5)


@dataclass(frozen=True)
class ImageExplorerSettings:
    """One position of the explorer's controls."""

    seed_a: int = option(0, "seed of the walk's first code z_a")
    seed_b: int = option(1, "seed of the walk's last code z_b")
    method: str = option("slerp", "the path from z_a to z_b: a great circle or a straight line",
                         choices=("slerp", "lerp"))
    t: float = option(0.5, "position along the walk, in [0, 1]")
    psi: float = option(1.0, "truncation: every code z becomes psi z; in [0, 1.5]")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("seed_a", "seed_b"):
            check_positive_int(name, getattr(self, name), minimum=0)
        for name, (lo, hi) in (("t", (0.0, 1.0)), ("psi", PSI_RANGE)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")
            object.__setattr__(self, name, float(v))

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ImageExplorerSettings:
        """Settings from a mapping of field names (unknown names are refused with the valid ones)."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown image-explorer settings {unknown}; valid ones are: {', '.join(names)}")
        return cls(**values)


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """The truncation trick for a standard normal prior: ``z_psi = mean + psi (z - mean) = psi z``."""
    return float(psi) * z


def latent_codes(seed: int, n: int, z_dim: int) -> torch.Tensor:
    """``n`` codes ``z ~ N(0, I)`` of dimension ``z_dim`` from their own generator seeded by ``seed``: (n, z_dim)."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(int(seed)))


def diversity(images: np.ndarray) -> float:
    """The per-pixel standard deviation across ``images`` (N, ...), averaged over the pixels."""
    return float(np.asarray(images, dtype=np.float64).std(axis=0).mean())


class ImageExplorer:
    """Walks and truncated samples of one generator, cached per set of codes (see the module doc).

    ``generate(z)`` maps codes (N, z_dim) to images (N, C, S, S) in [-1, 1]; the images come back as float32
    arrays (N, S, S, C) in [0, 1]. ``n_walk`` frames per walk, a ``grid`` x ``grid`` sample grid from the codes of
    ``grid_seed``. ``threads``: torch's CPU threads while generating (None: leave them), one by default: for a
    few dozen small images one thread is steadiest, where a busy second core can make two threads many times
    slower.
    """

    def __init__(self, generate: Callable[[torch.Tensor], torch.Tensor], z_dim: int, *, n_walk: int = 10,
                 grid: int = 6, grid_seed: int = 1234, cache: int = 64, threads: int | None = 1) -> None:
        self.generate = generate
        self.threads = None if threads is None else check_positive_int("threads", threads)
        self.z_dim = check_positive_int("z_dim", z_dim)
        self.n_walk = check_positive_int("n_walk", n_walk, minimum=2)
        self.grid = check_positive_int("grid", grid)
        self.grid_codes = latent_codes(grid_seed, self.grid**2, self.z_dim)
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_size = check_positive_int("cache", cache)

    def images(self, z: torch.Tensor) -> np.ndarray:
        """``generate(z)`` as float32 (N, S, S, C) in [0, 1]."""
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            with torch.no_grad():
                x = self.generate(z).detach().float().cpu()
        finally:
            torch.set_num_threads(before)
        if x.ndim != 4 or x.shape[0] != len(z):
            raise ValueError(f"generate must return images (N, C, S, S) for N = {len(z)} codes, got {tuple(x.shape)}")
        return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)

    def _cached(self, key: tuple, make: Callable[[], torch.Tensor]) -> np.ndarray:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        out = self.images(make())
        self._cache[key] = out
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def endpoints(self, s: ImageExplorerSettings) -> tuple[torch.Tensor, torch.Tensor]:
        return latent_codes(s.seed_a, 1, self.z_dim)[0], latent_codes(s.seed_b, 1, self.z_dim)[0]

    def walk_code(self, s: ImageExplorerSettings, t: float | None = None) -> torch.Tensor:
        """The (untruncated) code at position ``t`` (default ``s.t``) of the walk of ``s``: (z_dim,)."""
        z0, z1 = self.endpoints(s)
        t = s.t if t is None else float(t)
        return (slerp if s.method == "slerp" else lerp)(z0, z1, torch.tensor([t]))[0]

    def walk(self, s: ImageExplorerSettings) -> np.ndarray:
        """The walk's ``n_walk`` images, truncated by ``psi``: (n_walk, S, S, C)."""
        key = ("walk", s.seed_a, s.seed_b, s.method, s.psi)
        return self._cached(key, lambda: truncate(interpolate_latents(*self.endpoints(s), n=self.n_walk,
                                                                      method=s.method), s.psi))

    def at(self, s: ImageExplorerSettings) -> np.ndarray:
        """The image at position ``t`` of the walk, truncated by ``psi``: (1, S, S, C)."""
        key = ("at", s.seed_a, s.seed_b, s.method, s.t, s.psi)
        return self._cached(key, lambda: truncate(self.walk_code(s)[None], s.psi))

    def samples(self, psi: float) -> np.ndarray:
        """The grid's images at truncation ``psi``: (grid^2, S, S, C)."""
        return self._cached(("grid", float(psi)), lambda: truncate(self.grid_codes, psi))


#: the controls the browser draws, in order (see static/image_explorer.js and static/widget_common.js)
CONTROL_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "seed_a", "kind": "range", "group": "walk", "label": "seed of z_a", "min": 0, "max": 99, "step": 1},
    {"name": "seed_b", "kind": "range", "group": "walk", "label": "seed of z_b", "min": 0, "max": 99, "step": 1},
    {"name": "method", "kind": "select", "group": "walk", "label": "path",
     "options": [["slerp", "great circle (slerp)"], ["lerp", "straight line (lerp)"]]},
    {"name": "t", "kind": "range", "group": "walk", "label": "position t", "min": 0.0, "max": 1.0, "step": 0.02},
    {"name": "psi", "kind": "range", "group": "truncation", "label": "ψ", "min": PSI_RANGE[0], "max": PSI_RANGE[1],
     "step": 0.05},
)


def image_frame(explorer: ImageExplorer, s: ImageExplorerSettings, request: int = 0) -> tuple[dict, list[bytes]]:
    """The frame of ``s``: JSON values, and the walk, the image at ``t`` and the grid as float32 buffers (in the
    order named by ``buffers``; each (N, S, S, C) in [0, 1])."""
    walk, at, grid = explorer.walk(s), explorer.at(s), explorer.samples(s.psi)
    _, size, _, channels = walk.shape
    norm = float(explorer.walk_code(s).norm())
    msg = {
        "type": "frame", "request": int(request), "error": "", "settings": vars(s).copy(),
        "controls": list(CONTROLS), "size": int(size), "channels": int(channels), "n_walk": explorer.n_walk,
        "grid": explorer.grid, "diversity": diversity(grid), "code_norm": norm, "typical_norm": explorer.z_dim ** 0.5,
        "buffers": ["walk", "at", "grid"],
    }
    return json_safe(msg), [f32(walk), f32(at), f32(grid)]


class ImageExplorerWidget(RequestedFrames, anywidget.AnyWidget):
    """The explorer widget: the browser sends each change with a request number, the kernel answers with a frame."""

    _esm = module_source("image_explorer")
    _css = STATIC / "image_explorer.css"
    specs = traitlets.List().tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)

    def __init__(self, explorer: ImageExplorer, settings: ImageExplorerSettings | None = None, **kwargs: Any) -> None:
        s = settings or ImageExplorerSettings()
        super().__init__(specs=[dict(c) for c in CONTROL_SPECS], settings=vars(s).copy(), **kwargs)
        self.explorer = explorer
        self.current = s
        self.listen()

    def compute(self, changes: dict[str, Any], request: int) -> tuple[ImageExplorerSettings, dict[str, Any], list[bytes]]:
        s = ImageExplorerSettings.from_mapping({**vars(self.current), **changes})
        return (s, *image_frame(self.explorer, s, request))


def image_explorer(trainer: Any, **settings: Any) -> ImageExplorerWidget:
    """The explorer on ``trainer``'s generator (anything with ``generate(z)`` and ``config.z_dim``, such as
    :class:`~gancourse.deep.train_gan.GANTrainer`), starting from ``ImageExplorerSettings(**settings)``."""
    explorer = ImageExplorer(trainer.generate, trainer.config.z_dim)
    return ImageExplorerWidget(explorer, ImageExplorerSettings.from_mapping(settings))
