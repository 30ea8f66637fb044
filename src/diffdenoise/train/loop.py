"""``train(cfg)``: the one training loop for every model (CNN baselines and diffusion), on CPU, one GPU, or several
GPUs under ``torchrun`` (DDP; same code path, detected from ``WORLD_SIZE``).

Per step: a batch of patches cut on the device (:mod:`diffdenoise.data`), ``task.loss(net, batch, generator)``
(the net's forward under bf16 autocast on CUDA), AdamW with warm-up + cosine learning rate, gradient clipping,
an exponential moving average (EMA) of the weights.  Rank 0 logs and writes ``<out>/last.safetensors`` (see
:mod:`.checkpoint`), ``<out>/config.json`` (the resolved config) and ``<out>/log.jsonl``.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import nn

from ..errors import DiffDenoiseError
from .checkpoint import load_optimizer_state, load_weights, read_checkpoint, save_checkpoint
from .config import TrainConfig, config_to_dict, load_config, save_config
from .tasks import build_task


def lr_at(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then constant or a cosine from ``lr`` to ``lr_min`` at ``steps``.

    ``time_fraction`` (elapsed / ``max_minutes``) also drives the cosine: a run cut by its time budget (GPU leases
    are minutes long, and several runs may share one GPU) still ends annealed instead of stopping at a high rate."""
    if cfg.warmup > 0 and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(cfg.steps - cfg.warmup, 1)
    progress = min(max(max(step - cfg.warmup, 0) / span, time_fraction), 1.0)
    return cfg.lr_min + (cfg.lr - cfg.lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


class EMA:
    """Exponential moving average of the weights, ``ema <- d ema + (1 - d) theta`` with the warm-up
    ``d = min(decay, (1 + step) / (10 + step))``; buffers (BatchNorm statistics) are copied."""

    def __init__(self, net: nn.Module, decay: float):
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self._src = [p for p in net.parameters()]
        self._dst = [p for p in self.net.parameters()]
        self._bsrc = [b for b in net.buffers()]
        self._bdst = [b for b in self.net.buffers()]

    @torch.no_grad()
    def update(self, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        torch._foreach_lerp_(self._dst, self._src, 1.0 - d)
        for b, s in zip(self._bdst, self._bsrc):
            b.copy_(s)


class _AutocastNet:
    """What the task calls as ``net``: the (DDP / compiled) module under bf16 autocast, float32 outputs.

    The task's own arithmetic (noise, loss, schedules) therefore stays in float32.  Attribute access falls through
    to the plain module (``net.num_classes`` and the like).
    """

    def __init__(self, call: Any, module: nn.Module, device: torch.device, bf16: bool):
        self._call, self._module = call, module
        self._autocast = bf16 and device.type == "cuda"
        self._device_type = device.type

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self._device_type, dtype=torch.bfloat16, enabled=self._autocast):
            out = self._call(*args, **kwargs)
        return _to_float(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _to_float(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float(v) for k, v in out.items()}
    return out


def _distributed() -> tuple[int, int, int]:
    """(rank, local rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank, local, world


def _param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and kernels only (not biases, norms, embeddings of one dimension)."""
    decay = [p for p in net.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in net.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def resolve_config(cfg: TrainConfig, task: Any) -> TrainConfig:
    """Fill in what the config leaves implicit: name, out folder, data root, the net kwargs the task implies."""
    from ..data import default_data_root
    name = cfg.name or "run"
    defaults = task.net_kwargs_defaults(cfg) if hasattr(task, "net_kwargs_defaults") else {}
    return replace(cfg, name=name, out=str(Path(cfg.out or Path("runs") / name).resolve()),
                   data_root=str(Path(cfg.data_root or default_data_root()).resolve()),
                   net_kwargs={**defaults, **cfg.net_kwargs})


class _Log:
    """Rank-0 progress: plain lines (or a tqdm bar on a terminal) and ``log.jsonl``."""

    def __init__(self, out: Path, enabled: bool, total: int, start: int):
        self.enabled = enabled
        self.file = open(out / "log.jsonl", "a") if enabled else None
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, dynamic_ncols=True)

    def step(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.file is not None:
            self.file.close()


def _channels_last(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in batch.items()}


@torch.no_grad()
def evaluate(task: Any, net: Any, data: Any, cfg: TrainConfig, device: torch.device) -> float:
    """Mean task loss over ``cfg.eval_batches`` batches drawn with a fixed seed (the same every time)."""
    gen = torch.Generator(device=device).manual_seed(12345)
    total = 0.0
    for _ in range(cfg.eval_batches):
        batch = data.batch(cfg.batch, cfg.patch, gen)
        total += float(task.loss(net, batch, gen))
    return total / max(cfg.eval_batches, 1)


def train(cfg: TrainConfig, command: str = "") -> Path:
    """Train ``cfg.net`` on ``cfg.task`` and return the path of the last checkpoint (``<out>/last.safetensors``).

    Resuming (``cfg.resume``) restores step, weights, EMA and optimiser; ``cfg.init_from`` starts from shipped
    weights at step 0.  ``cfg.max_minutes`` stops cleanly (saving) when the time is up.
    """
    from ..data import build_data
    from ..nets import build_net

    rank, local, world = _distributed()
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True          # fixed patch shapes: let cuDNN pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
    task = build_task(cfg.task, cfg.task_options)
    cfg = resolve_config(cfg, task)
    if cfg.batch % world:
        raise DiffDenoiseError(f"batch {cfg.batch} is not divisible by the {world} processes")
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    start_time = time.time()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_net(cfg.net, **cfg.net_kwargs)
    start = 0
    resume_parts = None
    if cfg.resume:
        resume_parts, info = read_checkpoint(cfg.resume)
        old = info["config"]
        if (old.get("net"), old.get("net_kwargs")) != (cfg.net, cfg.net_kwargs):
            raise DiffDenoiseError(f"checkpoint {cfg.resume} holds net {old.get('net')} {old.get('net_kwargs')}, "
                                   f"config asks for {cfg.net} {cfg.net_kwargs}")
        net.load_state_dict(resume_parts["model"])
        start = info["step"]
    elif cfg.init_from:
        # Any weights of the same architecture may seed a run, also another task's (a DDPM's UNet seeding the
        # real-noise model): the names and every tensor shape must match, not the card's spelling of the kwargs.
        state, card = load_weights(cfg.init_from)
        mismatch = card["net"]["name"] != cfg.net
        if not mismatch and card["net"]["name"] == "unet":
            from ..nets.unet import adapt_seed          # colour -> gray, fewer condition channels
            try:
                state, how = adapt_seed(state, card["net"].get("kwargs", {}), net)
            except ValueError:
                mismatch, how = True, ""
            if how and rank == 0:
                print(f"init_from {cfg.init_from}: {how}", flush=True)
        if not mismatch:
            try:
                net.load_state_dict(state)
            except RuntimeError:
                mismatch = True
        if mismatch:
            raise DiffDenoiseError(f"weights {cfg.init_from} are for net {card['net']}, config asks for "
                                   f"{cfg.net} {cfg.net_kwargs}")
    net = net.to(device)
    use_cl = cfg.channels_last and device.type == "cuda"
    if use_cl:
        net = net.to(memory_format=torch.channels_last)
    ema = EMA(net, cfg.ema) if cfg.ema > 0 else None
    if ema is not None and resume_parts is not None and resume_parts["ema"]:
        ema.net.load_state_dict(resume_parts["ema"])

    opt = torch.optim.AdamW(_param_groups(net, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999),
                            fused=device.type == "cuda")
    if resume_parts is not None and resume_parts["optim"]:
        load_optimizer_state(opt, resume_parts["optim"], info["optim_groups"])

    call: Any = net
    if world > 1:
        call = nn.parallel.DistributedDataParallel(net, device_ids=[local] if device.type == "cuda" else None)
    if cfg.compile:
        call = torch.compile(call)
    model = _AutocastNet(call, net, device, cfg.bf16)

    data = build_data(cfg.data, cfg.data_root, cfg.color, device)
    eval_data = build_eval_data(cfg, device) if cfg.eval_every > 0 else None
    gen = torch.Generator(device=device).manual_seed(cfg.seed + rank + 1_000_003 * start)
    if resume_parts is not None and world == 1 and "state" in resume_parts["rng"]:
        gen.set_state(resume_parts["rng"]["state"])   # single process: resuming repeats the uninterrupted run
    card = {"net": {"name": cfg.net, "kwargs": cfg.net_kwargs},
            "method": task.method_card() if hasattr(task, "method_card") else {}}
    config = config_to_dict(cfg)
    if rank == 0:
        save_config(cfg, out / "config.json")
        n_params = sum(p.numel() for p in net.parameters())
        print(f"train {cfg.name}: net {cfg.net} ({n_params / 1e6:.2f}M parameters), task {cfg.task}, "
              f"{sum(len(s) for s in data.samplers)} images, device {device}, world {world}, "
              f"steps {start}->{cfg.steps}, out {out}", flush=True)

    def save(step_done: int) -> Path:
        path = out / "last.safetensors"
        if rank == 0:
            save_checkpoint(path, model=net, ema=ema.net if ema else None, optimizer=opt, step=step_done,
                            config=config, card=card, command=command, rng_state=gen.get_state())
        return path

    log = _Log(out, rank == 0, cfg.steps, start)
    local_batch = cfg.batch // world
    net.train()
    loss_sum = torch.zeros((), device=device)
    seen, t_log, step = 0, time.time(), start
    deadline = start_time + 60.0 * cfg.max_minutes if cfg.max_minutes > 0 else math.inf
    stopped_early = False
    path = out / "last.safetensors"
    time_fraction, loop_start = 0.0, time.time()
    try:
        while step < cfg.steps:
            if deadline != math.inf and step % 25 == 0:  # the same value on every rank: synced every 25 steps
                time_fraction = _shared_fraction((time.time() - loop_start) / max(deadline - loop_start, 1e-9),
                                                 world, device)
            lr = lr_at(step, cfg, time_fraction)
            for group in opt.param_groups:
                group["lr"] = lr
            batch = data.batch(local_batch, cfg.patch, gen)
            if use_cl:
                batch = _channels_last(batch)
            loss = task.loss(model, batch, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(step)
            loss_sum += loss.detach()
            seen += 1
            step += 1
            log.step()
            if step % cfg.log_every == 0 or step == cfg.steps:
                mean = float(loss_sum) / seen
                if world > 1:
                    t = torch.tensor([mean], device=device)
                    dist.all_reduce(t)
                    mean = float(t) / world
                if not math.isfinite(mean):
                    raise DiffDenoiseError(f"the loss became {mean} by step {step}; lower lr or check the task")
                dt = time.time() - t_log
                log.write({"step": step, "loss": mean, "lr": lr, "it_s": seen / dt, "img_s": seen * cfg.batch / dt,
                           "minutes": (time.time() - start_time) / 60})
                loss_sum.zero_()
                seen, t_log = 0, time.time()
            if eval_data is not None and step % cfg.eval_every == 0:
                net.eval()
                eval_model = _AutocastNet(ema.net if ema else net, ema.net if ema else net, device, cfg.bf16)
                log.write({"step": step, "eval_loss": evaluate(task, eval_model, eval_data, cfg, device)})
                net.train()
            if step % cfg.save_every == 0 and step < cfg.steps:
                path = save(step)
            if _time_up(deadline, world, device, step):
                stopped_early = step < cfg.steps
                break
        if world > 1 and not _replicas_agree(net, world):
            raise DiffDenoiseError(f"DDP replicas hold different weights at step {step}")
        path = save(step)
        if rank == 0:
            replicas = f" ({world} replicas identical)" if world > 1 else ""
            print(f"{'stopped at the time limit' if stopped_early else 'done'}: step {step}, "
                  f"{(time.time() - start_time) / 60:.1f} min, checkpoint {path}{replicas}", flush=True)
        if world > 1:
            dist.barrier()                             # no rank exits before rank 0 has written the checkpoint
    finally:
        log.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return path


def _replicas_agree(net: nn.Module, world: int) -> bool:
    """True when every rank holds the same parameters: a float64 fingerprint (sum, sum of squares, a cosine-weighted
    sum) per rank, gathered and compared exactly.  DDP keeps replicas bitwise equal; a difference is a bug."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in net.parameters()])
    weight = torch.cos(torch.arange(flat.numel(), device=flat.device, dtype=torch.float64))
    local = torch.stack([flat.sum(), flat.square().sum(), (flat * weight).sum()])
    gathered = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(gathered, local)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def _shared_fraction(fraction: float, world: int, device: torch.device) -> float:
    """The largest elapsed-time fraction over all ranks, so every rank uses the same learning rate."""
    if world == 1:
        return min(fraction, 1.0)
    value = torch.tensor([fraction], device=device, dtype=torch.float64)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return min(float(value.item()), 1.0)


def _time_up(deadline: float, world: int, device: torch.device, step: int) -> bool:
    """Every rank must stop at the same step: under DDP rank 0's clock decides, checked every 10 steps."""
    if deadline == math.inf:
        return False
    if world == 1:
        return time.time() >= deadline
    if step % 10:
        return False
    flag = torch.tensor([1.0 if time.time() >= deadline else 0.0], device=device)
    dist.broadcast(flag, 0)
    return bool(flag.item() > 0)


def build_eval_data(cfg: TrainConfig, device: torch.device) -> Any:
    """Evaluation sources (evaluation folders allowed here, unlike training)."""
    from ..data import Mixture
    from ..data.images import MNIST, CleanImages, PairedImages
    from ..data.sources import check_source_spec
    if not cfg.eval_data:
        raise DiffDenoiseError("eval_every > 0 needs eval_data (data-source specs)")
    samplers = []
    for spec in cfg.eval_data:
        check_source_spec(spec)
        kind, root = spec["kind"], cfg.data_root
        if kind == "clean":
            d = CleanImages(spec["paths"], color=spec.get("color", cfg.color), root=root, training=False)
        elif kind == "paired":
            d = PairedImages(spec["noisy"], spec["clean"], include=spec.get("include"), exclude=spec.get("exclude"),
                             color=spec.get("color", cfg.color), root=root, training=False)
        else:
            d = MNIST(Path(root) / spec["path"], split=spec.get("split", "test"))
        samplers.append(d.sampler(device))
    return Mixture(samplers, [float(s.get("weight", 1.0)) for s in cfg.eval_data])


def train_main(argv: Sequence[str] | None = None) -> int:
    """``python -m diffdenoise.train CONFIG [--set key=value ...] [--out DIR] [--dry-run]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m diffdenoise.train",
        description="Train any model of the project (CNN or diffusion) from a JSON preset.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
               "  python -m diffdenoise.train configs/dncnn-color.json\n"
               "  python -m diffdenoise.train configs/dncnn-gray.json --set steps=2000 --set max_minutes=8\n"
               "  python -m diffdenoise.train configs/dncnn-gray.json --set resume=runs/dncnn-gray\n"
               "  torchrun --nproc-per-node 2 -m diffdenoise.train configs/pridnet-color.json\n")
    parser.add_argument("config", help="JSON preset (keys: the fields of TrainConfig)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field; VALUE is JSON or a plain string; a.b=v sets a key in a dict "
                             "field (default: none)")
    parser.add_argument("--out", default=None, help="run folder (default: the config's out, else runs/<name>)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit (default: off)")
    args = parser.parse_args(argv)
    try:
        overrides = list(args.overrides) + ([f"out={args.out}"] if args.out else [])
        cfg = load_config(args.config, overrides)
        if args.dry_run:
            print(json.dumps(config_to_dict(resolve_config(cfg, build_task(cfg.task, cfg.task_options))), indent=2))
            return 0
        command = "python -m diffdenoise.train " + " ".join(shlex.quote(a) for a in
                                                            (argv if argv is not None else sys.argv[1:]))
        train(cfg, command=command)
    except DiffDenoiseError as e:
        print(f"diffdenoise: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:                          # an unwritable run folder, a full disk
        print(f"diffdenoise: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0
