"""DragGAN in miniature: move points of a generated image by optimising its latent (Pan et al. 2023, "Drag Your
GAN: Interactive Point-based Manipulation on the Generative Image Manifold").

Everything here works on a **renderer** ``render(ws) -> (image, features)``: styles ``ws`` (1, L, w_dim), one
latent per synthesis layer (``W+``), give an image (1, C, S, S) and an intermediate feature map (1, F, H, W) of the
generator; :func:`stylegan_renderer` makes one from :class:`gancourse.deep.stylegan.StyleGenerator`. Feature maps
are resized to the image size (bilinear), so points are image pixels. A point is ``(x, y)``: ``x`` the column,
``y`` the row (as ``plt.plot(x, y)`` draws it on ``imshow``).

One drag moves handles ``p_i`` towards targets ``t_i`` by repeating two steps:

- **motion supervision** (eq. 1, :func:`motion_supervision_loss`): with ``d_i = (t_i - p_i) / ||t_i - p_i||``,
  ``L = sum_i sum_{q in Omega1(p_i, r1)} ||F(q) - F(q + d_i)||_1 + lambda ||(F - F0) * (1 - M)||_1``; ``F(q)`` is
  detached, so the gradient pulls the features one pixel along ``d_i`` to where they were, i.e. it pushes the
  content at ``p_i`` a small step towards ``t_i``; ``F(q + d_i)`` is read by bilinear sampling
  (:func:`sample_features`); ``M`` is the editable region (1 inside), outside it the features stay ``F0``;
- **point tracking** (eq. 2, :func:`track_points`): the handle moved by an unknown amount, so it is looked up
  again as the nearest neighbour of its initial feature ``f_i = F0(p_i)`` in a square ``Omega2(p_i, r2)``:
  ``p_i := argmin_q ||F'(q) - f_i||_1``.

:func:`drag` optimises the first ``n_edit`` styles of ``W+`` with Adam (the rest stay at their start: the paper
edits the first 6 of StyleGAN2's styles, which set the layout, and leaves the later ones, which set the texture)
until every handle is within ``tolerance`` pixels of its target (:func:`reached`) or ``steps`` run out.
:func:`invert` finds styles for a real image (GAN inversion, starting from ``w_avg``), so a real digit can be
dragged too. :mod:`gancourse.deep.draggan_eval` scores drags on many random handle/target pairs.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gancourse.errors import check_choice, check_positive, check_positive_int

__all__ = ["Renderer", "sample_features", "disk_points", "square_points", "motion_supervision_loss", "track_points",
           "handle_distances", "reached", "check_mask", "segment_mask", "DragResult", "drag", "InversionResult",
           "invert", "StyleGANRenderer", "stylegan_renderer", "SPACES"]

#: ``render(ws (1, L, w_dim)) -> (image (1, C, S, S), features (1, F, H, W))``
Renderer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
SPACES = ("w", "w+")


def _check_points(name: str, p: torch.Tensor) -> torch.Tensor:
    if not isinstance(p, torch.Tensor) or p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must be a tensor (K, 2) of (x, y) points, got "
                         f"{tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__}")
    return p.float()


def _check_features(feat: torch.Tensor) -> torch.Tensor:
    if not isinstance(feat, torch.Tensor) or feat.ndim != 4 or feat.shape[0] != 1:
        raise ValueError(f"features must have shape (1, F, H, W), got "
                         f"{tuple(feat.shape) if isinstance(feat, torch.Tensor) else type(feat).__name__}")
    return feat


def sample_features(feat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of a feature map (1, F, H, W) at float points (K, 2) = (x, y): (K, F).

    ``F(x, y) = sum over the 4 pixels around (x, y) of (1 - |x - x_j|)(1 - |y - y_j|) F(x_j, y_j)``; at integer
    points it is the pixel itself. Points outside the map read the border pixel. Differentiable in ``feat``."""
    feat, points = _check_features(feat), _check_points("points", points)
    h, w = feat.shape[2:]
    grid = torch.stack([2 * points[:, 0] / max(w - 1, 1) - 1, 2 * points[:, 1] / max(h - 1, 1) - 1], dim=-1)
    out = F.grid_sample(feat, grid[None, None].to(feat), mode="bilinear", padding_mode="border",
                        align_corners=True)  # (1, F, 1, K): align_corners puts -1 and 1 on the pixel centres
    return out[0, :, 0].T  # (K, F)


