"""Training tasks: what turns a batch of patches into a loss.

Contract (docs/DESIGN.md): ``Task(**task_options)``; ``task.loss(net, batch, generator) -> scalar tensor`` with
``batch = {"x": clean N x C x P x P in [0, 1] on the device, "y": real noisy partner (paired sources only; NaN in
rows from clean-only sources), "paired": bool N (with "y"), "label": int64 N (labeled data)}``;
``task.method_card() -> dict`` (what inference needs to use the weights); optionally
``task.net_kwargs_defaults(cfg) -> dict`` (net keyword arguments the task implies, e.g. channel counts; the
config's ``net_kwargs`` win).  During training ``net`` runs under bf16 autocast on CUDA and returns float32.
"""
from __future__ import annotations

import importlib
from typing import Any, Literal, Sequence

import torch

from ..errors import DiffDenoiseError

TASKS: dict[str, str] = {
    "denoise": "diffdenoise.train.tasks:DenoiseTask",
    "ddpm": "diffdenoise.diffusion.ddpm:DDPMTask",
    "cddpm": "diffdenoise.diffusion.cddpm:CDDPMTask",
    "realdiff": "diffdenoise.diffusion.realdiff:RealDiffTask",
    "svnr": "diffdenoise.diffusion.svnr:SVNRTask",
}

LOSSES = ("mse", "l1", "charbonnier")


def get_task_class(name: str) -> type:
    try:
        target = TASKS[name]
    except KeyError:
        raise DiffDenoiseError(f"unknown task {name!r}; valid: {', '.join(sorted(TASKS))}") from None
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise DiffDenoiseError(f"task {name!r} ({target}) is not available: {e}") from None


def build_task(name: str, options: dict[str, Any] | None = None) -> Any:
    """``TASKS[name](**options)``; an option the task does not take raises a DiffDenoiseError."""
    cls = get_task_class(name)
    try:
        return cls(**(options or {}))
    except TypeError as e:
        raise DiffDenoiseError(f"task {name!r}: {e}") from None


def pixel_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str, eps: float = 1e-3) -> torch.Tensor:
    """Mean over all pixels of (x_hat - x)^2, |x_hat - x| or the Charbonnier sqrt((x_hat - x)^2 + eps^2)."""
    d = x_hat.float() - x.float()
    if kind == "mse":
        return d.square().mean()
    if kind == "l1":
        return d.abs().mean()
    if kind == "charbonnier":
        return (d.square() + eps * eps).sqrt().mean()
    raise DiffDenoiseError(f"unknown loss {kind!r}; valid: {', '.join(LOSSES)}")


def _parse_mixture(noise: str | Sequence[Any]) -> tuple[list[str], list[float]]:
    """``"spec"`` | ``["spec", ...]`` (equal weights) | ``[["spec", weight], ...]``."""
    if isinstance(noise, str):
        return [noise], [1.0]
    specs, weights = [], []
    for item in noise:
        if isinstance(item, str):
            specs.append(item)
            weights.append(1.0)
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            specs.append(item[0])
            weights.append(float(item[1]))
        else:
            raise DiffDenoiseError(f"noise mixture entries are \"spec\" or [\"spec\", weight], got {item!r}")
    if not specs or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise DiffDenoiseError(f"bad noise mixture {noise!r}")
    return specs, weights


class DenoiseTask:
    """Supervised denoising, as the CNN baselines are trained (DnCNN, Zhang et al. 2017, Eq. 1):
    ``loss(net(y), x)`` with ``y`` drawn from the noise model (or the real partner for paired rows).

    ``noise``: a noise spec (``"gaussian:0..55"``: blind, sigma drawn per image) or a mixture, one model drawn per
    image: a list of specs (equal weights) or of ``[spec, weight]`` pairs.  ``loss``: ``"mse"`` (the seed's),
    ``"l1"`` or ``"charbonnier"``.  ``quantize``: clip synthetic ``y`` to [0, 1] and round it to 8 bits, as a saved
    8-bit image is (it matters in dark regions, where clipping at 0 shifts the mean of shot noise).
    """

    def __init__(self, noise: str | Sequence[Any] = "gaussian:0..55",
                 loss: Literal["mse", "l1", "charbonnier"] = "mse", quantize: bool = False):
        from ..noise import parse_noise, spec
        if loss not in LOSSES:
            raise DiffDenoiseError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        specs, weights = _parse_mixture(noise)
        self.models = [parse_noise(s) for s in specs]
        self.specs = [spec(m) for m in self.models]
        total = sum(weights)
        self.weights = [w / total for w in weights]
        self.loss_kind, self.quantize = loss, bool(quantize)

    def net_kwargs_defaults(self, cfg: Any) -> dict[str, Any]:
        return {"channels": 1 if cfg.color == "gray" else 3}

    def method_card(self) -> dict[str, Any]:
        noise: Any = self.specs[0] if len(self.specs) == 1 else [[s, w] for s, w in zip(self.specs, self.weights)]
        return {"kind": "cnn", "blind": True, "noise": noise, "loss": self.loss_kind, "quantize": self.quantize,
                "input": "noisy image in [0, 1], NCHW", "output": "clean estimate (not clipped)"}

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Noisy version of every row of ``x`` (one mixture component drawn per image), 8-bit if ``quantize``."""
        y = self._draw(x, generator)
        return y.clamp(0, 1).mul(255).round().div(255) if self.quantize else y

    def _draw(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if len(self.models) == 1:
            return _sample(self.models[0], x, generator)
        pick = torch.multinomial(torch.tensor(self.weights, device=x.device), x.shape[0], replacement=True,
                                 generator=generator)
        y = torch.empty_like(x)
        for m, model in enumerate(self.models):
            rows = (pick == m).nonzero().squeeze(1)
            if rows.numel():
                y[rows] = _sample(model, x[rows], generator)
        return y

    def loss(self, net: Any, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
             ) -> torch.Tensor:
        x = batch["x"]
        if "y" in batch:
            paired = batch.get("paired")
            if paired is None or bool(paired.all()):
                y = batch["y"]
            else:
                y = batch["y"].clone()
                rows = (~paired).nonzero().squeeze(1)
                y[rows] = self.corrupt(x[rows], generator)
        else:
            y = self.corrupt(x, generator)
        return pixel_loss(net(y), x, self.loss_kind)


def _sample(model: Any, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``model.sample(x, generator)``; for Gaussian noise one batched draw instead of the per-image loop, equal in
    distribution (sigma uniform on the range per image, then ``y = x + sigma n``) and free of host syncs."""
    from ..noise import Gaussian, Range
    if type(model) is Gaussian:
        s = model.sigma
        if isinstance(s, Range):
            u = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)
            sigma = s.lo + (s.hi - s.lo) * u
        else:
            sigma = torch.full((x.shape[0], 1, 1, 1), float(s), device=x.device, dtype=x.dtype)
        return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return model.sample(x, generator)


__all__ = ["TASKS", "LOSSES", "DenoiseTask", "build_task", "get_task_class", "pixel_loss"]
