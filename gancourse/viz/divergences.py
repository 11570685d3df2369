"""Figures for the divergences lectures: Gaussian fits to a mixture, transport plans, WGAN critic tracking."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["plot_fits_1d", "plot_fit_2d", "plot_transport_plan", "plot_critic_tracking"]

_COLORS = {"kl": "tab:blue", "reverse_kl": "tab:red", "jsd": "tab:green", "mmd": "tab:purple"}
_LABELS = {"kl": "KL(p||q)", "reverse_kl": "KL(q||p)", "jsd": "JSD", "mmd": "MMD"}


def _gauss_1d(xs: np.ndarray, mean: float, var: float) -> np.ndarray:
    return np.exp(-0.5 * (xs - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def plot_fits_1d(ax, xs: np.ndarray, p: np.ndarray, fits: Mapping[str, Mapping]):
    """The target density ``p`` on ``xs`` (grey) and each fitted Gaussian ``fits[name] = {mean, cov}``."""
    ax.fill_between(xs, p, color="0.85", label="target p")
    for name, fit in fits.items():
        ax.plot(xs, _gauss_1d(xs, float(fit["mean"][0]), float(fit["cov"][0, 0])),
                color=_COLORS.get(name), lw=1.6, label=_LABELS.get(name, name))
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    return ax


def plot_fit_2d(ax, axes: Sequence[np.ndarray], p: np.ndarray, fit: Mapping, name: str):
    """Contours of the target ``p`` (shape (len(axes[0]), len(axes[1]))) and the 1- and 2-sigma ellipses of a fit."""
    xs, ys = axes
    ax.contourf(xs, ys, p.T, levels=12, cmap="Greys")
    w, v = np.linalg.eigh(np.asarray(fit["cov"]))
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])  # (2, 200)
    for k in (1, 2):
        ell = (v * np.sqrt(w)) @ circle * k + np.asarray(fit["mean"])[:, None]  # (2, 2) @ (2, 200) -> (2, 200)
        ax.plot(ell[0], ell[1], color=_COLORS.get(name), lw=1.5)
    ax.set_title(_LABELS.get(name, name))
    ax.set_aspect("equal")
    return ax


def plot_transport_plan(ax, plan: np.ndarray, a: np.ndarray, b: np.ndarray, *, title: str = ""):
    """A transport plan (n, m) as an image, with the marginals ``a`` (rows) and ``b`` (columns) in the tick labels."""
    im = ax.imshow(plan, cmap="Blues", origin="upper")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if plan.shape[0] <= 12:
        ax.set_yticks(range(plan.shape[0]), [f"{i + 1}: {v:.2f}" for i, v in enumerate(a)])
        ax.set_xticks(range(plan.shape[1]), [f"{j + 1}: {v:.2f}" for j, v in enumerate(b)], rotation=45)
    ax.set_ylabel("from (mass of p)")
    ax.set_xlabel("to (mass of q)")
    ax.set_title(title)
    return ax


def plot_critic_tracking(ax, rec: Mapping[str, np.ndarray], *, title: str = ""):
    """True W1 (left axis) and the critic's ``E_p f - E_q f`` (right axis) against the training step."""
    ax.plot(rec["step"], rec["w1"], "k-o", ms=3, label="true W1")
    ax.set_xlabel("step")
    ax.set_ylabel("W1 (sorted samples)")
    twin = ax.twinx()
    twin.plot(rec["step"], rec["critic"], "-s", color="tab:orange", ms=3, label="critic estimate")
    twin.set_ylabel("E_p f - E_q f", color="tab:orange")
    ax.set_title(title)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [l.get_label() for l in lines], fontsize=8, loc="upper right")
    return ax, twin