def _grid_near(p: torch.Tensor, r: float, size: tuple[int, int], disk: bool) -> torch.Tensor:
    """Integer pixels (M, 2) = (x, y) inside the image with ``||q - p||_2 <= r`` (disk) or ``|q - p|_inf <= r``."""
    h, w = size
    x0, x1 = max(math.ceil(p[0] - r), 0), min(math.floor(p[0] + r), w - 1)
    y0, y1 = max(math.ceil(p[1] - r), 0), min(math.floor(p[1] + r), h - 1)
    if x0 > x1 or y0 > y1:
        raise ValueError(f"no pixel of the {w}x{h} image lies within {r} of the point ({float(p[0]):g}, "
                         f"{float(p[1]):g}); keep points inside the image")
    ys, xs = torch.meshgrid(torch.arange(y0, y1 + 1), torch.arange(x0, x1 + 1), indexing="ij")
    q = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).float()  # (M, 2)
    if disk:
        q = q[(q - p.float()).norm(dim=1) <= r + 1e-6]
        if len(q) == 0:
            raise ValueError(f"no pixel lies within {r} of ({float(p[0]):g}, {float(p[1]):g}); use r >= 0.71")
    return q


def disk_points(p: torch.Tensor, r: float, size: tuple[int, int]) -> torch.Tensor:
    """``Omega1(p, r)``: the pixels (M, 2) of an image of ``size = (H, W)`` within distance ``r`` of ``p``."""
    return _grid_near(p, check_positive("r1", r), size, disk=True)


def square_points(p: torch.Tensor, r: int, size: tuple[int, int]) -> torch.Tensor:
    """``Omega2(p, r)``: the pixels (M, 2) with ``|x - round(p_x)| <= r`` and ``|y - round(p_y)| <= r``."""
    return _grid_near(torch.round(p), check_positive_int("r2", r, minimum=0), size, disk=False)


