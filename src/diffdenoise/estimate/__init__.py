"""Noise-level estimation (SPEC §4): a global sigma, a Poisson-Gaussian law, per-pixel noise maps."""
from .noise_map import MAP_METHODS, estimate_noise_map, fit_poisson_gaussian
from .sigma import SIGMA_METHODS, estimate_sigma

__all__ = ["estimate_sigma", "estimate_noise_map", "fit_poisson_gaussian", "SIGMA_METHODS", "MAP_METHODS"]
