"""Classical baselines (SPEC §3.1): plain filters ``f(y, sigma) -> x_hat`` and their Denoiser wrappers."""
from .filters import FILTERS, bilateral, bm3d, gaussian, median, nlm, nlm_h, tv, wavelet
from .methods import ClassicalDenoiser

__all__ = ["FILTERS", "ClassicalDenoiser", "gaussian", "median", "bilateral", "wavelet", "tv", "nlm", "nlm_h", "bm3d"]