def check_mask(mask: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor | None:
    """The editable region ``M`` as a float (H, W) tensor in [0, 1] (1: may change), or None for "everywhere"."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(size):
        raise ValueError(f"mask must be a tensor of shape {tuple(size)} (1 where the image may change), got "
                         f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    mask = mask.float()
    if not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
        raise ValueError("mask values must lie in [0, 1] (1 where the image may change, 0 where it is kept)")
    return mask


def segment_mask(handles: torch.Tensor, targets: torch.Tensor, radius: float, size: tuple[int, int]) -> torch.Tensor:
    """An editable region ``M`` (H, W): 1 on the pixels within ``radius`` of a segment from a handle to its
    target, else 0 (what a user would paint around a drag)."""
    handles, targets = _check_points("handles", handles), _check_points("targets", targets)
    check_positive("radius", radius)
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    pix = torch.stack([xs, ys], dim=-1)  # (H, W, 2)
    mask = torch.zeros(h, w)
    for p, t in zip(handles, targets):
        seg = t - p
        u = ((pix - p) @ seg / seg.dot(seg).clamp_min(1e-12)).clamp(0, 1)  # (H, W): position along the segment
        dist = (pix - (p + u[..., None] * seg)).norm(dim=-1)  # (H, W): distance to the segment
        mask = torch.maximum(mask, (dist <= radius).float())
    return mask


def motion_supervision_loss(feat: torch.Tensor, handles: torch.Tensor, targets: torch.Tensor, r1: float = 2.0,
                            feat0: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                            lam: float = 0.01) -> torch.Tensor:
    """DragGAN's eq. 1 on features (1, F, H, W), handles and targets (K, 2):

    ``sum_i sum_{q in Omega1(p_i, r1)} ||sg(F(q)) - F(q + d_i)||_1 + lam ||(F - F0) * (1 - M)||_1``,
    ``d_i = (t_i - p_i) / ||t_i - p_i||`` (handles already on their target add nothing). The mask term needs
    ``feat0`` (the features at the start) and the editable region ``mask`` (H, W); without a mask it is 0.
    Both terms are sums, the second over every pixel outside ``M``, so ``lam`` depends on the sizes: the paper's
    20 would freeze a drag on the mini StyleGAN; 0.01 keeps the outside close and still lets most drags finish."""
    feat = _check_features(feat)
    handles, targets = _check_points("handles", handles), _check_points("targets", targets)
    if handles.shape != targets.shape:
        raise ValueError(f"handles and targets must have one shape, got {tuple(handles.shape)} and "
                         f"{tuple(targets.shape)}")
    size = tuple(feat.shape[2:])
    loss = feat.new_zeros(())
    for p, t in zip(handles, targets):
        dist = (t - p).norm()
        if dist < 1e-6:
            continue
        d = (t - p) / dist  # (2,) unit step towards the target
        q = disk_points(p, r1, size)  # (M, 2) integer pixels
        f_q = feat[0, :, q[:, 1].long(), q[:, 0].long()].T.detach()  # (M, F): sg(F(q))
        loss = loss + (f_q - sample_features(feat, q + d)).abs().sum()
    mask = check_mask(mask, size)
    if mask is not None:
        if feat0 is None or feat0.shape != feat.shape:
            raise ValueError(f"the mask term needs feat0 of the features' shape {tuple(feat.shape)}")
        loss = loss + lam * ((feat - feat0.detach()) * (1 - mask.to(feat))).abs().sum()
    return loss


@torch.no_grad()
def track_points(feat: torch.Tensor, handles: torch.Tensor, f_ref: torch.Tensor, r2: int = 3) -> torch.Tensor:
    """DragGAN's eq. 2: each handle moves to ``argmin_{q in Omega2(p_i, r2)} ||F(q) - f_i||_1``.

    feat (1, F, H, W), handles (K, 2), f_ref (K, F) the handles' initial features -> new handles (K, 2), integer
    pixels (the first minimum in row-major order wins a tie)."""
    feat, handles = _check_features(feat), _check_points("handles", handles)
    if f_ref.shape != (len(handles), feat.shape[1]):
        raise ValueError(f"f_ref must have shape ({len(handles)}, {feat.shape[1]}), got {tuple(f_ref.shape)}")
    out = []
    for p, f in zip(handles, f_ref):
        q = square_points(p, r2, tuple(feat.shape[2:]))  # (M, 2)
        cost = (feat[0, :, q[:, 1].long(), q[:, 0].long()].T - f).abs().sum(dim=1)  # (M,)
        out.append(q[int(cost.argmin())])
    return torch.stack(out)


def handle_distances(handles: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``||t_i - p_i||_2`` for each handle: (K,)."""
    return (_check_points("targets", targets) - _check_points("handles", handles)).norm(dim=1)


def reached(handles: torch.Tensor, targets: torch.Tensor, tolerance: float = 1.0) -> bool:
    """The stopping rule: every handle within ``tolerance`` pixels of its target (the paper: 1 pixel for fewer
    than 5 handles, else 2)."""
    return bool((handle_distances(handles, targets) <= check_positive("tolerance", tolerance, allow_zero=True)).all())


def _resized(feat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Features at the image size (bilinear), as the paper reads StyleGAN2's 6th block."""
    if tuple(feat.shape[2:]) == tuple(size):
        return feat
    return F.interpolate(feat, size=size, mode="bilinear", align_corners=False)


@dataclass
class DragResult:
    """What one drag did: the final styles ``ws`` (1, L, w_dim), the images before and after (1, C, S, S), the
    tracked handles after each step ``path`` (steps + 1, K, 2; row 0 the start), the ``targets``, the number of
    optimiser ``steps`` taken and whether every handle ``converged`` to within the tolerance."""

    ws: torch.Tensor
    image0: torch.Tensor
    image: torch.Tensor
    path: torch.Tensor
    targets: torch.Tensor
    steps: int
    converged: bool
    losses: list[float] = field(default_factory=list)

    @property
    def handles(self) -> torch.Tensor:
        return self.path[-1]

    def distances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Handle-to-target distances (K,) at the start and at the end."""
        return handle_distances(self.path[0], self.targets), handle_distances(self.path[-1], self.targets)

    def shrink(self) -> float:
        """The mean relative shrink of the handle-to-target distance, ``mean_i 1 - d_end / d_start``."""
        d0, d1 = self.distances()
        return float((1 - d1 / d0.clamp_min(1e-8)).mean())


def drag(render: Renderer, ws0: torch.Tensor, handles: torch.Tensor, targets: torch.Tensor, *, steps: int = 300,
         lr: float = 0.01, n_edit: int | None = None, r1: float = 2.0, r2: int = 3, mask: torch.Tensor | None = None,
         lam: float = 0.01, tolerance: float = 1.0,
         callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> DragResult:
    """Drag ``handles`` (K, 2) to ``targets`` (K, 2) in the image ``render(ws0)`` (see the module docstring).

    Each step renders, tracks the handles (:func:`track_points`), stops if :func:`reached`, else takes one Adam
    step (``lr``) on the first ``n_edit`` styles (default: all) of the motion-supervision loss. The defaults
    suit the mini StyleGAN's 64-dimensional ``w`` on 32x32 images (the paper: Adam 2e-3 on StyleGAN2's 512
    dimensions, ``r1 = 3``, ``r2 = 12`` at 512x512, ``lam = 20``; see :func:`motion_supervision_loss` for ``lam``).
    ``callback(step, image, handles)`` sees every rendered image (for a live view)."""
    check_positive_int("steps", steps, minimum=0)
    check_positive("lr", lr)
    if not isinstance(ws0, torch.Tensor) or ws0.ndim != 3 or ws0.shape[0] != 1:
        raise ValueError(f"ws0 must have shape (1, L, w_dim), got "
                         f"{tuple(ws0.shape) if isinstance(ws0, torch.Tensor) else type(ws0).__name__}")
    n_edit = ws0.shape[1] if n_edit is None else check_positive_int("n_edit", n_edit)
    if n_edit > ws0.shape[1]:
        raise ValueError(f"n_edit must be at most the number of styles {ws0.shape[1]}, got {n_edit}")
    handles, targets = _check_points("handles", handles).clone(), _check_points("targets", targets)
    if handles.shape != targets.shape:
        raise ValueError(f"handles and targets must have one shape, got {tuple(handles.shape)} and "
                         f"{tuple(targets.shape)}")
    ws0 = ws0.detach()
    with torch.no_grad():
        image0, feat0 = render(ws0)
        size = tuple(image0.shape[2:])
        feat0 = _resized(feat0, size)
        f_ref = sample_features(feat0, handles)  # (K, F): the features each handle must keep
    mask = check_mask(mask, size)
    edit = ws0[:, :n_edit].clone().requires_grad_(True)
    fixed = ws0[:, n_edit:]
    opt = torch.optim.Adam([edit], lr=lr)
    path, losses, image, converged, step = [handles.clone()], [], image0, False, 0
    for step in range(steps + 1):
        image, feat = render(torch.cat([edit, fixed], dim=1))
        feat = _resized(feat, size)
        if step > 0:
            handles = track_points(feat, handles, f_ref, r2)
            path.append(handles.clone())
        if callback is not None:
            callback(step, image.detach(), handles.clone())
        converged = reached(handles, targets, tolerance)
        if converged or step == steps:
            break
        active = handle_distances(handles, targets) > tolerance  # handles already there are left alone
        loss = motion_supervision_loss(feat, handles[active], targets[active], r1, feat0, mask, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    ws = torch.cat([edit, fixed], dim=1).detach()
    return DragResult(ws, image0.detach(), image.detach(), torch.stack(path), targets, step, converged, losses)


# ---------------------------------------------------------------------------------------------- inversion
@dataclass
class InversionResult:
    """Styles ``ws`` (1, L, w_dim) whose image ``image`` (1, C, S, S) approximates the target, its mean squared
    error ``error`` per pixel, and the loss after each step."""

    ws: torch.Tensor
    image: torch.Tensor
    error: float
    losses: list[float]


def invert(render: Renderer, target: torch.Tensor, w_avg: torch.Tensor, num_ws: int, *, space: str = "w",
           steps: int = 300, lr: float = 0.05, lenet: torch.nn.Module | None = None,
           feature_weight: float = 0.0) -> InversionResult:
    """GAN inversion by optimisation: ``min_w ||G(w) - x||^2 / n + feature_weight ||phi(G(w)) - phi(x)||^2 / d``,
    starting from ``w_avg`` (w_dim,), with Adam (``lr``); ``phi`` the LeNet's features (a perceptual term, as
    image2stylegan uses VGG's). ``space="w"``: one ``w`` for every style; ``"w+"``: one per style (``num_ws``),
    which fits better but may leave the generator's manifold. target (1, C, S, S) in [-1, 1]."""
    check_choice("space", space, SPACES)
    check_positive_int("steps", steps, minimum=0)
    check_positive("lr", lr)
    check_positive("feature_weight", feature_weight, allow_zero=True)
    if not isinstance(target, torch.Tensor) or target.ndim != 4 or target.shape[0] != 1:
        raise ValueError(f"target must have shape (1, C, S, S), got "
                         f"{tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__}")
    if feature_weight > 0 and lenet is None:
        raise ValueError(f"feature_weight > 0 needs a lenet on the generator's device: "
                         f"gancourse.deep.lenet.load_lenet({str(w_avg.device)!r})")
    start = w_avg.detach().reshape(1, 1, -1)
    w = (start if space == "w" else start.expand(1, num_ws, -1)).clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    target = target.detach().to(start)
    phi_x = lenet.features(target).detach() if feature_weight > 0 else None

    def loss_of(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mse = (image - target).square().mean()
        if phi_x is None:
            return mse, mse
        return mse + feature_weight * (lenet.features(image) - phi_x).square().mean(), mse

    losses = []
    for _ in range(steps):
        image, _ = render(w.expand(1, num_ws, -1))
        loss, _ = loss_of(image)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        ws = w.expand(1, num_ws, -1).detach().clone()
        image, _ = render(ws)
        _, mse = loss_of(image)
    return InversionResult(ws, image.detach(), float(mse), losses)


# ---------------------------------------------------------------------------------------------- StyleGAN adapter
class StyleGANRenderer:
    """``render(ws) -> (image, features)`` for a :class:`gancourse.deep.stylegan.StyleGenerator`: the image of
    ``G.synthesis(ws)`` with fixed noise (``noise_mode="const"``, so that only ``ws`` moves the image) and the
    output of synthesis layer ``layer`` caught by a forward hook, resized to the image size.

    ``n_spatial``: the styles that act at half the image size or coarser (the mini StyleGAN's analogue of
    StyleGAN2's first 6 styles: the layout), the default ``n_edit`` of a drag."""

    def __init__(self, G: torch.nn.Module, layer: int = 4, noise_mode: str = "const"):
        if not hasattr(G, "synthesis") or not hasattr(G, "layers"):
            raise TypeError(f"G must be a StyleGenerator (with .synthesis and .layers), got {type(G).__name__}")
        n = len(G.layers)
        if not isinstance(layer, int) or not 0 <= layer < n:
            raise ValueError(f"layer must be a synthesis layer index in 0..{n - 1}, got {layer!r}")
        self.G, self.layer, self.noise_mode = G, layer, noise_mode
        self.num_ws, self.w_dim = G.num_ws, G.w_dim
        self.n_spatial = sum(r <= G.image_size // 2 for r in G.resolutions)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.G.w_avg

    def __call__(self, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        caught: list[torch.Tensor] = []
        hook = self.G.layers[self.layer].register_forward_hook(lambda _m, _i, out: caught.append(out))
        try:
            image = self.G.synthesis(ws, noise_mode=self.noise_mode)  # (1, C, S, S)
        finally:
            hook.remove()
        return image, _resized(caught[0], tuple(image.shape[2:]))  # (1, F, h, w) -> (1, F, S, S)


def stylegan_renderer(G: torch.nn.Module, layer: int = 4, noise_mode: str = "const") -> StyleGANRenderer:
    """A renderer for the mini StyleGAN ``G`` (put in eval mode, gradients of its weights off): see
    :class:`StyleGANRenderer`. ``layer=4`` is the last 16x16 layer of the modulated generator."""
    G.eval().requires_grad_(False)
    return StyleGANRenderer(G, layer, noise_mode)
