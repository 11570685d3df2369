"""Divergences and distances between distributions: KL, JSD, TV, Wasserstein, Fréchet, optimal D."""
from gancourse.divergences.frechet import frechet_distance, frechet_distance_from_features, gaussian_stats, psd_sqrtm

__all__ = ["frechet_distance", "frechet_distance_from_features", "gaussian_stats", "psd_sqrtm"]
