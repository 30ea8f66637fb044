"""What every noise model shares: parameters with units, ranges, per-image randomness, the ``Noisy`` result.

A model subclasses :class:`NoiseModel` as a frozen dataclass whose fields are declared with :func:`number`,
:func:`flag` or :func:`choice`.  The field metadata carries what the generic code needs (spec units, bounds), so
validation, ``a..b`` ranges and the canonical spec string are written once here, not per model.  A model only
implements ``_draw_one`` (one image, parameters already resolved) and, when its map is deterministic,
``_expected_map``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..errors import DiffDenoiseError

GeneratorArg = Optional[Union[torch.Generator, Sequence[torch.Generator]]]


@dataclass(frozen=True)
class Range:
    """A parameter drawn uniformly from ``[lo, hi]`` per image, from that image's generator (``gaussian:0..55``).

    Stored in library units, like any other parameter value.
    """
    lo: float
    hi: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lo", float(self.lo))
        object.__setattr__(self, "hi", float(self.hi))
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            raise DiffDenoiseError(f"range ends must be finite numbers, got {self.lo}..{self.hi}")
        if self.lo > self.hi:
            raise DiffDenoiseError(f"range {self.lo:g}..{self.hi:g} is empty: the first end must not exceed the second")


@dataclass(frozen=True)
class Noisy:
    """One draw of a noise model.

    ``y``: the noisy batch, not clipped (except where the physics clips: camera output, impulse values).
    ``sigma_map``: per-pixel standard deviation actually used, shape of ``x``.
    ``mask``: N x 1 x H x W, 1 where the pixel is observed intact, 0 where it is missing or replaced; ``None`` when
    every pixel is observed.
    """
    y: torch.Tensor
    sigma_map: torch.Tensor
    mask: torch.Tensor | None = None


def number(default: Any = MISSING, *, unit: float = 1.0, lo: float | None = None, hi: float | None = None,
           optional: bool = False) -> Any:
    """A numeric parameter (a float or a :class:`Range`).  ``unit``: spec value = stored value * unit (255 for a
    std given in 8-bit units); ``lo``/``hi``: allowed interval in library units; ``optional``: ``None`` allowed."""
    md = {"kind": "number", "unit": unit, "lo": lo, "hi": hi, "optional": optional}
    return field(metadata=md) if default is MISSING else field(default=default, metadata=md)


def flag(default: bool) -> Any:
    return field(default=default, metadata={"kind": "bool"})


def choice(default: str, options: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"kind": "choice", "options": options})


def fmt_number(value: float, unit: float) -> str:
    return f"{value * unit:.12g}"


def _bounds_text(lo: float | None, hi: float | None, unit: float) -> str:
    if lo is not None and hi is not None:
        return f"in [{fmt_number(lo, unit)}, {fmt_number(hi, unit)}]"
    if lo is not None:
        return f">= {fmt_number(lo, unit)}"
    return f"<= {fmt_number(hi, unit)}"


class _Rng:
    """Random draws for one image from its generator (or torch's global one when ``None``).

    Numbers are drawn on the generator's device and moved to the image's device, so a CPU generator gives the same
    noise for an image on any device.
    """

    def __init__(self, generator: torch.Generator | None, device: torch.device):
        self.generator = generator
        self.device = device
        self.draw_device = generator.device if generator is not None else device

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.draw_device).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.draw_device).to(self.device)

    def uniform(self, lo: float, hi: float) -> float:
        u = torch.rand((), generator=self.generator, device=self.draw_device).item()
        return lo + (hi - lo) * u

    def normal(self) -> float:
        return torch.randn((), generator=self.generator, device=self.draw_device).item()

    def poisson(self, rate: torch.Tensor) -> torch.Tensor:
        return torch.poisson(rate.to(self.draw_device), generator=self.generator).to(self.device)


def per_image_generators(generator: GeneratorArg, n: int) -> list[torch.Generator | None]:
    """``None`` -> global RNG; one generator -> shared, images drawn in batch order; a sequence -> one per image."""
    if generator is None or isinstance(generator, torch.Generator):
        return [generator] * n
    gens = list(generator)
    if len(gens) != n:
        raise ValueError(f"got {len(gens)} generators for a batch of {n} images; pass one per image")
    if not all(isinstance(g, torch.Generator) for g in gens):
        raise TypeError("generator must be None, a torch.Generator or a sequence of torch.Generator")
    return gens


def check_image(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DiffDenoiseError(f"noise models take a float N x C x H x W tensor, got {shape}")
    return x


class NoiseModel:
    """Base of every noise model: ``draw``, ``sample``, ``sigma_map``, validation and range resolution."""

    name: ClassVar[str]
    example: ClassVar[str]                      # a valid spec, quoted in error messages
    always_random_map: ClassVar[bool] = False   # the map depends on random draws even with fixed parameters
    map_ignores: ClassVar[tuple[str, ...]] = ()  # parameters that do not change the map (a range there is fine)
    signal_dependent: ClassVar[bool] = False    # the map is a function of the clean x (Poisson-Gaussian, ...)

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = f.metadata.get("kind")
            value = getattr(self, f.name)
            if kind == "number":
                object.__setattr__(self, f.name, self._check_number(f, value))
            elif kind == "bool":
                if not isinstance(value, bool):
                    raise DiffDenoiseError(f"{self.name}: {f.name} must be true or false, got {value!r}")
            elif kind == "choice":
                if value not in f.metadata["options"]:
                    raise DiffDenoiseError(f"{self.name}: {f.name} must be one of "
                                           f"{', '.join(f.metadata['options'])}, got {value!r}")

    def _check_number(self, f: Any, value: Any) -> Any:
        md = f.metadata
        if value is None and md["optional"]:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, Range)):
            raise DiffDenoiseError(f"{self.name}: {f.name} must be a number or a range a..b, got {value!r}")
        if not isinstance(value, Range):
            value = float(value)
        for end in (value.lo, value.hi) if isinstance(value, Range) else (value,):
            if not math.isfinite(end):
                raise DiffDenoiseError(f"{self.name}: {f.name} must be a finite number, got {end}")
            if (md["lo"] is not None and end < md["lo"]) or (md["hi"] is not None and end > md["hi"]):
                raise DiffDenoiseError(f"{self.name}: {f.name} must be {_bounds_text(md['lo'], md['hi'], md['unit'])}"
                                       f", got {fmt_number(end, md['unit'])}")
        return value

    @property
    def random_map(self) -> bool:
        """True when the noise map is not a function of ``x`` alone (a range, or a randomly drawn map); then
        :meth:`sigma_map` raises and ``draw(x).sigma_map`` is the map to use."""
        return self.always_random_map or any(isinstance(getattr(self, f.name), Range) for f in fields(self)
                                             if f.name not in self.map_ignores)

    def _resolve(self, rng: _Rng) -> "NoiseModel":
        """A copy with every :class:`Range` replaced by a value drawn uniformly from ``rng``, in field order."""
        drawn = {f.name: rng.uniform(v.lo, v.hi) for f in fields(self)
                 if isinstance(v := getattr(self, f.name), Range)}
        if not drawn:
            return self
        out = copy.copy(self)    # values come from validated ranges: no need to re-run cross-field checks
        for k, v in drawn.items():
            object.__setattr__(out, k, v)
        return out

    def draw(self, x: torch.Tensor, generator: GeneratorArg = None) -> Noisy:
        """Draw noise for a batch, one image at a time so that image ``i`` with a generator seeded ``s`` gets the
        same noise whatever the batch size (STYLE.md example 5)."""
        x = check_image(x)
        parts = []
        for i, g in enumerate(per_image_generators(generator, x.shape[0])):
            rng = _Rng(g, x.device)
            parts.append(self._resolve(rng)._draw_one(x[i:i + 1], rng))
        masks = [p.mask for p in parts]
        return Noisy(y=torch.cat([p.y for p in parts]),
                     sigma_map=torch.cat([p.sigma_map for p in parts]),
                     mask=None if masks[0] is None else torch.cat(masks))

    def sample(self, x: torch.Tensor, generator: GeneratorArg = None) -> torch.Tensor:
        return self.draw(x, generator).y

    def sigma_map(self, x: torch.Tensor) -> torch.Tensor:
        """Expected per-pixel std of ``y - x`` given ``x`` (shape of ``x``); raises when it is random."""
        x = check_image(x)
        if self.random_map:
            raise DiffDenoiseError(f"noise {self}: the noise map is random per image; "
                                   f"use draw(x, generator).sigma_map")
        return self._expected_map(x)

    def observed_map(self, y: torch.Tensor, window: int = 5) -> torch.Tensor:
        """The map a user can know: for signal-dependent noise, the model's map evaluated at the ``window`` x
        ``window`` local mean of the observation ``y`` instead of the unknown clean ``x``.

        Why: ``sigma_map(x)`` of a signal-dependent model is a function of x (for Poisson-Gaussian,
        ``x = (s^2 - b^2) / a`` exactly), so handing it to a method leaks the clean image. Signal-independent models
        return ``sigma_map`` unchanged (their map does not depend on x)."""
        y = check_image(y)
        if not self.signal_dependent:
            return self.sigma_map(y)
        return self.sigma_map(local_mean(y, window))

    def _draw_one(self, x: torch.Tensor, rng: _Rng) -> Noisy:
        raise NotImplementedError

    def _expected_map(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __str__(self) -> str:
        return spec(self)


def local_mean(v: torch.Tensor, window: int = 5) -> torch.Tensor:
    """Box mean over ``window`` x ``window`` pixels, same size (at the borders: the mean of the pixels inside)."""
    return F.avg_pool2d(v, window, stride=1, padding=window // 2, count_include_pad=False)


def format_value(value: Any, f: Any) -> str:
    kind = f.metadata.get("kind")
    if kind == "bool":
        return "true" if value else "false"
    if kind == "choice":
        return str(value)
    if value is None:
        return "none"
    unit = f.metadata["unit"]
    if isinstance(value, Range):
        return f"{fmt_number(value.lo, unit)}..{fmt_number(value.hi, unit)}"
    return fmt_number(value, unit)


def spec(model: NoiseModel) -> str:
    """Canonical spec string: required parameters positionally, then ``key=value`` for non-default options, in
    spec units (``gaussian:25``, ``poisson_gaussian:0.01,2,exact=true``).  ``parse_noise(spec(m))`` rebuilds ``m``."""
    parts = []
    for f in fields(model):
        value = getattr(model, f.name)
        if f.default is MISSING:
            parts.append(format_value(value, f))
        elif value != f.default:
            parts.append(f"{f.name}={format_value(value, f)}")
    return model.name + (":" + ",".join(parts) if parts else "")
