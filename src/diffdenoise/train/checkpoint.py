"""Checkpoints and shipped weights: safetensors only (never pickle) plus JSON.

Training checkpoint ``<run>/last.safetensors``: fp32 tensors ``model/<key>``, ``ema/<key>``,
``optim/<param index>/<state name>`` and ``rng/state`` (rank 0's data/noise generator); string metadata ``format``,
``step``, ``config`` (the resolved TrainConfig), ``card`` (net name and kwargs, the task's method card),
``optim_groups`` (AdamW hyper-parameters) and ``command``.

Shipped weights ``weights/<stem>.safetensors`` (or shards ``<stem>-00001-of-0000K.safetensors``, each under 15 MiB):
the EMA weights in fp16, beside the card ``weights/<stem>.json``::

    {"net": {"name": NETS key, "kwargs": {...}}, "method": task.method_card(), "data": [...], "noise": ...,
     "steps": int, "command": str, "metrics": {...}, "config": {resolved TrainConfig}, "files": [...]}
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from ..errors import DiffDenoiseError

FORMAT = "diffdenoise.checkpoint/1"
MAX_SHARD_BYTES = 15 * 2 ** 20


def weights_dir() -> Path:
    """``$DIFFDENOISE_WEIGHTS``, else ``<repo>/weights``."""
    env = os.environ.get("DIFFDENOISE_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "weights"


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp-" + str(os.getpid()))
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy that shares memory with nothing (safetensors refuses aliases)."""
    return t.detach().to("cpu", copy=True).contiguous()


