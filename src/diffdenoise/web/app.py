"""The Gradio page: upload, pick a method, denoise, compare, download.  Layout and event wiring only; the work is
done by :mod:`diffdenoise.web.pipeline`.

Gradio is imported inside :func:`build_app`, after telemetry and version checks are switched off; the server
listens on loopback unless told otherwise and never opens a share tunnel.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from ..errors import DiffDenoiseError
from ..imageio import READ_SUFFIXES
from ..registry import get_method_spec
from .pipeline import Limits, MethodCache, Outcome, denoise_file, make_examples, method_choices, method_options
from .pipeline import pick_default_method

log = logging.getLogger(__name__)
KEEP_JOBS = 32           # result folders kept on disk; older ones are deleted

_CSS = """
#status textarea { font-family: var(--font-mono); font-size: 0.85em; }
"""


def _import_gradio():
    """gradio, with analytics, its version check and Hugging Face telemetry off (set before the import)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    try:
        import gradio as gr
    except ImportError:
        raise DiffDenoiseError("the web app needs gradio: pip install 'diffdenoise[ui]' "
                               "(or the pinned set: pip install -r requirements.txt)") from None
    return gr


def _device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _prune(folder: Path, keep: int = KEEP_JOBS) -> None:
    jobs = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in jobs[:-keep] if len(jobs) > keep else []:
        shutil.rmtree(old, ignore_errors=True)


def _method_note(name: str) -> str:
    spec = get_method_spec(name)
    extra = " Stochastic: results depend on the seed; with samples > 1 an uncertainty map is shown." \
        if spec.stochastic else ""
    return f"**{spec.name}** ({spec.family}): {spec.summary}.{extra}"


