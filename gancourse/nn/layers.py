"""Layers with hand-written forward and backward passes.

Every layer follows one protocol:

- ``forward(x)`` computes the output and keeps on the instance what the
  backward pass needs (it never recomputes the forward pass);
- ``backward(dout, param_grads=True)`` returns ``dx = dL/dx`` and *adds*
  ``dL/dparam`` into ``grads`` (same keys as ``params``);
- ``input_backward(dout, rows)`` is the same map ``dout -> dx`` restricted
  to a block of rows of the last batch, without touching ``grads``; it
  remembers ``dout`` so that the map itself can be differentiated (double
  backprop, needed by gradient penalties);
- ``input_backward_vjp(c)`` takes a cotangent ``c`` on the ``dx`` returned by
  ``input_backward`` and returns ``(cot_dout, cot_x)``: the cotangent on that
  ``dout`` and on the layer's forward input ``x`` (``None`` when it is zero),
  adding the parameter part into ``grads``.

Parameter arrays may be views into one flat buffer owned by a network (see
:class:`gancourse.nn.MLP`); layers only ever update them in place.
"""
from __future__ import annotations

import numpy as np

from gancourse.errors import check_positive
from gancourse.nn.losses import sigmoid

__all__ = [
    "Layer",
    "Linear",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "LayerNorm",
    "MinibatchDiscrimination",
]


