"""A small interactive DragGAN: pick a handle and a target with sliders, press *Drag*, repeat.

The logic is :class:`DragSession` (tested without a browser): it keeps the current styles, runs
:func:`gancourse.deep.draggan.drag` from them, so that drags build on each other, and can undo or reset.
:func:`drag_widget` is a thin ipywidgets layer over it; :func:`plot_drag` draws an image with its handles (red),
targets (blue) and the tracked path.

>>> session = DragSession(stylegan_renderer(G), ws0, n_edit=5)   # doctest: +SKIP
>>> drag_widget(session)                                          # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from gancourse.deep.draggan import DragResult, Renderer, drag

__all__ = ["DragSession", "plot_drag", "drag_widget"]


def _points(p: Any) -> torch.Tensor:
    """A point (x, y) as (1, 2), points (K, 2) as they are (float32; drag checks the shapes)."""
    p = torch.as_tensor(p, dtype=torch.float32)
    return p[None] if p.ndim == 1 else p


class DragSession:
    """Drags that build on each other, from styles ``ws0`` (1, L, w_dim); ``drag_kwargs`` go to :func:`drag`."""

    def __init__(self, render: Renderer, ws0: torch.Tensor, **drag_kwargs: Any):
        if not isinstance(ws0, torch.Tensor) or ws0.ndim != 3 or ws0.shape[0] != 1:
            raise ValueError(f"ws0 must have shape (1, L, w_dim), got "
                             f"{tuple(ws0.shape) if isinstance(ws0, torch.Tensor) else type(ws0).__name__}")
        self.render, self.ws0, self.drag_kwargs = render, ws0.detach().clone(), drag_kwargs
        self.history: list[DragResult] = []

    @property
    def ws(self) -> torch.Tensor:
        """The current styles: those of the last drag, or ``ws0``."""
        return self.history[-1].ws if self.history else self.ws0

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        """The current image (1, C, S, S)."""
        return self.render(self.ws)[0]

    def run(self, handle: Any, target: Any, **overrides: Any) -> DragResult:
        """Drag ``handle`` (x, y) to ``target`` (x, y), or handles (K, 2) to their targets (K, 2) at once, from
        the current styles; the result becomes current."""
        result = drag(self.render, self.ws, _points(handle), _points(target), **{**self.drag_kwargs, **overrides})
        self.history.append(result)
        return result

    def undo(self) -> None:
        """Forget the last drag (nothing happens when there is none)."""
        if self.history:
            self.history.pop()

    def reset(self) -> None:
        """Back to ``ws0``."""
        self.history.clear()


def plot_drag(ax: plt.Axes, image: torch.Tensor, handles: Any, targets: Any, path: torch.Tensor | None = None,
              title: str | None = None) -> plt.Axes:
    """Draw ``image`` (1, 1, S, S) in [-1, 1] with handles (red dots), targets (blue crosses), arrows between
    them and, if given, the tracked ``path`` (T, K, 2) of each handle."""
    ax.imshow(image[0, 0].detach().clamp(-1, 1).cpu().numpy(), cmap="gray", vmin=-1, vmax=1)
    h, t = np.asarray(handles, dtype=float).reshape(-1, 2), np.asarray(targets, dtype=float).reshape(-1, 2)
    if path is not None and len(path) > 1:
        for k in range(path.shape[1]):
            ax.plot(path[:, k, 0].numpy(), path[:, k, 1].numpy(), "-", color="orange", lw=1.5, label="tracked")
    for (hx, hy), (tx, ty) in zip(h, t):
        ax.annotate("", (tx, ty), (hx, hy), arrowprops=dict(arrowstyle="->", color="yellow", lw=1))
    ax.plot(h[:, 0], h[:, 1], "o", color="red", ms=6, label="handle")
    ax.plot(t[:, 0], t[:, 1], "x", color="deepskyblue", ms=8, mew=2, label="target")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def drag_widget(session: DragSession, handle: tuple[int, int] = (16, 12), target: tuple[int, int] = (20, 12),
                steps: int = 150) -> Any:
    """Sliders for the handle and the target, a *Drag* button (runs ``steps`` steps from the current image),
    *Undo* and *Reset*, and a view of the current image with the last drag's path."""
    import ipywidgets as W
    from IPython.display import display

    size = session.image().shape[-1]
    sliders = {name: W.IntSlider(value=v, min=0, max=size - 1, description=name, continuous_update=False)
               for name, v in zip(("handle x", "handle y", "target x", "target y"), (*handle, *target))}
    n_steps = W.IntSlider(value=steps, min=5, max=300, step=5, description="steps")
    buttons = {name: W.Button(description=name) for name in ("Drag", "Undo", "Reset")}
    status, out = W.HTML(), W.Output()

    def points() -> tuple[tuple[int, int], tuple[int, int]]:
        v = {k: s.value for k, s in sliders.items()}
        return (v["handle x"], v["handle y"]), (v["target x"], v["target y"])

    def redraw(_=None, result: DragResult | None = None) -> None:
        h, t = points()
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(3.2, 3.2))
            plot_drag(ax, session.image(), [h], [t], None if result is None else result.path,
                      title=f"{len(session.history)} drag(s) applied")
            display(fig)
            plt.close(fig)

    def on_drag(_) -> None:
        h, t = points()
        status.value = "dragging..."
        result = session.run(h, t, steps=n_steps.value)
        d0, d1 = result.distances()
        status.value = (f"{result.steps} steps, distance {float(d0[0]):.1f} -> {float(d1[0]):.1f} px"
                        f"{' (reached)' if result.converged else ''}")
        redraw(result=result)

    def on_undo(_) -> None:
        session.undo()
        status.value = "undone"
        redraw()

    def on_reset(_) -> None:
        session.reset()
        status.value = "reset"
        redraw()

    for s in sliders.values():
        s.observe(redraw, names="value")
    buttons["Drag"].on_click(on_drag)
    buttons["Undo"].on_click(on_undo)
    buttons["Reset"].on_click(on_reset)
    redraw()
    controls = W.VBox([*sliders.values(), n_steps, W.HBox(list(buttons.values())), status])
    box = W.HBox([controls, out])
    box.session, box.sliders, box.buttons, box.status = session, sliders, buttons, status  # for tests and scripts
    return box