def build_app(default_method: str | None = None, limits: Limits = Limits(), device: str | None = None,
              workdir: str | Path | None = None):
    """The gr.Blocks app.  ``default_method``: the method selected at start (default: the best one usable here);
    ``workdir``: where examples and results are written (default: a new temporary folder)."""
    gr = _import_gradio()
    device = device or _device()
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="diffdenoise-web-"))
    results_dir = workdir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    examples = make_examples(workdir / "examples")
    clean_of = {ex.name: ex.clean for ex in examples if ex.clean is not None}
    choices = method_choices()
    usable = [c for c in choices if c.usable]
    if default_method is not None:
        get_method_spec(default_method)
    else:
        default_method = pick_default_method(choices)
    if default_method not in [c.name for c in usable]:
        usable.append(next(c for c in choices if c.name == default_method))
    unusable = [c for c in choices if c not in usable]
    cache = MethodCache()
    opts = method_options(default_method)
    suffixes = sorted(READ_SUFFIXES)

    def on_method(name: str):
        o = method_options(name)
        return (gr.update(visible=o["steps"]), gr.update(visible=o["samples"]), gr.update(visible=o["stochastic"]),
                gr.update(visible=o["ensemble"]), _method_note(name))

    def on_sigma_auto(auto: bool):
        return gr.update(interactive=not auto)

    def on_pick(evt):
        return [str(examples[evt.index].noisy)]
    on_pick.__annotations__["evt"] = gr.SelectData  # gradio finds the event argument by its type

    def show(results: list[dict], name: str | None):
        r = next((r for r in results if r["name"] == name), results[0] if results else None)
        if r is None:
            return None, None, gr.update(value=None, visible=False)
        return ((r["noisy"], r["result"]), r["noise"],
                gr.update(value=r["uncertainty"], visible=r["uncertainty"] is not None))

    def run(files, method, sigma_auto, sigma, steps, samples, seed, ensemble, progress=gr.Progress()):
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", f)) for f in (files or [])]
        nothing = ("", None, None, gr.update(visible=False), None, [], gr.update(choices=[], visible=False))
        if not paths:
            gr.Warning("Upload an image first (or pick one under “Try it”).")
            return ("Upload an image first.",) + nothing[1:]
        job = results_dir / uuid.uuid4().hex[:12]
        lines, errors, results, downloads = [], [], [], []
        o = method_options(method)
        for i, path in enumerate(paths):
            def report(f: float, i=i, name=path.name) -> None:
                progress((i + f) / len(paths), desc=f"{name}: {method}")
            try:
                out: Outcome = denoise_file(
                    path, method, job / f"{i + 1:03d}", sigma=None if sigma_auto else float(sigma),
                    steps=int(steps) if o["steps"] and steps else None,
                    samples=int(samples) if o["samples"] and samples else None,
                    ensemble=int(ensemble or 1) if o["ensemble"] else 1, seed=int(seed or 0),
                    device=device, limits=limits, reference=clean_of.get(path.name), progress=report, cache=cache)
            except DiffDenoiseError as e:
                errors.append(str(e))
                continue
            except Exception as e:  # a bug or an exotic file must not take the server down
                log.exception("denoising %s failed", path)
                errors.append(f"{path.name}: failed ({type(e).__name__}: {e})")
                continue
            lines.append(out.summary())
            downloads.extend(str(p) for p in out.files)
            name = out.name if [p.name for p in paths].count(path.name) == 1 else f"{out.name} (#{i + 1})"
            results.append({"name": name, "noisy": out.noisy_preview, "result": out.result_preview,
                            "noise": out.noise_heat, "uncertainty": out.uncertainty_heat})
        _prune(results_dir)
        for e in errors:
            gr.Warning(e)
        status = "\n".join(lines + [f"ERROR: {e}" for e in errors])
        names = [r["name"] for r in results]
        picker = gr.update(choices=names, value=names[0] if names else None, visible=len(names) > 1)
        compare, noise, uncertainty = show(results, names[0] if names else None)
        return status, compare, noise, uncertainty, downloads or None, results, picker

    with gr.Blocks(title="diffdenoise", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# diffdenoise\nRemove noise from photographs and microscopy images. Upload one image or "
                    f"several (PNG, TIFF, JPEG; 8 or 16 bits), {limits.describe()}. Results download at the "
                    "input's bit depth.")
        results = gr.State([])
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                files = gr.File(label="Noisy image(s)", file_count="multiple", file_types=suffixes, type="filepath",
                                elem_id="upload")
                method = gr.Dropdown([(c.label, c.name) for c in usable], value=default_method, label="Method",
                                     elem_id="method")
                note = gr.Markdown(_method_note(default_method))
                if unusable:
                    with gr.Accordion(f"{len(unusable)} more method(s) not available here", open=False):
                        gr.Markdown("\n".join(f"- {c.label} — *{c.status}*" for c in unusable),
                                    elem_id="unavailable")
                with gr.Row():
                    sigma_auto = gr.Checkbox(True, label="estimate sigma", elem_id="sigma-auto")
                    sigma = gr.Slider(1, 100, value=25, step=1, label="sigma (8-bit units)", interactive=False,
                                      elem_id="sigma")
                with gr.Row():
                    steps = gr.Number(0, precision=0, minimum=0, label="steps (0: the method default)",
                                      visible=opts["steps"], elem_id="steps")
                    samples = gr.Slider(1, 16, value=1, step=1, label="samples", visible=opts["samples"],
                                        elem_id="samples")
                    seed = gr.Number(0, precision=0, label="seed", visible=opts["stochastic"], elem_id="seed")
                ensemble = gr.Radio([1, 2, 4, 8], value=1, label="self-ensemble: average over N flips/rotations "
                                    "(N times slower, a little cleaner)", visible=opts["ensemble"], elem_id="ensemble")
                go = gr.Button("Denoise", variant="primary", elem_id="denoise")
                if examples:
                    gr.Markdown("### Try it\nClick an image to load it, then press Denoise.")
                    gallery = gr.Gallery([(str(ex.noisy), ex.caption) for ex in examples], columns=3, height=200,
                                         allow_preview=False, show_label=False, elem_id="examples")
                    gallery.select(on_pick, None, files)
            with gr.Column(scale=3, min_width=400):
                status = gr.Textbox(label="Status", lines=3, interactive=False, elem_id="status")
                picker = gr.Dropdown([], label="Show result for", visible=False, elem_id="picker")
                compare = gr.ImageSlider(label="Noisy | denoised (drag the handle)", type="numpy", format="png",
                                         interactive=False, elem_id="compare", max_height=640)
                with gr.Row():
                    noise = gr.Image(label="Estimated noise map (std)", type="numpy", format="png", height=320,
                                     interactive=False, elem_id="noise-map")
                    uncertainty = gr.Image(label="Uncertainty (std over samples)", type="numpy", format="png",
                                           height=320, interactive=False, visible=False, elem_id="uncertainty")
                downloads = gr.File(label="Downloads (result at input bit depth; maps as 16-bit TIFF)",
                                    file_count="multiple", interactive=False, elem_id="downloads")

        method.change(on_method, method, [steps, samples, seed, ensemble, note])
        sigma_auto.change(on_sigma_auto, sigma_auto, sigma)
        go.click(run, [files, method, sigma_auto, sigma, steps, samples, seed, ensemble],
                 [status, compare, noise, uncertainty, downloads, results, picker], concurrency_limit=1)
        picker.change(show, [results, picker], [compare, noise, uncertainty])
    demo.diffdenoise_workdir = workdir
    demo.diffdenoise_css = _CSS
    return demo


def launch(demo: Any, host: str = "127.0.0.1", port: int = 7860, limits: Limits = Limits(), block: bool = True,
           quiet: bool = False) -> Any:
    """Serve ``demo``: no share link, no browser opened, uploads over ``limits.max_mb`` refused by the server."""
    demo.queue(default_concurrency_limit=1)
    return demo.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                       max_file_size=int(limits.max_mb * 1024 * 1024), show_error=True, ssr_mode=False, pwa=False,
                       mcp_server=False, enable_monitoring=False, prevent_thread_lock=not block, quiet=quiet,
                       allowed_paths=[str(demo.diffdenoise_workdir)], css=demo.diffdenoise_css)