# --- training checkpoints -------------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, ema: nn.Module | None,
                    optimizer: torch.optim.Optimizer | None, step: int, config: dict[str, Any],
                    card: dict[str, Any], command: str = "", rng_state: torch.Tensor | None = None) -> Path:
    path = Path(path)
    tensors = {f"model/{k}": _plain(v) for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema/{k}": _plain(v) for k, v in ema.state_dict().items()})
    groups: list[dict[str, Any]] = []
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, state in sd["state"].items():
            for name, v in state.items():
                if not isinstance(v, torch.Tensor):
                    v = torch.tensor(v)
                tensors[f"optim/{i}/{name}"] = _plain(v)
        groups = sd["param_groups"]
    if rng_state is not None:
        tensors["rng/state"] = _plain(rng_state)
    metadata = {"format": FORMAT, "step": str(int(step)), "config": json.dumps(config), "card": json.dumps(card),
                "optim_groups": json.dumps(groups), "command": command}
    _atomic_save(tensors, path, metadata)
    return path


def checkpoint_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder holding ``last.safetensors``."""
    p = Path(path)
    if p.is_dir():
        p = p / "last.safetensors"
    if not p.is_file():
        raise DiffDenoiseError(f"checkpoint not found: {p}")
    return p


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """-> ({"model": state, "ema": state, "optim": {param index: {name: tensor}}, "rng": {"state": generator
    state of rank 0}}, metadata decoded)."""
    from safetensors import safe_open
    p = checkpoint_path(path)
    parts: dict[str, dict[str, Any]] = {"model": {}, "ema": {}, "optim": {}, "rng": {}}
    try:
        handle = safe_open(str(p), framework="pt", device=str(device))
    except (SafetensorError, OSError) as e:       # not a safetensors file, unreadable
        raise DiffDenoiseError(f"{p} is not a readable safetensors checkpoint ({e})") from None
    with handle as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise DiffDenoiseError(f"{p} is not a diffdenoise training checkpoint (format {meta.get('format')!r})")
        for key in f.keys():
            kind, _, rest = key.partition("/")
            if kind == "optim":
                i, _, name = rest.partition("/")
                parts["optim"].setdefault(int(i), {})[name] = f.get_tensor(key)
            else:
                parts[kind][rest] = f.get_tensor(key)
    info = {"step": int(meta["step"]), "config": json.loads(meta["config"]), "card": json.loads(meta["card"]),
            "optim_groups": json.loads(meta.get("optim_groups", "[]")), "command": meta.get("command", "")}
    return parts, info


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[int, dict[str, torch.Tensor]],
                         groups: list[dict[str, Any]]) -> None:
    """Restore AdamW moments (in each parameter's own memory layout) and hyper-parameters."""
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            for name, v in st.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape:
                    st[name] = torch.empty_like(p).copy_(v)


# --- shipped weights ------------------------------------------------------------------------------------------

def _shard_names(stem: str, k: int) -> list[str]:
    if k == 1:
        return [f"{stem}.safetensors"]
    return [f"{stem}-{i:05d}-of-{k:05d}.safetensors" for i in range(1, k + 1)]


def _existing_weight_files(folder: Path, stem: str) -> list[Path]:
    pattern = re.compile(re.escape(stem) + r"(-\d{5}-of-\d{5})?\.safetensors$")
    return sorted(p for p in folder.glob(f"{stem}*.safetensors") if pattern.fullmatch(p.name))


def export_weights(checkpoint_or_net: str | os.PathLike | nn.Module, stem: str, card: dict[str, Any] | None = None,
                   folder: str | os.PathLike | None = None, shard_bytes: int = MAX_SHARD_BYTES,
                   overwrite: bool = True) -> Path:
    """Write ``<folder>/<stem>.safetensors`` (fp16; shards of at most ``shard_bytes`` when larger) and the card
    ``<folder>/<stem>.json``; returns the card's path.

    From a checkpoint: the EMA weights (the raw weights when the run had no EMA), and a card built from the
    checkpoint (net, method, data, noise, steps, command, config) updated by ``card``.  From a module: ``card``
    must hold ``{"net": {"name": ..., "kwargs": {...}}}``.  From a weights card (a ``.json`` path): those weights
    and that card (its metrics dropped: they were measured under the old name) under the new stem; this is how a
    candidate a GPU round brought back is shipped, or evaluated under the stem a method loads.  ``overwrite=False``
    refuses a stem whose card is already in the folder.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", stem):
        raise DiffDenoiseError(f"bad weights stem {stem!r}: use letters, digits, '.', '_', '+', '-'")
    folder = Path(folder) if folder is not None else weights_dir()
    if not overwrite and (folder / f"{stem}.json").exists():
        raise DiffDenoiseError(f"{folder / stem}.json exists; pick another stem or folder, or add --force to "
                               f"replace those weights")
    extra = dict(card or {})
    if isinstance(checkpoint_or_net, nn.Module):
        state = checkpoint_or_net.state_dict()
        full: dict[str, Any] = {}
    elif str(checkpoint_or_net).endswith(".json"):
        state, full = load_weights(checkpoint_or_net)
        full = {k: v for k, v in full.items() if k != "files"}
        full["metrics"] = {}
    else:
        parts, info = read_checkpoint(checkpoint_or_net)
        state = parts["ema"] or parts["model"]
        cfg = info["config"]
        task_options = cfg.get("task_options", {})
        full = {**info["card"], "data": cfg.get("data"), "noise": task_options.get("noise"), "steps": info["step"],
                "command": info["command"], "metrics": {}, "config": cfg}
    full.update(extra)
    net = full.get("net")
    if not (isinstance(net, dict) and "name" in net and isinstance(net.get("kwargs", {}), dict)):
        raise DiffDenoiseError('the card needs "net": {"name": NETS key, "kwargs": {...}}')
    net.setdefault("kwargs", {})
    full.setdefault("metrics", {})

    tensors: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        v = _plain(v)
        if v.is_floating_point():
            v16 = v.half()
            if not torch.isfinite(v16).all() and torch.isfinite(v).all():
                raise DiffDenoiseError(f"tensor {k} overflows fp16 (max |value| {v.abs().max().item():.3g})")
            v = v16
        tensors[k] = v
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in tensors.items():
        nbytes = v.numel() * v.element_size()
        if nbytes > shard_bytes:
            raise DiffDenoiseError(f"tensor {k} ({nbytes} bytes) is larger than a shard ({shard_bytes} bytes)")
        if size + nbytes > shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += nbytes
    names = _shard_names(stem, len(shards))
    folder.mkdir(parents=True, exist_ok=True)
    for old in _existing_weight_files(folder, stem):
        if old.name not in names:
            old.unlink()
    meta = {"format": "diffdenoise.weights/1", "stem": stem, "net": json.dumps(net)}
    for name, shard in zip(names, shards):
        _atomic_save(shard, folder / name, meta)
    full["files"] = names
    card_path = folder / f"{stem}.json"
    tmp = card_path.with_name(card_path.name + ".tmp-" + str(os.getpid()))
    tmp.write_text(json.dumps(full, indent=2, default=str) + "\n")
    os.replace(tmp, card_path)
    return card_path


def _locate(stem: str | os.PathLike) -> tuple[Path, str]:
    """A bare stem lives in :func:`weights_dir`; a path (``folder/stem`` or ``folder/stem.json``) is taken as is."""
    s = str(stem)
    if os.sep in s or "/" in s or s.endswith(".json"):
        p = Path(s)
        return p.parent, p.name[:-5] if p.name.endswith(".json") else p.name
    return weights_dir(), s


def load_weights(stem: str | os.PathLike, device: str | torch.device = "cpu"
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict (fp16 as stored) and the card of a shipped model; missing files raise naming the file."""
    from safetensors.torch import load_file
    folder, name = _locate(stem)
    card_path = folder / f"{name}.json"
    if not card_path.is_file():
        raise DiffDenoiseError(f"weights card not found: {card_path} (train the model and export it with "
                               f"`python -m diffdenoise.train.export RUN/last.safetensors --stem {name}`)")
    card = json.loads(card_path.read_text())
    files = card.get("files") or _shard_names(name, 1)
    state: dict[str, torch.Tensor] = {}
    for f in files:
        p = folder / f
        if not p.is_file():
            raise DiffDenoiseError(f"weights file not found: {p}")
        try:
            state.update(load_file(str(p), device=str(device)))
        except (SafetensorError, OSError) as e:   # a truncated or foreign file
            raise DiffDenoiseError(f"{p} is not a readable safetensors file ({e})") from None
    return state, card


def load_net(stem: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build ``NETS[card.net.name](**card.net.kwargs)`` and load the weights: ``(net.eval() on device, card)``.
    On CUDA the weights are channels-last (NHWC), the layout cuDNN's convolutions run fastest in; inputs may stay
    NCHW (each convolution follows its weight's layout), outputs are unchanged."""
    from ..nets import build_net
    state, card = load_weights(stem)
    net = build_net(card["net"]["name"], **card["net"].get("kwargs", {}))
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise DiffDenoiseError(f"weights {stem} do not fit net {card['net']}: {str(e).splitlines()[0]}") from None
    net = net.to(device).eval()
    if torch.device(device).type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    return net, card
