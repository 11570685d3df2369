"""A multilayer perceptron with hand-written backprop and double backprop.

``MLP([2, 64, 64, 1])`` is ``Linear(2,64) -> act -> Linear(64,64) -> act ->
Linear(64,1) [-> out_act]``. All parameters live in one flat vector
``theta`` (and their gradients in ``dtheta``); ``params``/``grads`` hold
named views into them, so an optimizer may update either form in place.

Double backprop (for gradient penalties). ``input_grad(x)`` runs the
backward graph ``g = dD/dx`` (no parameter gradients). Given a cotangent
``c = dP/dg`` of a penalty ``P(g)``, ``backward(dout, d_input_grad=c)``
differentiates that backward graph in reverse (layer by layer, bottom to
top, via ``input_backward_vjp``) and then runs one ordinary backward sweep
that also carries the cotangents the penalty put on each layer's input.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gancourse.errors import check_array, check_choice, check_positive_int
from gancourse.nn.init import INITS, init_weight
from gancourse.nn.layers import (
    Layer,
    LayerNorm,
    LeakyReLU,
    Linear,
    MinibatchDiscrimination,
    ReLU,
    Sigmoid,
    Tanh,
)

__all__ = ["MLP", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")


def _check_slope(slope: Any) -> float:
    """``slope`` if it is a finite real number (the negative slope of ``leaky_relu``), else a clear error."""
    if isinstance(slope, bool) or not isinstance(slope, (int, float, np.integer, np.floating)):
        raise TypeError(f"slope must be a number (the negative slope of leaky_relu), got {type(slope).__name__}")
    if not np.isfinite(slope):
        raise ValueError(f"slope must be a finite number (the negative slope of leaky_relu), got {slope!r}")
    return slope


def _activation(name: str, slope: float) -> Layer:
    if name == "relu":
        return ReLU()
    if name == "leaky_relu":
        return LeakyReLU(slope)
    if name == "tanh":
        return Tanh()
    return Sigmoid()


class MLP:
    """Fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : widths, input first; at least two entries.
    activation : hidden activation, one of ``ACTIVATIONS``.
    out_activation : optional activation on the output (``None`` = linear, i.e. logits).
    dtype : float32 (default) or float64.
    init : ``"he"``, ``"xavier"`` or ``"normal"`` (N(0, 0.02)).
    spectral_norm : spectrally normalise every Linear layer.
    layer_norm : LayerNorm after each hidden Linear layer (before the activation).
    minibatch_discrimination : ``(n_kernels, kernel_dim)`` to insert a
        minibatch-discrimination layer before the last Linear layer.
    slope : negative slope of ``leaky_relu``.
    seed : seed (or Generator) for the initial weights.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "leaky_relu",
        out_activation: str | None = None,
        dtype: Any = np.float32,
        *,
        init: str = "he",
        spectral_norm: bool = False,
        layer_norm: bool = False,
        minibatch_discrimination: tuple[int, int] | None = None,
        slope: float = 0.2,
        seed: int | np.random.Generator | None = 0,
    ):
        given = sizes
        try:
            sizes = [] if isinstance(given, (str, bytes)) else list(given)
        except TypeError:
            sizes = []
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least two positive widths (input first), got {given!r}")
        sizes = [check_positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]  # 2.7 is an error, not 2
        slope = _check_slope(slope)
        check_choice("activation", activation, ACTIVATIONS)
        if out_activation is not None:
            check_choice("out_activation", out_activation, ACTIVATIONS)
        check_choice("init", init, INITS)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.sizes = sizes
        self.config = dict(
            activation=activation, out_activation=out_activation, init=init, spectral_norm=spectral_norm,
            layer_norm=layer_norm, minibatch_discrimination=minibatch_discrimination, slope=slope,
        )
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        layers: list[Layer] = []
        n_lin = len(sizes) - 1
        for i in range(n_lin):
            n_in = sizes[i]
            if i == n_lin - 1 and minibatch_discrimination is not None:
                B, C = minibatch_discrimination
                layers.append(MinibatchDiscrimination(n_in, B, C))
                n_in += int(B)
            layers.append(Linear(n_in, sizes[i + 1], spectral_norm=spectral_norm))
            if i < n_lin - 1:
                if layer_norm:
                    layers.append(LayerNorm(sizes[i + 1]))
                layers.append(_activation(activation, slope))
        if out_activation is not None:
            layers.append(_activation(out_activation, slope))
        self.layers = layers
        self._mbd_layers = [layer for layer in layers if isinstance(layer, MinibatchDiscrimination)]

        # one flat buffer for all parameters and one for all gradients
        shapes = [(f"{j}.{k}", s) for j, layer in enumerate(layers) for k, s in layer.param_shapes.items()]
        total = sum(int(np.prod(s)) for _, s in shapes)
        self.theta = np.zeros(total, dtype=self.dtype)
        self.dtheta = np.zeros(total, dtype=self.dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        offset = 0
        for key, shape in shapes:
            n = int(np.prod(shape))
            self.params[key] = self.theta[offset : offset + n].reshape(shape)
            self.grads[key] = self.dtheta[offset : offset + n].reshape(shape)
            offset += n
        for j, layer in enumerate(layers):
            names = layer.param_shapes
            layer.bind({k: self.params[f"{j}.{k}"] for k in names}, {k: self.grads[f"{j}.{k}"] for k in names})
            if isinstance(layer, Linear):
                layer.params["W"][...] = init_weight(init, layer.n_in, layer.n_out, rng)
                layer.init_buffers(rng, self.dtype)
            elif isinstance(layer, LayerNorm):
                layer.params["gain"][...] = 1
            elif isinstance(layer, MinibatchDiscrimination):
                layer.params["T"][...] = rng.standard_normal(layer.param_shapes["T"]) * 0.1
        self._n_run = len(layers)
        self._out_shape: tuple[int, ...] | None = None  # set by forward(); None: no forward pass yet
        self._has_input_grad = False
        self._rows: slice = slice(None)

    # ------------------------------------------------------------------ forward
    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    def feature_index(self) -> int:
        """Number of layers that produce the last hidden features (everything before the last Linear)."""
        last_linear = max(j for j, layer in enumerate(self.layers) if isinstance(layer, Linear))
        return last_linear

    def forward(self, x: np.ndarray, *, upto: int | None = None, groups: Sequence[int] | None = None) -> np.ndarray:
        """Output for a batch ``x`` of shape (N, sizes[0]).

        ``upto=k`` runs only the first ``k`` layers (``upto=net.feature_index()``
        gives the last hidden features, used by feature matching). ``groups``
        lists row-block sizes for minibatch discrimination.
        """
        if not isinstance(x, np.ndarray) or x.dtype != self.dtype:
            x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            check_array("x", x, shape=(None, self.sizes[0]))
        if x.shape[0] == 0:
            raise ValueError(f"x is empty (shape {x.shape}): a forward pass needs at least one sample (row)")
        n_run = len(self.layers) if upto is None else int(upto)
        for layer in self._mbd_layers:
            layer.groups = None if groups is None else [int(g) for g in groups]
        for layer in self.layers[:n_run]:
            x = layer.forward(x)
        self._n_run = n_run
        self._out_shape = x.shape
        self._has_input_grad = False
        return x

    __call__ = forward

    # ----------------------------------------------------------------- backward
    def _cotangent(self, name: str, value, shape: tuple[int, ...], what: str, why: str = "") -> np.ndarray:
        """``value`` as an array of ``shape`` (array-likes converted to the network's dtype), or a clear error."""
        if not isinstance(value, np.ndarray):
            value = check_array(name, value, dtype=self.dtype)
        if value.shape != shape:
            raise ValueError(f"{name} must have {what} {shape}{why}, got {value.shape}")
        return value

    def backward(
        self,
        dout: np.ndarray | None,
        *,
        d_input_grad: np.ndarray | None = None,
        param_grads: bool = True,
    ) -> np.ndarray | None:
        """Backprop ``dout = dL/d(output)`` of the last forward; returns ``dL/dx``.

        Parameter gradients are *added* into ``grads`` (call ``zero_grad`` first).
        ``d_input_grad = dP/dg`` adds the gradient of a penalty ``P(g)`` on the
        input gradient ``g`` returned by the last ``input_grad`` call.
        ``dout=None`` means the loss does not depend on the output directly.
        ``dout`` must have the last output's shape (array-likes are converted to the network's dtype).
        """
        self._require_forward("backward(dout)")
        if dout is not None:
            dout = self._cotangent("dout", dout, self._out_shape, "the output's shape",
                                   " (one gradient per output of the last forward)")
        layers = self.layers[: self._n_run]
        cot_x: list[np.ndarray | None] = [None] * len(layers)
        if d_input_grad is not None:
            if not self._has_input_grad:
                raise RuntimeError("backward(d_input_grad=...) needs input_grad() after the last forward()")
            if not param_grads:
                raise ValueError("d_input_grad needs param_grads=True")
            d_input_grad = self._cotangent("d_input_grad", d_input_grad, self._input_grad_shape,
                                           "the input gradient's shape")
            c = d_input_grad
            for j, layer in enumerate(layers):  # reverse of the backward graph: bottom to top
                c, cot_x[j] = layer.input_backward_vjp(c)
        rows, n = self._rows, self._out_shape[0]
        d = dout
        for j in range(len(layers) - 1, -1, -1):
            if d is not None:
                d = layers[j].backward(d, param_grads=param_grads)
            if cot_x[j] is not None:
                if d is None:
                    d = np.zeros((n,) + cot_x[j].shape[1:], self.dtype)
                d[rows] += cot_x[j]
        return d

    def input_grad(self, dout: np.ndarray | None = None, rows: slice = slice(None)) -> np.ndarray:
        """``g = d(sum_i dout_i . D(x_i))/dx_i`` for rows ``rows`` of the last forward's batch.

        With ``dout=None`` (all ones) and one output this is the per-sample
        gradient ``grad_x D(x_i)``, shape (n_rows, sizes[0]). Restricting
        ``rows`` lets a penalty use part of a batch (say the reals of a
        ``[real; fake]`` batch) without paying for the rest. No parameter
        gradients are touched.
        """
        self._require_forward("input_grad()")
        layers = self.layers[: self._n_run]
        n_rows = len(range(*rows.indices(self._out_shape[0])))
        want = (n_rows,) + self._out_shape[1:]
        if dout is None:
            dout = np.ones(want, self.dtype)
        elif not isinstance(dout, np.ndarray):
            dout = check_array("dout", dout, dtype=self.dtype)
        if dout.shape != want:
            raise ValueError(f"dout must have shape {want} (the output's rows {rows}), got {dout.shape}")
        d = dout
        for layer in reversed(layers):
            d = layer.input_backward(d, rows)
        self._has_input_grad, self._rows, self._input_grad_shape = True, rows, d.shape
        return d

    def _require_forward(self, call: str) -> None:
        if self._out_shape is None:
            raise RuntimeError(
                f"call forward(x) before {call}: it differentiates the last forward pass, and this network "
                f"has not run one yet"
            )

    # ------------------------------------------------------------ housekeeping
    def zero_grad(self) -> None:
        self.dtheta.fill(0)

    def train(self, mode: bool = True) -> "MLP":
        """Training mode runs the spectral-norm power iteration; eval mode freezes it."""
        for layer in self.layers:
            if isinstance(layer, Linear):
                layer.training = bool(mode)
        return self

    def eval(self) -> "MLP":
        return self.train(False)

    def _buffers(self) -> dict[str, np.ndarray]:
        return {f"{j}.{k}": v for j, layer in enumerate(self.layers) for k, v in layer.buffers.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers (spectral-norm vectors), keyed by name."""
        out = {k: v.copy() for k, v in self.params.items()}
        out.update({k: v.copy() for k, v in self._buffers().items()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays from ``state`` into this network (keys and shapes must match exactly)."""
        targets = {**self.params, **self._buffers()}
        missing, extra = set(targets) - set(state), set(state) - set(targets)
        if missing or extra:
            raise ValueError(
                f"state_dict keys do not match this network: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        for k, dst in targets.items():
            src = np.asarray(state[k])
            if src.shape != dst.shape:
                raise ValueError(f"state_dict[{k!r}] has shape {src.shape}, expected {dst.shape}")
            dst[...] = src

    def copy(self) -> "MLP":
        """An independent network with the same architecture, weights and buffers."""
        other = MLP(self.sizes, dtype=self.dtype, seed=0, **self.config)
        other.load_state_dict(self.state_dict())
        other.train(all(getattr(l, "training", True) for l in self.layers))
        return other

    def __deepcopy__(self, memo: dict) -> "MLP":
        """``copy.deepcopy(net)`` is :meth:`copy`: the layers' weights stay views of the new ``theta``.

        A plain deep copy would copy ``theta`` and each layer's view of it as separate arrays, so that an
        optimizer step on the copy's ``theta`` would no longer change its outputs.
        """
        other = self.copy()
        memo[id(self)] = other
        return other

    @property
    def n_params(self) -> int:
        return int(self.theta.size)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"MLP([{inner}], params={self.n_params}, dtype={self.dtype.name})"
