"""Diffusion processes, samplers and methods.

- ``schedules``: pure functions returning 1-D float64 tensors (betas, abar with abar[0] = 1, matched steps).
- ``samplers``: ``ddim``, ``ancestral`` (one shared signature, any start step and sub-sequence), ``guided``.
- ``ddpm``: the DDPM forward process and training task (``DDPMTask``), helpers shared by the denoisers.
- ``ddpm_match``: denoising by entering a trained DDPM at the step matched to sigma (registry ``ddpm-match``).
- ``cddpm``: conditional DDPM for Gaussian noise and missing pixels, probabilistic conditioning (``cddpm``,
  ``cddpm-prob``, ``impute``).
"""
from .samplers import SAMPLERS, ancestral, ddim, get_sampler, guided
from .schedules import alphas_cumprod, cosine_betas, linear_betas, matched_step, spaced_steps

__all__ = ["SAMPLERS", "ancestral", "ddim", "get_sampler", "guided", "alphas_cumprod", "cosine_betas",
           "linear_betas", "matched_step", "spaced_steps"]
