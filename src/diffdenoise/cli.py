"""The `diffdenoise` command line: a thin layer over the library.

Every command has --help with examples; user errors are one line on stderr and exit code 2.  The CLI speaks 8-bit
units for sigma (``--sigma 25`` is 25/255 inside the library).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from .errors import DiffDenoiseError

EXIT_USER = 2


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the Examples block as written and appends real defaults (not None/False) to option help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command line, with where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER, f"diffdenoise: error: {message} (see `{self.prog} --help`)\n")


def _examples(*lines: str) -> str:
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


def _sigma_arg(text: str) -> float | None:
    """--sigma in 8-bit units, or 'auto' (estimate from the image)."""
    if text.lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"sigma must be a number in 8-bit units or 'auto', got {text!r}") from None
    if not 0 < value <= 255:
        raise argparse.ArgumentTypeError(f"sigma must be in (0, 255] (8-bit units), got {value:g}")
    return value / 255.0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction_arg(text: str) -> float:
    """--missing: a fraction of pixels in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1) (0.5 = half the pixels), got {value:g}")
    return value


def _tile_arg(text: str) -> str | int | None:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes auto, 0 or a size >= 64, got {text!r}") from None
    if value == 0:
        return None
    if value < 64:
        raise argparse.ArgumentTypeError(f"--tile takes auto, 0 or a size >= 64, got {value}")
    return value


def _device(name: str) -> str:
    """--device: auto, cpu, cuda or cuda:N, checked against what this machine has."""
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DiffDenoiseError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DiffDenoiseError(f"--device {name} asked for, but no CUDA GPU is available")
        if dev.index is not None and dev.index >= count:
            raise DiffDenoiseError(f"--device {name} asked for, {count} CUDA GPU(s) visible")
    elif dev.type != "cpu":
        raise DiffDenoiseError(f"--device {name}: {dev.type} devices are not supported; use cpu or cuda")
    return name


# ----------------------------------------------------------------------------------------------------- inputs/outputs

def _expand_inputs(paths: Sequence[str]) -> list[Path]:
    from .imageio import READ_SUFFIXES
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in READ_SUFFIXES)
            if not found:
                raise DiffDenoiseError(f"no images in folder {p}")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise DiffDenoiseError(f"no such file or folder: {p}")
    return files


def _output_paths(paths: Sequence[str], inputs: list[Path], out: str | None, fmt: str | None, *,
                  bit_depth: int | None = None, tag: str = "denoised") -> list[Path]:
    """Map inputs (``paths`` as given, expanded to ``inputs``) to outputs: a file for one input file, else files
    inside the folder ``out``.  Without ``out``, each result goes beside its input as ``<name>_<tag>`` (files of a
    folder ``F`` into ``F_<tag>/``).  Refuses what would surprise: an image file name for several inputs,
    ``--format`` against the name's suffix, 16-bit JPEG, and an output that is an input."""
    many = _several(paths, inputs)
    folders: list[Path] = []
    if out is None:
        results = []
        for given in map(Path, paths):
            if given.is_dir():
                folder = given.resolve().parent / f"{given.resolve().name}_{tag}"
                folders.append(folder)
                results += [folder / f"{src.stem}{_out_suffix(src, fmt)}" for src in inputs if src.parent == given]
            else:
                results.append(given.with_name(f"{given.stem}_{tag}{_out_suffix(given, fmt)}"))
    else:
        out_p = Path(out)
        if many:
            _refuse_file_name(out_p, f"-o {out}")
        as_folder = many or out_p.is_dir() or out.endswith(os.sep) or not out_p.suffix
        if fmt and not as_folder and _same_format(out_p.suffix, fmt) is False:
            raise DiffDenoiseError(f"-o {out} and --format {fmt} disagree; drop one of them")
        if as_folder:
            folders.append(out_p)
            results = [out_p / f"{src.stem}{_out_suffix(src, fmt)}" for src in inputs]
        else:
            results = [out_p.with_suffix(f".{fmt}") if fmt else out_p]
            if not results[0].parent.is_dir():
                raise DiffDenoiseError(f"output folder does not exist: {results[0].parent}")
    if bit_depth == 16 and any(dst.suffix.lower() in (".jpg", ".jpeg") for dst in results):
        raise DiffDenoiseError("JPEG holds 8 bits per channel; for --bit-depth 16 write PNG or TIFF (--format)")
    _check_outputs(results, inputs)
    for folder in folders:
        _make_folder(folder)
    return results


def _several(paths: Sequence[str], inputs: list[Path]) -> bool:
    """Several results (more than one input, or a folder given): outputs go into folders."""
    return len(inputs) > 1 or any(Path(p).is_dir() for p in paths)


def _refuse_file_name(folder: Path, given: str) -> None:
    """Where several results need a folder, an image file name (``-o two.png``) is a mistake, not a folder name."""
    from .imageio import READ_SUFFIXES
    if folder.suffix.lower() in READ_SUFFIXES and not folder.is_dir():
        raise DiffDenoiseError(f"{given} names an image file, but there are several inputs or a folder; give a "
                               f"folder (e.g. {folder.with_suffix('')}/)")


