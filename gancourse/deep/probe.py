"""A linear probe: how much of the label a frozen feature map makes *linearly* readable.

Multinomial logistic regression on standardised features, fitted on one set and scored on another:

    u = (f - mean_train) / std_train,   p(y = k | u) = softmax(u W + b)_k,
    (W, b) = argmin  -1/N sum_i log p(y_i | u_i) + l2 / 2 * ||W||^2

The features are never trained (only ``W`` and ``b``), so the score measures the representation, not a
classifier trained on top of it: the protocol of Donahue et al. (2017, BiGAN) and of later self-supervised work.
The fit is full-batch L-BFGS in float64 from zero weights: no randomness, the same features give the same probe.
Standardising makes the probe blind to the scale of each feature, so a network with tiny initial weights is not
penalised for it, and one ``l2`` serves every feature map.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gancourse.errors import check_positive, check_positive_int

__all__ = ["LinearProbe", "fit_linear_probe", "probe_accuracy", "extract_features", "PROBE_L2"]

PROBE_L2 = 1e-3  # weight of the L2 penalty on W (per sample): one fixed value for every feature map


def _check_features(name: str, f: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(f, torch.Tensor) or f.ndim != 2 or len(f) < 1:
        got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(f"{name} must be a tensor of features (N, D) with N >= 1, got {got}")
    if not torch.isfinite(f).all():
        raise ValueError(f"{name} contains NaN or inf")
    if labels is not None and (not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (len(f),)
                               or labels.dtype != torch.int64):
        got = (tuple(labels.shape), labels.dtype) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"the labels of {name} must be an int64 tensor of shape ({len(f)},), got {got}")
    return f.detach().cpu().double()


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: ``predict(f) = argmax((f - mean) / std @ W + b)``; ``W`` (D, K), ``b`` (K,), float64."""

    mean: torch.Tensor
    std: torch.Tensor
    W: torch.Tensor
    b: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits (N, K) of features (N, D)."""
        f = _check_features("features", features)
        if f.shape[1] != len(self.mean):
            raise ValueError(f"features must have {len(self.mean)} columns, as the probe was fitted on, "
                             f"got {f.shape[1]}")
        return ((f - self.mean) / self.std) @ self.W + self.b  # (N, D) @ (D, K) -> (N, K)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted labels (N,), int64."""
        return self.logits(features).argmax(1)

    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of rows of ``features`` whose predicted label equals ``labels``."""
        _check_features("features", features, labels)
        return float((self.predict(features) == labels.cpu()).double().mean())


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, l2: float = PROBE_L2, n_classes: int | None = None,
                     max_iter: int = 500) -> LinearProbe:
    """Multinomial logistic regression on standardised ``features`` (N, D) with int64 ``labels`` (N,) in
    ``0..K-1`` (the module's formula), fitted by full-batch L-BFGS from zero: deterministic."""
    f = _check_features("features", features, labels)
    check_positive("l2", l2, allow_zero=True)
    check_positive_int("max_iter", max_iter)
    y = labels.cpu()
    k = int(y.max()) + 1 if n_classes is None else check_positive_int("n_classes", n_classes, minimum=2)
    if int(y.min()) < 0 or int(y.max()) >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}, got values from {int(y.min())} to {int(y.max())}")
    mean = f.mean(0)
    std = f.std(0, unbiased=False).clamp_min(1e-12)  # a constant feature stays 0 after standardising
    u = (f - mean) / std  # (N, D)
    W = torch.zeros(f.shape[1], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(u @ W + b, y) + 0.5 * l2 * W.square().sum()  # (N, D) @ (D, K) -> (N, K)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearProbe(mean, std, W.detach(), b.detach())


def probe_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                   test_labels: torch.Tensor, l2: float = PROBE_L2) -> float:
    """Held-out accuracy of a probe fitted on ``(train_features, train_labels)``, scored on the test pair."""
    n_classes = int(max(int(train_labels.max()), int(test_labels.max()))) + 1
    probe = fit_linear_probe(train_features, train_labels, l2, n_classes=max(n_classes, 2))
    return probe.accuracy(test_features, test_labels)


@torch.no_grad()
def extract_features(feature_map: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device,
                     batch_size: int = 500) -> torch.Tensor:
    """``feature_map(x)`` in batches on ``device``, flattened to (N, D) float32 on the CPU.

    Put a module in eval mode first (:func:`gancourse.deep.runtime.eval_mode`) if it has batch norm.
    """
    outs = [feature_map(x[i: i + batch_size].to(device)).float().flatten(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs)
