"""NumPy-from-scratch neural networks: layers, MLP, losses, penalties, optimizers, gradient checks."""
from gancourse.nn.gradcheck import numerical_grad, rel_error
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
from gancourse.nn.losses import (
    LOSSES,
    GANLoss,
    d_loss_bce,
    d_loss_hinge,
    d_loss_lsgan,
    d_loss_rpgan,
    d_loss_wgan,
    g_loss_hinge,
    g_loss_lsgan,
    g_loss_nonsaturating,
    g_loss_rpgan,
    g_loss_saturating,
    g_loss_wgan,
    get_loss,
    sigmoid,
    softplus,
)
from gancourse.nn.mlp import ACTIVATIONS, MLP
from gancourse.nn.optim import EMA, OPTIMIZERS, SGD, Adam, Optimizer, RMSProp, clip_weights, make_optimizer
from gancourse.nn.penalties import PENALTIES, apply_penalty, interpolate, r1_penalty, wgan_gp_penalty
from gancourse.nn.tricks import HistoricalAverage, feature_matching_loss, instance_noise_std

__all__ = [name for name in dir() if not name.startswith("_")]
