"""Divergences and distances between distributions, and the optimal discriminator.

- ``discrete``: KL, reverse KL, JSD (nats, 1/2 convention) and TV on discrete distributions and on
  densities over 1D/2D grids;
- ``samples``: empirical pmfs, histograms, the k-NN KL estimator and MMD from samples;
- ``wasserstein``: exact 1D W_p, W1 from histograms, exact (LP) and entropic (Sinkhorn) OT, sliced W;
- ``frechet``: W2 between Gaussians (the Fréchet distance) with a robust matrix square root;
- ``discriminator``: the optimal discriminator and the GAN value V(D, G);
- ``scores``: the inception-score formula from class probabilities;
- ``examples``: the lectures' worked examples (earth mover, WGAN's parallel lines);
- ``demos``: mode covering vs mode seeking (one Gaussian fitted to a mixture).

The experiments that train networks (vanishing gradients, the engine's D vs D*, a WGAN critic tracking W1)
live in ``gancourse.toy.engine_demos``, above this package; their names are still importable from here
(``from gancourse.divergences import wgan_tracking``), loaded on first use.
"""
from gancourse.divergences.demos import (
    FIT_OBJECTIVES,
    fit_gaussian,
    mixture_log_density,
    mixture_moments,
    mmd2_gaussian_mixtures,
)
from gancourse.divergences.discrete import (
    cell_area,
    js_divergence,
    kl_divergence,
    reverse_kl_divergence,
    total_variation,
)
from gancourse.divergences.discriminator import gan_value, optimal_discriminator, optimal_gan_value
from gancourse.divergences.examples import (
    earth_mover_example,
    parallel_lines,
    parallel_lines_closed_form,
    parallel_lines_divergences,
)
from gancourse.divergences.frechet import frechet_distance, frechet_distance_from_features, gaussian_stats, psd_sqrtm
from gancourse.divergences.samples import empirical_pmf, histogram_pmfs, kl_divergence_knn, mmd2
from gancourse.divergences.scores import inception_score, inception_score_splits
from gancourse.divergences.wasserstein import (
    SinkhornConvergenceWarning,
    SinkhornResult,
    ot_exact,
    ot_sinkhorn,
    random_directions,
    sliced_wasserstein,
    wasserstein_1d,
    wasserstein_1d_hist,
)

__all__ = [
    "FIT_OBJECTIVES",
    "cell_area",
    "fit_gaussian",
    "mixture_log_density",
    "mixture_moments",
    "mmd2_gaussian_mixtures",
    "earth_mover_example",
    "empirical_pmf",
    "frechet_distance",
    "frechet_distance_from_features",
    "gan_value",
    "gaussian_stats",
    "histogram_pmfs",
    "inception_score",
    "inception_score_splits",
    "js_divergence",
    "kl_divergence",
    "kl_divergence_knn",
    "mmd2",
    "optimal_discriminator",
    "optimal_gan_value",
    "ot_exact",
    "ot_sinkhorn",
    "parallel_lines",
    "parallel_lines_closed_form",
    "parallel_lines_divergences",
    "psd_sqrtm",
    "random_directions",
    "reverse_kl_divergence",
    "SinkhornConvergenceWarning",
    "SinkhornResult",
    "sliced_wasserstein",
    "total_variation",
    "wasserstein_1d",
    "wasserstein_1d_hist",
]

#: names that moved up to ``gancourse.toy.engine_demos`` (they train the NumPy engine's networks), still
#: importable from here for the lectures. Imported on first use, so importing this package never imports ``toy``
#: (the one upward import of the package, allowed by name in tests/test_layering.py).
_MOVED_UP = ("critic_gap", "discriminator_error", "train_discriminator", "vanishing_gradients", "wgan_tracking")


def __getattr__(name: str):
    if name in _MOVED_UP:
        from gancourse.toy import engine_demos

        return getattr(engine_demos, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