class Layer:
    """Base class: a layer without parameters unless a subclass adds some."""

    #: shapes of the parameters, filled by subclasses before allocation
    param_shapes: dict[str, tuple[int, ...]] = {}

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Attach parameter and gradient arrays (views owned by the network)."""
        self.params, self.grads = params, grads

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout: np.ndarray, param_grads: bool = True) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def input_backward(self, dout: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """``dx`` for the batch rows ``rows`` of the last forward, without parameter gradients."""
        raise NotImplementedError(
            f"{type(self).__name__} does not support double backprop, so gradient penalties "
            "(R1, R2, WGAN-GP) cannot be used with it; use spectral normalization instead"
        )

    def input_backward_vjp(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError(
            f"{type(self).__name__} does not support double backprop, so gradient penalties "
            "(R1, R2, WGAN-GP) cannot be used with it; use spectral normalization instead"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Layer):
    """Affine map ``y = x @ W + b`` with ``W`` of shape (in, out).

    With ``spectral_norm=True`` the layer uses ``W / sigma(W)``, where the
    largest singular value ``sigma`` is estimated by power iteration with the
    vectors ``u, v`` treated as constants in the backward pass (Miyato et al.
    2018, "Spectral Normalization for GANs"):
    ``dL/dW = (G - <G, W_sn> u v^T) / sigma`` for ``G = dL/dW_sn``.
    """

    def __init__(self, n_in: int, n_out: int, *, spectral_norm: bool = False, power_iterations: int = 1):
        super().__init__()
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.param_shapes = {"W": (self.n_in, self.n_out), "b": (self.n_out,)}
        self.spectral_norm = bool(spectral_norm)
        self.power_iterations = int(power_iterations)
        #: when False the power iteration is frozen (evaluation, gradient checks)
        self.training = True

    def init_buffers(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        if self.spectral_norm:
            u = rng.standard_normal(self.n_in).astype(dtype)
            v = rng.standard_normal(self.n_out).astype(dtype)
            self.buffers = {"u": u / np.linalg.norm(u), "v": v / np.linalg.norm(v)}

    @property
    def weight(self) -> np.ndarray:
        """The weight actually used in the product (normalized when spectral norm is on)."""
        return self._W_eff if self.spectral_norm else self.params["W"]

    def forward(self, x: np.ndarray) -> np.ndarray:
        W = self.params["W"]
        if self.spectral_norm:
            u, v = self.buffers["u"], self.buffers["v"]
            if self.training:
                for _ in range(self.power_iterations):
                    v[:] = W.T @ u  # (out, in) @ (in,) -> (out,)
                    v /= np.linalg.norm(v) + 1e-12
                    u[:] = W @ v  # (in, out) @ (out,) -> (in,)
                    u /= np.linalg.norm(u) + 1e-12
            self._sigma = float(u @ W @ v)
            self._W_eff = W / self._sigma
        self._x = x
        out = x @ self.weight  # (N, in) @ (in, out) -> (N, out)
        out += self.params["b"]
        return out

    def _to_W(self, G: np.ndarray) -> np.ndarray:
        """Map a gradient on the weight used in the product to a gradient on ``W``."""
        if not self.spectral_norm:
            return G
        u, v = self.buffers["u"], self.buffers["v"]
        return (G - np.vdot(G, self._W_eff) * np.outer(u, v)) / self._sigma

    def _dx(self, dout: np.ndarray) -> np.ndarray:
        if self.n_out == 1:  # an outer product: broadcasting beats a matmul with inner size 1 several-fold
            return dout * self.weight[:, 0]  # (N, 1) * (in,) -> (N, in)
        return dout @ self.weight.T  # (N, out) @ (out, in) -> (N, in)

    def backward(self, dout: np.ndarray, param_grads: bool = True) -> np.ndarray:
        if param_grads:
            self.grads["W"] += self._to_W(self._x.T @ dout)  # (in, N) @ (N, out) -> (in, out)
            self.grads["b"] += dout.sum(axis=0)
        return self._dx(dout)

    def input_backward(self, dout: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        self._dout = dout
        return self._dx(dout)

    def input_backward_vjp(self, c: np.ndarray) -> tuple[np.ndarray, None]:
        # dx = dout @ W^T, so d<c, dx>/dW = c^T @ dout and d<c, dx>/d dout = c @ W
        self.grads["W"] += self._to_W(c.T @ self._dout)  # (in, N) @ (N, out) -> (in, out)
        return c @ self.weight, None  # (N, in) @ (in, out) -> (N, out)

    def __repr__(self) -> str:
        sn = ", spectral_norm=True" if self.spectral_norm else ""
        return f"Linear({self.n_in}, {self.n_out}{sn})"


class _Elementwise(Layer):
    """An activation ``y = s(a)``; subclasses give ``s'(a)`` and ``s''(a)`` from the cache."""

    def _d1(self) -> np.ndarray:  # s'(a)
        raise NotImplementedError

    def _d2(self) -> np.ndarray | None:  # s''(a), None when identically zero
        return None

    def backward(self, dout: np.ndarray, param_grads: bool = True) -> np.ndarray:
        return dout * self._d1()

    def input_backward(self, dout: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        self._dout, self._rows = dout, rows
        return dout * self._d1()[rows]

    def input_backward_vjp(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        # dx = dout * s'(a): cotangent on dout is c * s'(a), on a it is c * dout * s''(a)
        d2 = self._d2()
        rows = self._rows
        return c * self._d1()[rows], (None if d2 is None else c * self._dout * d2[rows])


class ReLU(_Elementwise):
    """``max(a, 0)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = (x > 0).astype(x.dtype)  # float mask: multiplying by it is much faster than np.where
        return x * self._mask

    def _d1(self) -> np.ndarray:
        return self._mask


class LeakyReLU(_Elementwise):
    """``a`` for ``a > 0``, ``slope * a`` otherwise (DCGAN's discriminator uses slope 0.2)."""

    def __init__(self, slope: float = 0.2):
        super().__init__()
        self.slope = float(slope)
        if not np.isfinite(self.slope):
            raise ValueError(f"slope must be a finite number (the negative slope of leaky_relu), got {slope!r}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        # factor = 1 where x > 0, else slope; arithmetic on a float mask beats np.where several-fold
        factor = np.multiply(x > 0, 1 - self.slope, dtype=x.dtype)
        factor += self.slope
        self._factor = factor
        return x * factor

    def _d1(self) -> np.ndarray:
        return self._factor

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope})"


class Tanh(_Elementwise):
    """``tanh(a)``: ``s' = 1 - y^2``, ``s'' = -2 y (1 - y^2)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def _d1(self) -> np.ndarray:
        return 1 - self._y * self._y

    def _d2(self) -> np.ndarray:
        return -2 * self._y * (1 - self._y * self._y)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-a))``: ``s' = y (1 - y)``, ``s'' = y (1 - y)(1 - 2y)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = sigmoid(x)  # stable for both signs
        return self._y

    def _d1(self) -> np.ndarray:
        return self._y * (1 - self._y)

    def _d2(self) -> np.ndarray:
        return self._y * (1 - self._y) * (1 - 2 * self._y)


class LayerNorm(Layer):
    """Layer normalization over features (Ba et al. 2016).

    ``xhat = (x - mean) / sqrt(var + eps)``, ``y = gain * xhat + bias``;
    backward: ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)``
    with ``g = dout * gain`` (means over features).
    """

    def __init__(self, n_features: int, eps: float = 1e-5):
        super().__init__()
        self.n = int(n_features)
        self.eps = check_positive("eps", eps)
        self.param_shapes = {"gain": (self.n,), "bias": (self.n,)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        mu = x.mean(axis=1, keepdims=True)
        xc = x - mu
        self._inv_std = 1 / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + self.eps)  # (N, 1)
        self._xhat = xc * self._inv_std
        return self._xhat * self.params["gain"] + self.params["bias"]

    def backward(self, dout: np.ndarray, param_grads: bool = True) -> np.ndarray:
        if param_grads:
            self.grads["gain"] += (dout * self._xhat).sum(axis=0)
            self.grads["bias"] += dout.sum(axis=0)
        g = dout * self.params["gain"]
        return (
            g - g.mean(axis=1, keepdims=True) - self._xhat * (g * self._xhat).mean(axis=1, keepdims=True)
        ) * self._inv_std

    def __repr__(self) -> str:
        return f"LayerNorm({self.n})"


class MinibatchDiscrimination(Layer):
    """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs").

    ``M_i = f_i @ T`` reshaped to (B, C); ``c_b(i, j) = exp(-||M_ib - M_jb||_1)``;
    ``o_ib = sum_j c_b(i, j)`` over the samples of the same group (the sum includes
    ``j = i``, which adds the constant 1). Output: ``[f_i, o_i]`` of width A + B.

    ``groups`` lists the sizes of consecutive row blocks that are compared only
    among themselves (a discriminator fed ``[real; fake]`` in one pass must not
    compare real with fake rows). ``None`` means one group.
    """

    def __init__(self, n_in: int, n_kernels: int = 8, kernel_dim: int = 4):
        super().__init__()
        self.A, self.B, self.C = int(n_in), int(n_kernels), int(kernel_dim)
        self.param_shapes = {"T": (self.A, self.B * self.C)}
        self.groups: list[int] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        N = x.shape[0]
        sizes = self.groups if self.groups is not None else [N]
        if sum(sizes) != N:
            raise ValueError(f"minibatch discrimination groups {sizes} do not add up to the batch size {N}")
        M = x @ self.params["T"]  # (N, A) @ (A, B*C) -> (N, B*C)
        Mt = np.ascontiguousarray(M.reshape(N, self.B, self.C).transpose(1, 2, 0))  # (B, C, N)
        self._x, self._parts = x, []
        outs = []
        start = 0
        for n in sizes:
            Mg = Mt[:, :, start : start + n]  # (B, C, n)
            dist = np.zeros((self.B, n, n), dtype=x.dtype)
            signs = []
            for c in range(self.C):  # L1 distance one coordinate at a time keeps every array (B, n, n)
                diff = Mg[:, c, :, None] - Mg[:, c, None, :]  # (B, n, n): M_ib,c - M_jb,c
                signs.append(np.sign(diff))
                dist += np.abs(diff)
            cb = np.exp(-dist)  # (B, n, n): c_b(i, j)
            outs.append(cb.sum(axis=2).T)  # (n, B)
            self._parts.append((start, n, signs, cb))
            start += n
        return np.concatenate([x, np.concatenate(outs, axis=0)], axis=1)

    def backward(self, dout: np.ndarray, param_grads: bool = True) -> np.ndarray:
        df, do = dout[:, : self.A], dout[:, self.A :]  # (N, A), (N, B)
        dM = np.empty((dout.shape[0], self.B, self.C), dtype=dout.dtype)
        for start, n, signs, cb in self._parts:
            # o_ib = sum_j c_b(i,j); dc_b(i,j)/dM_ib = -c_b(i,j) sign(M_ib - M_jb); symmetric in (i, j)
            dot = do[start : start + n].T  # (B, n)
            w = (dot[:, :, None] + dot[:, None, :]) * cb  # (B, n, n)
            for c, sgn in enumerate(signs):
                dM[start : start + n, :, c] = -(w * sgn).sum(axis=2).T  # (n, B)
        dM = dM.reshape(dout.shape[0], self.B * self.C)
        if param_grads:
            self.grads["T"] += self._x.T @ dM  # (A, N) @ (N, B*C) -> (A, B*C)
        return df + dM @ self.params["T"].T  # (N, B*C) @ (B*C, A) -> (N, A)

    def __repr__(self) -> str:
        return f"MinibatchDiscrimination({self.A}, kernels={self.B}, dim={self.C})"