def _make_folder(folder: Path) -> None:
    """An output folder, created with its parents; one error line when that cannot be."""
    if folder.exists() and not folder.is_dir():
        raise DiffDenoiseError(f"output {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DiffDenoiseError(f"cannot create output folder {folder}: {e.strerror}") from None


def _out_suffix(src: Path, fmt: str | None) -> str:
    """An output's suffix: ``--format``, else the input's, with JPEG, BMP and WebP written as lossless PNG."""
    if fmt:
        return f".{fmt}"
    return ".png" if src.suffix.lower() in (".jpg", ".jpeg", ".bmp", ".webp") else src.suffix.lower()


def _same_format(suffix: str, fmt: str) -> bool | None:
    """Whether a file suffix and a --format name agree (None: the suffix names no image format)."""
    kinds = {".png": "png", ".tif": "tif", ".tiff": "tif", ".jpg": "jpg", ".jpeg": "jpg"}
    kind = kinds.get(suffix.lower())
    return None if kind is None else kind == kinds[f".{fmt}"]


def _file_key(path: Path) -> tuple:
    """What identifies a file on disk: (device, inode) when it exists (hard links, symlinks), else its real path."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def _check_outputs(outputs: Sequence[Path], reads: Sequence[Path | str | None]) -> None:
    """Refuse an output that is a file the command reads (an input, a reference, a mask, a noise map) or another
    output: nothing the user gave is ever overwritten, and no result replaces another."""
    read_keys = {_file_key(Path(p)): Path(p) for p in reads if p}
    seen: dict[tuple, Path] = {}
    for dst in outputs:
        key = _file_key(dst)
        if key in read_keys:
            raise DiffDenoiseError(f"output {dst} is the file {read_keys[key]} this command reads; "
                                   f"refusing to overwrite it")
        if key in seen:
            raise DiffDenoiseError(f"two outputs would be the same file ({seen[key]} and {dst}); name them apart")
        seen[key] = dst


def _each(items: Sequence, work: Callable[[int, object], None], *, strict: bool, show: bool, desc: str,
          after: Callable[[], None] | None = None) -> int:
    """``work(i, item)`` for every item, under a progress bar when ``show``; returns how many failed.  ``strict``
    (one input): a DiffDenoiseError is the command's error (one line, exit 2).  Otherwise it is reported on its own
    line and the other items go on (exit 1 at the end).  ``after``: called after each item, failed or not."""
    bar = None
    if show and len(items) > 1:
        from tqdm import tqdm
        bar = tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr)
    failures = 0
    try:
        for i, item in enumerate(items):
            try:
                work(i, item)
            except DiffDenoiseError as e:
                if strict:
                    raise
                failures += 1
                _say(f"diffdenoise: error: {e}", bar)
            if after is not None:
                after()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return failures


def _say(line: str, bar: object = None) -> None:
    """A line on stderr that does not tear a progress bar."""
    if bar is not None:
        from tqdm import tqdm
        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def _note(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"diffdenoise: note: {text}", file=sys.stderr)


# -------------------------------------------------------------------------------------------------------- commands

def cmd_methods(args: argparse.Namespace) -> int:
    from .registry import list_methods, weights_status
    rows = [(m.name, m.family, weights_status(m), m.summary) for m in list_methods()]
    width = max(len(r[0]) for r in rows)
    for name, family, status, summary in rows:
        print(f"{name:<{width}}  {family:<9}  {status:<18}  {summary}")
    return 0


def _load_noise_map(spec: str | None, y, path: Path):
    if spec is None:
        return None
    import torch
    from .imageio import read_image, to_tensor
    if spec == "auto":
        from .estimate import estimate_noise_map
        return estimate_noise_map(y)
    m = read_image(spec)
    if m.data.shape[:2] != tuple(y.shape[-2:]):
        raise DiffDenoiseError(f"noise map {spec} is {m.data.shape[1]}x{m.data.shape[0]}, "
                               f"image {path} is {y.shape[-1]}x{y.shape[-2]}")
    return to_tensor(m.data).to(torch.float32)


def cmd_denoise(args: argparse.Namespace) -> int:
    """Resolve inputs, outputs and the method; then run on one device, on several (one worker process each, a
    disjoint slice of the files each) or, under ``torchrun``, on this rank's slice (see ``diffdenoise.runtime``)."""
    import torch
    from .registry import default_method, get_method_spec
    from .runtime import parse_devices, shard, torchrun_rank

    inputs = _expand_inputs(args.inputs)
    many = _several(args.inputs, inputs)
    outputs = _output_paths(args.inputs, inputs, args.output, args.format, bit_depth=args.bit_depth)
    if (args.compare or args.uncertainty or args.reference) and many:
        raise DiffDenoiseError("--compare, --reference and --uncertainty work with one input image")
    if args.uncertainty and (args.samples or 1) < 2:
        raise DiffDenoiseError("--uncertainty needs --samples 2 or more (the map is the std over the samples)")
    side = [Path(f) for f in (args.compare, args.uncertainty) if f]
    noise_file = args.noise_map if args.noise_map not in (None, "auto") else None
    _check_outputs(outputs + side, [*inputs, args.reference, noise_file])
    for f in (args.reference, noise_file):
        if f and not Path(f).is_file():
            raise DiffDenoiseError(f"no such file: {f}")
    args.method = args.method or default_method()
    spec = get_method_spec(args.method)
    if spec.blind and (args.sigma is not None or args.noise_map):
        _note(args, f"{args.method} is blind (it needs no noise level): --sigma and --noise-map are ignored")
    pairs = list(zip(inputs, outputs))
    launched = torchrun_rank()
    if launched is not None:
        if args.devices:
            raise DiffDenoiseError("--devices cannot be used under torchrun: each rank takes one device")
        rank, world, local = launched
        device = _device(args.device)
        if device == "cuda":
            device = f"cuda:{local % torch.cuda.device_count()}"
        mine = shard(pairs, rank, world)
        failures = _denoise_files(args, mine, device, show=rank == 0 and len(pairs) > 1,
                                  desc=f"denoise [{args.method}, rank {rank} of {world}]")
        return _report_failures(failures, len(mine))
    devices = parse_devices(args.devices) if args.devices else [_device(args.device)]
    if args.devices and devices == ["cpu"]:
        _note(args, f"no CUDA GPU visible: --devices {args.devices} runs on the CPU")
    if len(devices) == 1 or len(pairs) == 1:
        failures = _denoise_files(args, pairs, devices[0], show=len(pairs) > 1, desc=f"denoise [{args.method}]")
    else:
        failures = _denoise_sharded(args, pairs, devices)
    return _report_failures(failures, len(pairs))


def _report_failures(failures: int, total: int) -> int:
    if failures:
        print(f"diffdenoise: {failures} of {total} image(s) failed", file=sys.stderr)
        return 1
    return 0


def _denoise_files(args: argparse.Namespace, pairs: Sequence[tuple[Path, Path]], device: str, *,
                   show: bool = False, desc: str = "denoise", on_image: Callable[[], None] | None = None) -> int:
    """Denoise ``pairs`` (input, output) on ``device``; returns the number of images that failed.  ``show``: a
    progress bar over the images (unless --quiet); ``on_image``: called after each image (the sharded run's
    progress).  One image alone (not sharded): its error is the command's, and a bar follows its progress when it
    takes more than a second."""
    import numpy as np
    import torch
    from .imageio import from_tensor, read_image, to_tensor, write_image
    from .registry import build_method, get_method_spec

    spec = get_method_spec(args.method)
    neural = spec.family != "classical"
    options = {k: v for k, v in (("steps", args.steps), ("samples", args.samples), ("sampler", args.sampler),
                                 ("precision", args.precision if neural else None),
                                 ("ensemble", getattr(args, "ensemble", 1) if neural else None))
               if v is not None}
    t_start = time.perf_counter()
    method = build_method(args.method, device=device, tile=args.tile, **options)
    compile_net = args.compile and neural
    if args.compile and not compile_net:
        _note(args, f"--compile applies to neural methods; {args.method} runs as is")
    if getattr(args, "ensemble", 1) != 1 and not neural:
        _note(args, f"--ensemble applies to neural methods; {args.method} runs once")
    from .runtime import torchrun_rank
    alone = len(pairs) == 1 and on_image is None and torchrun_rank() is None   # one image, not a rank's share
    t_first: list[float] = []

    def one(_: int, pair: tuple[Path, Path]) -> None:
        src, dst = pair
        img = read_image(src)
        reference = read_image(args.reference) if args.reference else None
        if reference is not None and reference.data.shape != img.data.shape:
            raise DiffDenoiseError(f"reference {args.reference} is {_size(reference.data)}, input {src} is "
                                   f"{_size(img.data)}")
        if img.alpha is not None and dst.suffix.lower() in (".jpg", ".jpeg"):
            _note(args, f"{dst} is a JPEG: the alpha channel of {src} is dropped (write PNG or TIFF to keep it)")
        y = to_tensor(img.data).to(device)
        sigma = args.sigma
        noise_map = _load_noise_map(args.noise_map, y, src)
        if noise_map is not None:
            sigma = noise_map.to(device)
        if compile_net:
            from .runtime import compile_method
            compile_method(method, y.shape[1])
        generator = torch.Generator(device=device).manual_seed(args.seed) if spec.stochastic else None
        t0 = time.perf_counter()
        with _FractionBar(alone and not args.quiet, f"{src.name} [{args.method}]") as progress:
            with torch.inference_mode():
                x_hat = method(y, sigma, generator=generator, progress=progress)
        seconds = time.perf_counter() - t0
        out = img.with_data(np.clip(from_tensor(x_hat.float().cpu()), 0.0, 1.0))
        write_image(dst, out, bit_depth=args.bit_depth)
        if not args.quiet and alone:
            scores = f", PSNR {_psnr(img, reference):.2f} -> {_psnr(out, reference):.2f} dB" if reference else ""
            print(f"{src} -> {dst}  [{args.method}, {seconds:.2f} s{scores}]", file=sys.stderr)
        if args.compare:
            _write_compare(Path(args.compare), img, out, reference, args.method)
        if args.uncertainty:
            _write_uncertainty(Path(args.uncertainty), method)
        if not t_first:
            t_first.append(time.perf_counter())

    failures = _each(list(pairs), one, strict=alone, show=show and not args.quiet, desc=desc, after=on_image)
    if show and not args.quiet:
        _throughput(len(pairs), t_start, t_first[0] if t_first else None, time.perf_counter(),
                    f"{desc.removeprefix('denoise ').strip('[]')}, {device}")
    return failures


def _size(data) -> str:
    """An image array's size as people write it: width x height (x channels)."""
    return f"{data.shape[1]}x{data.shape[0]}" + (f"x{data.shape[2]}" if data.ndim == 3 else "")


def _psnr(img, reference) -> float:
    from .imageio import quantize
    from .metrics import psnr
    return psnr(quantize(img.data), quantize(reference.data))


class _FractionBar:
    """A context giving a ``progress(fraction)`` callback that drives a percent bar on stderr, shown only once the
    work has taken a second (a large photo on the CPU), or None when ``enabled`` is false."""

    def __init__(self, enabled: bool, desc: str):
        self.enabled, self.desc, self.bar = enabled, desc, None

    def __enter__(self) -> Callable[[float], None] | None:
        if not self.enabled:
            return None
        from tqdm import tqdm
        self.bar = tqdm(total=100, desc=self.desc, unit="%", delay=1.0, file=sys.stderr,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")

        def progress(fraction: float) -> None:
            step = round(100 * min(max(float(fraction), 0.0), 1.0)) - self.bar.n
            if step > 0:
                self.bar.update(step)             # update, not refresh: it keeps the one-second delay
        return progress

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _throughput(n: int, t_start: float, t_first: float | None, t_end: float, where: str) -> None:
    """One closing line: images, wall time, images/s overall and after the first image (loading, compiling)."""
    steady = f"; {(n - 1) / (t_end - t_first):.2f} img/s after the first" if t_first and n > 1 and t_end > t_first \
        else ""
    print(f"diffdenoise: {n} images in {t_end - t_start:.1f} s ({n / (t_end - t_start):.2f} img/s{steady}) "
          f"[{where}]", file=sys.stderr)


def _denoise_worker(rank: int, args: argparse.Namespace, pairs: list[tuple[Path, Path]], device: str,
                    threads: int, queue: object) -> None:
    """One process of a sharded run: its slice on its device; reports ("image",) per image, then ("done", failures)
    or ("fatal", message) when the method cannot be built."""
    import torch
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    try:
        failures = _denoise_files(args, pairs, device, on_image=lambda: queue.put(("image", rank)))
    except DiffDenoiseError as e:
        queue.put(("fatal", rank, str(e)))
        return
    queue.put(("done", rank, failures))


def _denoise_sharded(args: argparse.Namespace, pairs: list[tuple[Path, Path]], devices: list[str]) -> int:
    """One spawned worker per device, worker k taking ``shard(pairs, k, len(devices))``; one progress bar here."""
    import queue as queue_module

    import torch
    import torch.multiprocessing as mp
    from .runtime import shard

    world = min(len(devices), len(pairs))
    cpu_workers = sum(1 for d in devices[:world] if d == "cpu")
    threads = max(1, torch.get_num_threads() // max(cpu_workers, 1))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    slices = [shard(pairs, k, world) for k in range(world)]
    workers = [ctx.Process(target=_denoise_worker, args=(k, args, slices[k], devices[k], threads, queue))
               for k in range(world)]
    if not args.quiet:
        print(f"diffdenoise: {len(pairs)} images on {world} devices ({', '.join(devices[:world])})", file=sys.stderr)
    t_start, t_first = time.perf_counter(), None
    for w in workers:
        w.start()
    bar = None
    if not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(pairs), desc=f"denoise [{args.method}]", unit="img", file=sys.stderr)
    finished: dict[int, int] = {}
    fatal: str | None = None
    try:
        while len(finished) < world:
            try:
                message = queue.get(timeout=1.0)
            except queue_module.Empty:
                for k, w in enumerate(workers):          # a worker that died without reporting (killed, crashed)
                    if k not in finished and not w.is_alive() and w.exitcode not in (0, None):
                        print(f"diffdenoise: error: worker {k} on {devices[k]} exited with code {w.exitcode}",
                              file=sys.stderr)
                        finished[k] = len(slices[k])
                continue
            if message[0] == "image":
                t_first = t_first or time.perf_counter()
                if bar is not None:
                    bar.update(1)
            elif message[0] == "done":
                finished[message[1]] = int(message[2])
            else:
                fatal = message[2]
                finished[message[1]] = len(slices[message[1]])
    finally:
        if bar is not None:
            bar.close()
        for w in workers:
            w.join(timeout=None if fatal is None else 5.0)
            if w.is_alive():
                w.terminate()
                w.join()
    if fatal is not None:
        raise DiffDenoiseError(fatal)
    if not args.quiet:
        _throughput(len(pairs), t_start, t_first, time.perf_counter(), f"{args.method}, {world} devices")
    return sum(finished.values())


def _write_uncertainty(path: Path, method) -> None:
    """The per-pixel std over the K samples as a heat-map PNG (methods that expose ``last_uncertainty``)."""
    from .diffusion.realdiff import uncertainty_heatmap
    from .imageio import Image, write_image
    std = getattr(method, "last_uncertainty", None)
    if std is None:
        raise DiffDenoiseError("this method gives no uncertainty map; use a stochastic method such as realdiff")
    write_image(path, Image(uncertainty_heatmap(std[:1]), None, 8))


def _write_compare(path: Path, noisy, denoised, reference, method_name: str) -> None:
    """Side by side: noisy | denoised (| clean reference, an Image of the same shape), with PSNR labels when the
    reference is known."""
    import numpy as np
    from .imageio import Image, quantize, write_image
    panels = [("input", noisy.data), (method_name, denoised.data)]
    labels = ["input", method_name]
    if reference is not None:
        labels = [f"input  {_psnr(noisy, reference):.2f} dB", f"{method_name}  {_psnr(denoised, reference):.2f} dB"]
        panels.append(("clean", reference.data))
        labels.append("clean reference")
    h = noisy.data.shape[0]
    c = noisy.data.shape[2]
    gap = np.ones((h, 8, c), np.float32)
    row = np.concatenate(sum(([p[1], gap] for p in panels), [])[:-1], axis=1)
    band = np.ones((28, row.shape[1], c), np.float32)
    canvas = np.concatenate([band, row], axis=0)
    canvas8 = quantize(canvas)
    from PIL import Image as PILImage, ImageDraw
    pil = PILImage.fromarray(canvas8[:, :, 0] if c == 1 else canvas8)
    draw = ImageDraw.Draw(pil)
    w = noisy.data.shape[1]
    for i, label in enumerate(labels):
        draw.text((i * (w + 8) + 6, 8), label, fill=0 if c == 1 else (0, 0, 0))
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    write_image(path, Image(arr[:, :, None] if arr.ndim == 2 else arr, None, 8))


def _read_mask(path: str, missing_is: str):
    """A mask image -> 1 x 1 x H x W float tensor, 1 = observed.  A pixel is white when its gray value (the mean of
    R, G, B; alpha ignored) is at least half the range; ``missing_is`` says which of black or white is missing."""
    import torch
    from .imageio import read_image, to_tensor
    m = read_image(path)
    white = to_tensor(m.data).mean(dim=1, keepdim=True) >= 0.5
    return (white if missing_is == "black" else ~white).to(torch.float32)


def _mask_image(observed, missing_is: str):
    from .imageio import Image, from_tensor
    white = observed if missing_is == "black" else 1 - observed
    return Image(from_tensor(white.float().cpu()), None, 8)


def cmd_impute(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from .imageio import from_tensor, read_image, to_tensor, write_image
    from .impute import build_imputer, get_imputer_spec
    from .noise import Missing

    if args.mask is None and args.missing is None:
        raise DiffDenoiseError("say which pixels are missing: --mask MASK.png, or --missing P to drop a random "
                               "fraction P of the pixels")
    inputs = _expand_inputs(args.inputs)
    many = _several(args.inputs, inputs)
    outputs = _output_paths(args.inputs, inputs, args.output, args.format, bit_depth=args.bit_depth, tag="filled")
    masks = _side_paths(inputs, args.save_mask, many, "_mask.png")
    _check_outputs(outputs + masks, [*inputs, args.mask])
    spec = get_imputer_spec(args.method)
    options = {k: v for k, v in (("steps", args.steps), ("samples", args.samples)) if v is not None}
    if options and spec.family == "classical":
        raise DiffDenoiseError(f"--{' and --'.join(options)} only apply to --method cddpm (got --method "
                               f"{args.method})")
    mask_file = _read_mask(args.mask, args.missing_is) if args.mask else None
    device = _device(args.device)
    imputer = build_imputer(args.method, device=device, tile=args.tile, **options)

    def one(i: int, pair: tuple[Path, Path]) -> None:
        src, dst = pair
        img = read_image(src)
        y = to_tensor(img.data)
        h, w = y.shape[-2:]
        if mask_file is not None:
            if tuple(mask_file.shape[-2:]) != (h, w):
                raise DiffDenoiseError(f"mask {args.mask} is {mask_file.shape[-1]}x{mask_file.shape[-2]}, "
                                       f"image {src} is {w}x{h}")
            observed = mask_file
        else:
            observed = Missing(args.missing).draw(y, torch.Generator().manual_seed(args.seed + i)).mask
        generator = torch.Generator(device=device).manual_seed(args.seed + i) if spec.stochastic else None
        t0 = time.perf_counter()
        with torch.inference_mode():
            x_hat = imputer(y.to(device), observed.to(device), generator=generator).cpu()
        seconds = time.perf_counter() - t0
        write_image(dst, img.with_data(np.clip(from_tensor(x_hat), 0.0, 1.0)), bit_depth=args.bit_depth)
        if masks:
            write_image(masks[i], _mask_image(observed, args.missing_is), bit_depth=8)
        if not args.quiet and not many:
            share = 100.0 * (1.0 - float(observed.mean()))
            print(f"{src} -> {dst}  [{args.method}, {share:.1f}% missing, {seconds:.2f} s]", file=sys.stderr)

    failures = _each(list(zip(inputs, outputs)), one, strict=not many, show=not args.quiet,
                     desc=f"impute [{args.method}]")
    return _report_failures(failures, len(inputs))


def _side_paths(inputs: list[Path], option: str | None, many: bool, suffix: str) -> list[Path]:
    """Where a side output goes (a mask, a noise map): the file ``option`` for one input, else
    ``option/<name><suffix>`` per input, in a folder made here.  Empty when the option is not given."""
    if not option:
        return []
    if not many:
        return [Path(option)]
    folder = Path(option)
    _refuse_file_name(folder, option)
    _make_folder(folder)
    return [folder / f"{src.stem}{suffix}" for src in inputs]


def cmd_add_noise(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from .imageio import Image, from_tensor, read_image, to_tensor, write_image
    from .noise import parse_noise

    model = parse_noise(args.noise)
    inputs = _expand_inputs(args.inputs)
    many = _several(args.inputs, inputs)
    outputs = _output_paths(args.inputs, inputs, args.output, args.format, bit_depth=args.bit_depth, tag="noisy")
    maps = _side_paths(inputs, args.save_map, many, "_map.tif")
    mask_maps = [m.with_name(m.stem + "_mask.png") for m in maps] if model.name == "missing" else []
    _check_outputs(outputs + maps + mask_maps, inputs)

    def one(i: int, pair: tuple[Path, Path]) -> None:
        src, dst = pair
        img = read_image(src)
        drawn = model.draw(to_tensor(img.data), torch.Generator().manual_seed(args.seed + i))
        write_image(dst, img.with_data(np.clip(from_tensor(drawn.y), 0.0, 1.0)), bit_depth=args.bit_depth)
        if maps:
            s = from_tensor(drawn.sigma_map)
            write_image(maps[i], Image(np.clip(s, 0.0, 1.0).astype(np.float32), None, 16), bit_depth=16)
            if drawn.mask is not None:
                m = from_tensor(drawn.mask.float())[:, :, :1]
                write_image(maps[i].with_name(maps[i].stem + "_mask.png"), Image(m, None, 8), bit_depth=8)

    failures = _each(list(zip(inputs, outputs)), one, strict=not many, show=not args.quiet, desc="add-noise")
    if not args.quiet:
        print(f"added {args.noise} noise to {len(inputs) - failures} image(s)", file=sys.stderr)
    return _report_failures(failures, len(inputs))


def cmd_estimate_noise(args: argparse.Namespace) -> int:
    import numpy as np
    from .estimate import estimate_noise_map, estimate_sigma
    from .imageio import Image, from_tensor, read_image, to_tensor, write_image

    inputs = _expand_inputs(args.inputs)
    many = _several(args.inputs, inputs)
    maps = _side_paths(inputs, args.map, many, "_map.tif")
    _check_outputs(maps, inputs)
    results: list[dict] = []

    def one(i: int, src: Path) -> None:
        y = to_tensor(read_image(src).data)
        try:
            sigma = estimate_sigma(y, method=args.method)
        except DiffDenoiseError as e:
            raise DiffDenoiseError(f"{src}: {e}") from None
        results.append({"image": str(src), "sigma": round(255.0 * float(sigma), 3)})
        if maps:
            s = from_tensor(estimate_noise_map(y))
            write_image(maps[i], Image(np.clip(s, 0, 1).astype(np.float32), None, 16), bit_depth=16)

    failures = _each(inputs, one, strict=not many, show=False, desc="estimate-noise")
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for r in results:
            print(f"{r['image']}\tsigma={r['sigma']:.2f}")
    return _report_failures(failures, len(inputs))


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import format_table, run_bench, write_csv, write_json
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for out in (args.json, args.csv):
        if out and not Path(out).resolve().parent.is_dir():
            raise DiffDenoiseError(f"output folder does not exist: {Path(out).parent}")
    if args.split is None and Path(args.data).is_dir() and any(Path(args.data).glob("*_split.txt")):
        splits = ", ".join(sorted(f.name.removesuffix("_split.txt") for f in Path(args.data).glob("*_split.txt")))
        _note(args, f"{args.data} has split files ({splits}); without --split every pair is scored, training pairs "
                    f"too")
    options = None
    if args.options:
        try:
            options = json.loads(args.options)
        except json.JSONDecodeError as e:
            raise DiffDenoiseError(f"--options is not valid JSON ({e.msg} at character {e.pos}): {args.options}") \
                from None
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise DiffDenoiseError('--options takes a JSON object of per-method objects, e.g. '
                                   '\'{"cddpm": {"steps": 4}}\'')
    result = run_bench(methods, args.data, noise=args.noise, limit=args.limit, device=_device(args.device),
                       method_options=options, sigma_mode=args.sigma_mode, split=args.split,
                       progress=not args.quiet)
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    if args.csv:
        write_csv(result, args.csv)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train_main
    argv = [args.config] + sum((["--set", s] for s in args.set), [])
    if args.out:
        argv += ["--out", args.out]
    if args.dry_run:
        argv.append("--dry-run")
    return train_main(argv) or 0


# ------------------------------------------------------------------------------------------------------------ parser

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="diffdenoise", formatter_class=_Formatter,
        description="Remove noise from photographs and scientific images with diffusion models, "
                    "and compare with classical and CNN denoisers.",
        epilog=_examples("diffdenoise denoise photo.jpg                  # -> photo_denoised.png",
                         "diffdenoise denoise shots/ -o cleaned/ --method bm3d --sigma auto",
                         "diffdenoise add-noise clean.png -o noisy.png --noise gaussian:25 --seed 0",
                         "diffdenoise impute photo.png -o filled.png --missing 0.5 --method telea",
                         "diffdenoise estimate-noise noisy.png",
                         "diffdenoise bench --methods bm3d,nlm --data ../shared/data/cbsd68 --noise gaussian:25",
                         "diffdenoise methods"))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("denoise", help="denoise images or folders", formatter_class=_Formatter,
                       epilog=_examples("diffdenoise denoise photo.jpg          # writes photo_denoised.png beside it",
                                        "diffdenoise denoise noisy.png -o clean.png",
                                        "diffdenoise denoise noisy.png -o clean.png --method nlm --sigma 25",
                                        "diffdenoise denoise raw_tiffs/ -o out/ --format tif",
                                        "diffdenoise denoise n.png -o c.png --compare cmp.png --reference gt.png",
                                        "diffdenoise denoise photo.jpg -o clean.png --samples 8 --uncertainty std.png",
                                        "diffdenoise denoise shots/ -o cleaned/ --devices all --compile",
                                        "torchrun --nproc-per-node 2 -m diffdenoise denoise shots/ -o cleaned/"))
    d.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders (PNG, TIFF, JPEG; 8/16-bit)")
    d.add_argument("-o", "--output", default=None, metavar="OUT",
                   help="output file (one input) or folder (several inputs or a folder); default: beside each "
                        "input as NAME_denoised (PNG for JPEG inputs; a folder F into F_denoised/)")
    d.add_argument("--method", default=None,
                   help="denoiser name (see `diffdenoise methods`); default: the best method with weights present")
    d.add_argument("--sigma", type=_sigma_arg, default=None, metavar="S|auto",
                   help="noise std in 8-bit units, or 'auto' to estimate it (default: auto)")
    d.add_argument("--noise-map", default=None, metavar="auto|FILE",
                   help="per-pixel noise std map: 'auto' (estimated) or an image file as written by --save-map")
    d.add_argument("--steps", type=_positive_int, default=None, help="sampling steps (diffusion methods)")
    d.add_argument("--samples", type=_positive_int, default=None, help="samples averaged (stochastic methods)")
    d.add_argument("--sampler", default=None, help="sampler name (diffusion methods), e.g. ddim or ancestral")
    d.add_argument("--seed", type=int, default=0, help="random seed for stochastic methods")
    d.add_argument("--tile", type=_tile_arg, default="auto", metavar="auto|N|0",
                   help="tile size for neural methods: auto (from free memory), N pixels, or 0 for no tiling")
    d.add_argument("--device", default="auto", help="cpu, cuda or auto")
    d.add_argument("--devices", default=None, metavar="all|N|DEV,DEV",
                   help="split the images over several devices, one worker process each: all (every GPU), N (the "
                        "first N GPUs) or a list such as cuda:0,cuda:1; under torchrun each rank takes its share "
                        "without this option (default: one device, --device)")
    d.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="neural methods: auto = bf16 autocast on CUDA and float32 on the CPU (default: auto)")
    d.add_argument("--ensemble", type=int, choices=[1, 2, 4, 8], default=1,
                   help="neural methods: average over N flips/rotations of the image (self-ensemble), N times "
                        "the time for a little more quality (default: 1)")
    d.add_argument("--compile", action="store_true",
                   help="torch.compile the network (neural methods): slow first image, faster after; falls back "
                        "to uncompiled with a warning if compiling fails")
    d.add_argument("--format", choices=["png", "tif", "tiff", "jpg"], default=None,
                   help="output format (default: the suffix of -o; into a folder the input's, PNG for "
                        "JPEG, BMP and WebP inputs)")
    d.add_argument("--bit-depth", type=int, choices=[8, 16], default=None,
                   help="output bit depth (default: same as input)")
    d.add_argument("--compare", default=None, metavar="PNG", help="also write a side-by-side comparison image")
    d.add_argument("--reference", default=None, metavar="CLEAN", help="clean image: adds PSNR to --compare")
    d.add_argument("--uncertainty", default=None, metavar="PNG",
                   help="with --samples K >= 2: write the per-pixel std over the K restorations as a heat map")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    d.set_defaults(func=cmd_denoise)

    im = sub.add_parser(
        "impute", help="fill missing pixels (a mask, or a random fraction dropped)", formatter_class=_Formatter,
        description="Fill the missing pixels of images; observed pixels are returned unchanged.\n\n"
                    "Mask convention: a mask is an image of the input's size. BLACK pixels are MISSING, white\n"
                    "pixels are observed (black: value below half the range; colour masks use the mean of R, G, B;\n"
                    "alpha is ignored). This is what `add-noise --noise missing:P --save-map S.tif` writes\n"
                    "(S_mask.png) and what --save-mask writes. For masks that mark the holes in white (OpenCV's\n"
                    "convention) add --missing-is white.",
        epilog=_examples("diffdenoise impute photo.png -o filled.png --missing 0.5 --seed 0 --save-mask mask.png",
                         "diffdenoise impute holes.png -o filled.png --mask mask.png        # black = missing",
                         "diffdenoise impute scan.tif -o fixed.tif --mask scratches.png --missing-is white "
                         "--method telea",
                         "diffdenoise add-noise clean.png -o holes.png --noise missing:0.8 --save-map s.tif",
                         "diffdenoise impute holes.png -o filled.png --mask s_mask.png --method biharmonic",
                         "diffdenoise impute photos/ -o filled/ --missing 0.8 --method ns   # image i: seed+i"))
    im.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders (PNG, TIFF, JPEG; 8/16-bit)")
    im.add_argument("-o", "--output", default=None, metavar="OUT",
                    help="output file (one input) or folder (several inputs or a folder); default: beside each "
                         "input as NAME_filled (PNG for JPEG inputs; a folder F into F_filled/)")
    holes = im.add_mutually_exclusive_group()
    holes.add_argument("--mask", default=None, metavar="MASK",
                       help="mask image, same size as every input; black = missing (see --missing-is)")
    holes.add_argument("--missing", type=_fraction_arg, default=None, metavar="P",
                       help="drop a random fraction P of the pixels first (a demo or a test: the input is clean)")
    im.add_argument("--missing-is", choices=["black", "white"], default="black",
                    help="which mask colour marks the missing pixels, for --mask and --save-mask")
    im.add_argument("--method", default="cddpm", help="cddpm (needs the cddpm-missing weights), telea, ns or "
                                                       "biharmonic (classical, no weights)")
    im.add_argument("--steps", type=_positive_int, default=None,
                    help="DDIM steps for cddpm (default: 1 for the x0-predicting cddpm-missing: the MMSE fill)")
    im.add_argument("--samples", type=_positive_int, default=None,
                    help="cddpm samples averaged per image (default: 1)")
    im.add_argument("--seed", type=int, default=0,
                    help="seed of the --missing mask and of cddpm sampling; image i uses seed+i")
    im.add_argument("--save-mask", default=None, metavar="PNG",
                    help="write the mask used (a folder of <name>_mask.png for several inputs)")
    im.add_argument("--tile", type=_tile_arg, default="auto", metavar="auto|N|0",
                    help="tile size for cddpm: auto (from free memory), N pixels, or 0 for no tiling")
    im.add_argument("--device", default="auto", help="cpu, cuda or auto")
    im.add_argument("--format", choices=["png", "tif", "tiff", "jpg"], default=None,
                    help="output format (default: the suffix of -o; into a folder the input's, PNG for "
                         "JPEG, BMP and WebP inputs)")
    im.add_argument("--bit-depth", type=int, choices=[8, 16], default=None,
                    help="output bit depth (default: same as input)")
    im.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    im.set_defaults(func=cmd_impute)

    a = sub.add_parser("add-noise", help="apply a noise model (SPEC §2) to images", formatter_class=_Formatter,
                       epilog=_examples("diffdenoise add-noise clean.png -o noisy.png --noise gaussian:25 --seed 0",
                                        "diffdenoise add-noise clean.png -o noisy.png --noise camera --save-map s.tif",
                                        "diffdenoise add-noise clean.png -o holes.png --noise missing:0.5",
                                        "noise models: gaussian, poisson_gaussian, spatial, camera, impulse, "
                                        "speckle, missing"))
    a.add_argument("inputs", nargs="+", metavar="IN")
    a.add_argument("-o", "--output", default=None, metavar="OUT",
                   help="output file (one input) or folder; default: beside each input as NAME_noisy")
    a.add_argument("--noise", required=True, help="noise spec, e.g. gaussian:25 (stds in 8-bit units)")
    a.add_argument("--seed", type=int, default=0, help="seed of the first image (image i uses seed+i)")
    a.add_argument("--save-map", default=None, metavar="FILE",
                   help="also write the per-pixel noise std map (16-bit TIFF/PNG, value = std on the [0,1] scale)")
    a.add_argument("--format", choices=["png", "tif", "tiff", "jpg"], default=None)
    a.add_argument("--bit-depth", type=int, choices=[8, 16], default=None)
    a.add_argument("-q", "--quiet", action="store_true")
    a.set_defaults(func=cmd_add_noise)

    e = sub.add_parser("estimate-noise", help="estimate the noise level of images", formatter_class=_Formatter,
                       epilog=_examples("diffdenoise estimate-noise noisy.png",
                                        "diffdenoise estimate-noise folder/ --json",
                                        "diffdenoise estimate-noise noisy.png --map sigma_map.tif"))
    e.add_argument("inputs", nargs="+", metavar="IN")
    e.add_argument("--method", default="pca", help="global estimator: pca, mad or immerkaer")
    e.add_argument("--map", default=None, metavar="FILE", help="also write a per-pixel noise map")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=cmd_estimate_noise)

    b = sub.add_parser("bench", help="benchmark methods on a dataset", formatter_class=_Formatter,
                       epilog=_examples(
                           "diffdenoise bench --methods bm3d --data ../shared/data/kodak24 --noise gaussian:25",
                           "diffdenoise bench --methods nlm,wavelet --data ../shared/data/polyu --split test",
                           "diffdenoise bench --methods dncnn --data ../shared/data/bsd68 --noise gaussian:25 "
                           "--json out.json --csv out.csv"))
    b.add_argument("--methods", required=True, help="comma-separated method names")
    b.add_argument("--data", required=True, help="folder of clean images, or with noisy/ and clean/ subfolders")
    b.add_argument("--noise", default=None, help="noise spec for clean folders (default gaussian:25)")
    b.add_argument("--split", default=None, help="use the names in <data>/<split>_split.txt only")
    b.add_argument("--limit", type=_positive_int, default=None, help="first N images only")
    b.add_argument("--sigma-mode", choices=["true", "observed", "auto"], default="true",
                   help="give methods the true sigma (map), the map a user could know (for signal-dependent noise, "
                        "evaluated at the local mean of the noisy image), or let them estimate it (blind)")
    b.add_argument("--options", default=None, help='JSON of per-method options, e.g. \'{"cddpm": {"steps": 4}}\'')
    b.add_argument("--device", default="auto", help="cpu, cuda or auto")
    b.add_argument("--json", default=None, metavar="OUT", help="write summary + records + config as JSON")
    b.add_argument("--csv", default=None, metavar="OUT", help="write the per-image records as CSV")
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(func=cmd_bench)

    m = sub.add_parser("methods", help="list the registered methods", formatter_class=_Formatter,
                       epilog=_examples("diffdenoise methods"))
    m.set_defaults(func=cmd_methods)

    t = sub.add_parser("train", help="train a model from a config preset", formatter_class=_Formatter,
                       epilog=_examples("diffdenoise train configs/dncnn-gray.json --set steps=200 --out runs/try",
                                        "diffdenoise train configs/realdiff-color.json --dry-run   # resolved config",
                                        "DIFFDENOISE_DATA=/data/images diffdenoise train configs/dncnn-color.json",
                                        "torchrun --nproc_per_node 2 -m diffdenoise.train configs/dncnn-color.json",
                                        "python -m diffdenoise.train.export runs/try --stem my-dncnn --folder mine/"))
    t.add_argument("config", help="JSON preset (strict: unknown keys are errors)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    t.add_argument("--out", default=None, help="output folder for checkpoints")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.set_defaults(func=cmd_train)

    def cmd_serve(args: argparse.Namespace) -> int:  # imported when run: gradio loads only for `serve`
        from .web import cmd_serve as serve
        return serve(args)

    s = sub.add_parser("serve", help="start the web app (Gradio)", formatter_class=_Formatter,
                       epilog=_examples("diffdenoise serve",
                                        "diffdenoise serve --port 8080 --max-megapixels 24",
                                        "needs the [ui] extra: pip install 'diffdenoise[ui]'"))
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it to the network)")
    s.add_argument("--port", type=int, default=7860, help="port to listen on")
    s.add_argument("--max-megapixels", type=float, default=50, help="largest upload accepted, in megapixels")
    s.add_argument("--max-mb", type=float, default=100, help="largest upload accepted, in MB")
    s.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER
    try:
        return int(args.func(args) or 0)
    except DiffDenoiseError as e:
        print(f"diffdenoise: error: {e}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("diffdenoise: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
