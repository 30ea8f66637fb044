"""How inference runs: numeric precision, ``torch.compile`` of a method's network, the devices of a sharded run,
and sharding.

- :func:`autocast` is the precision switch of every neural method (their ``precision`` option): ``"auto"`` and
  ``"bf16"`` run the network under bfloat16 autocast on CUDA, ``"fp32"`` in float32; on the CPU always float32.
  Weights loaded for a CUDA device are also put in channels-last layout (``train.checkpoint.load_net``), which
  cuDNN's convolutions prefer, the more so in bf16.

- :func:`compile_net` compiles a network in place (its ``forward``), falling back to the uncompiled module with a
  one-line warning when compilation fails -- at once or, as is usual with ``torch.compile``, at the first call.
  :func:`compile_method` does it for the network a denoiser runs on images of a given channel count (methods that
  load a colour and a gray model lazily load the one needed here, as their first call would).
- :func:`parse_devices` reads ``--devices``: ``all`` (every visible CUDA GPU), ``N`` (the first N) or a comma list
  (``cuda:0,cuda:1``; ``cpu,cpu`` runs two CPU workers, which is what the tests use).
- :func:`shard` gives worker ``rank`` of ``world`` its disjoint slice of a list (every ``world``-th item, so that a
  sorted folder of mixed sizes spreads evenly); :func:`torchrun_rank` reads the rank that ``torchrun`` sets.

Outputs do not depend on the sharding: every image is denoised on its own with a generator seeded by ``--seed``
alone (not by its position), so a sharded run writes the same files as a single-process run on the same kind of
device.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Literal, Sequence, TypeVar

import torch
from torch import nn

from .errors import DiffDenoiseError

T = TypeVar("T")

COMPILED_FLAG = "_diffdenoise_compiled"
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise DiffDenoiseError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return precision


def autocast(device: torch.device | str, precision: str = "auto") -> torch.autocast:
    """bf16 autocast on CUDA for ``auto``/``bf16``; a disabled (float32) context otherwise."""
    device = torch.device(device)
    enabled = device.type == "cuda" and check_precision(precision) in ("auto", "bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _warn(message: str) -> None:
    print(f"diffdenoise: warning: {message}", file=sys.stderr, flush=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def compile_net(net: nn.Module, *, backend: str = "inductor", mode: str | None = None) -> bool:
    """Replace ``net.forward`` by its ``torch.compile`` version, guarded: if compiling raises (now or at a later
    call), warn once and run the plain forward from then on.  Idempotent; returns True when compilation was set up.
    ``backend``/``mode``: passed to ``torch.compile`` (``backend="eager"`` traces without generating code: tests)."""
    if getattr(net, COMPILED_FLAG, False):
        return True
    eager = net.forward
    try:
        compiled = torch.compile(eager, backend=backend, mode=mode)
    except Exception as e:  # noqa: BLE001 -- any failure of the optional compiler means: run uncompiled
        _warn(f"torch.compile is unavailable ({_first_line(e)}); running uncompiled")
        return False
    state = {"ok": True}

    def forward(*args: Any, **kwargs: Any) -> Any:
        if state["ok"]:
            try:
                return compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 -- a real error of the net shows again in the eager call below
                state["ok"] = False
                _warn(f"torch.compile failed ({_first_line(e)}); running uncompiled")
        return eager(*args, **kwargs)

    net.forward = forward            # an instance attribute: nn.Module.__call__ runs it (hooks unchanged)
    setattr(net, COMPILED_FLAG, True)
    return True


def compile_method(method: Any, channels: int, **options: Any) -> bool:
    """Compile the network ``method`` runs on ``channels``-channel images (see :func:`compile_net`); False when the
    method has no network (classical methods)."""
    from .tiling import inner_net
    net, _ = inner_net(method, channels)
    return compile_net(net, **options) if net is not None else False


def cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_devices(spec: str) -> list[str]:
    """``--devices``: ``all`` | ``N`` | ``dev,dev,...`` -> a list of device names (module docstring).  ``all``
    without a GPU is the one CPU."""
    text = spec.strip().lower()
    available = cuda_count()
    if text == "all":
        return [f"cuda:{i}" for i in range(available)] or ["cpu"]
    if text.isdigit():
        n = int(text)
        if n < 1 or n > available:
            raise DiffDenoiseError(f"--devices {n}: {available} CUDA GPU(s) visible")
        return [f"cuda:{i}" for i in range(n)]
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if not devices:
        raise DiffDenoiseError("--devices takes all, a number of GPUs, or a comma list such as cuda:0,cuda:1")
    out = []
    for name in devices:
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError):
            raise DiffDenoiseError(f"--devices: {name!r} is not a device name (cpu, cuda:0, ...)") from None
        if dev.type == "cuda":
            index = 0 if dev.index is None else dev.index
            if index >= available:
                raise DiffDenoiseError(f"--devices: {name} asked for, {available} CUDA GPU(s) visible")
            out.append(f"cuda:{index}")
        elif dev.type == "cpu":
            out.append("cpu")
        else:
            raise DiffDenoiseError(f"--devices: {dev.type} devices are not supported; use cpu or cuda:N")
    return out


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Worker ``rank``'s part of ``items``: items rank, rank + world, rank + 2 world, ... (disjoint, covering)."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside 0..{world - 1}")
    return list(items[rank::world])


def torchrun_rank() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when launched by ``torchrun`` with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or "RANK" not in os.environ:
        return None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))


__all__ = ["autocast", "check_precision", "PRECISIONS", "compile_net", "compile_method", "parse_devices", "shard", "torchrun_rank", "cuda_count"]
