"""Forward degradations ``y ~ p(y | x)``, each with its per-pixel noise map (SPEC section 2).

Every model is a frozen dataclass of parameters (no RNG state)::

    model.draw(x, generator=None) -> Noisy(y, sigma_map, mask)   # the map actually used; mask or None
    model.sample(x, generator=None) -> y                         # draw(...).y
    model.sigma_map(x) -> s                                      # expected std given x; raises when random

``x`` is a float N x C x H x W tensor in [0, 1].  ``generator`` is None, one ``torch.Generator`` (images drawn in
batch order) or one generator per image: image i with a generator seeded s gets the same noise whatever the batch
size.  Parameters are stored on the [0, 1] scale.

Spec strings (``parse_noise``, ``spec``; grammar in :mod:`.registry`), with their units:

=====================================  ===============================================================
``gaussian:SIGMA``                     SIGMA in 8-bit units (25 -> 25/255)
``poisson_gaussian:A,B[,exact=true]``  var = A x + B^2; A on the [0, 1] scale, B in 8-bit units
``spatial:MIN,MAX``                    std map spanning [MIN, MAX], 8-bit units
``camera[:key=value,...]``             keys shot, read (raw variance, [0, 1] scale), colour, gamma,
                                       highlights, jpeg, quality (JPEG quality, 1-100), mode (noise:
                                       y = x + pipeline noise, the default; full: y = ISP(noisy raw))
``impulse:P``                          fraction of pixels replaced by 0 or 1, in [0, 1]
``speckle:SIGMA``                      relative std, dimensionless (y = x (1 + SIGMA n))
``missing:P``                          fraction of pixels dropped, in [0, 1]
=====================================  ===============================================================

Any numeric value may be a range ``a..b``, drawn uniformly per image from that image's generator
(``gaussian:0..55`` for blind training).  Keyword form works for every parameter (``gaussian:sigma=25``).
"""
from .base import GeneratorArg, Noisy, NoiseModel, Range, local_mean
from .camera import Camera
from .colour import from_linear, inverse_smoothstep, smoothstep, to_linear
from .models import Gaussian, Impulse, Missing, PoissonGaussian, Spatial, Speckle
from .registry import NOISE_MODELS, get_noise_model, parse_noise, spec

__all__ = [
    "NOISE_MODELS", "GeneratorArg", "Noisy", "NoiseModel", "Range", "get_noise_model", "parse_noise", "spec",
    "local_mean",
    "Gaussian", "PoissonGaussian", "Spatial", "Camera", "Impulse", "Speckle", "Missing",
    "to_linear", "from_linear", "smoothstep", "inverse_smoothstep",
]
