"""One table ranking every method on every benchmark set, and a PSNR-vs-time scatter plot, from the result files.

    .venv/bin/python benchmarks/rank.py --out benchmarks/results/ranking.md --plot docs/img/psnr_vs_time.png

Reads every JSON file under ``benchmarks/results/`` (recursively) of one of two shapes and ignores the others:

- a bench file, written by ``diffdenoise bench --json`` / :func:`diffdenoise.bench.write_json`:
  ``{"summary": [{method, dataset, noise, psnr, ssim, seconds_per_image, images}], "config": {date, device,
  device_name, method_options, sigma_mode, limit, ...}}``;
- a GPU driver file, ``benchmarks/results/gpu/*_eval.json`` written by ``benchmarks/gpu_train.py``:
  ``{"<method>|<data>|<noise>|<options>": {method, dataset, noise, psnr, ssim, seconds_per_image, images, stem,
  options, device, gpu, date}}``.

A **row** is a method with its non-default options (``cddpm`` and ``cddpm (steps=4)`` are two rows), with the
weights' stem when they are not the method's own, and "σ̂" for a sigma-taking method run blind on synthetic noise.
A **column** is a dataset and a noise (``cbsd68_jpg`` counts as ``cbsd68``: the same pixels, MANIFEST.md).
When a row/column pair was measured more than once, a full-set record beats a subset (``--limit``) one, then the
newest record wins, whatever the device.  The time of a record is its own timestamp; the GPU files carry only a
date, so their records are placed at the time the file was written (its last git commit when it is committed and
unchanged, else its modification time) when that falls on the record's date, else at the start of that date.
Records of SVNR given the exact map of Poisson-Gaussian noise are left out (``leaks_clean_image``: that map gives
the clean image away), and records made before a method's default changed are shown with the old default
(``DEFAULT_CHANGES``). Records made with weights that were replaced since are shown like subsets, marked "earlier
weights", and not ranked: bench files name the weights they loaded (their training steps, compared with the shipped
cards'); older records go by time (``WEIGHT_CHANGES``).
A record is a subset when its file states a ``limit`` or a ``crop``, or when it holds fewer images than another
record of the same column or than the whole set (``SET_SIZES``; the GPU driver's ``--eval-limit`` is not written
into its records).  Subset records are
printed in italics with what they cover and are not ranked.  A cell no record fills stays
empty: nothing is estimated or copied from elsewhere.

The scatter plot has one panel per (dataset, noise, device): CPU and GPU seconds never share a panel.  It uses the
newest full-set record of each row on that device; CPU times come from shared, busy cores (see each source).
"""
from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import math
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

# Datasets stored under two names with identical pixels (MANIFEST.md: CBSD68 = decoded BSDS500 val JPEGs).
DATASET_ALIASES = {"cbsd68_jpg": "cbsd68"}
DATASET_NAMES = {"polyu:test": "PolyU test", "fmdd": "FMDD", "sidd_sample": "SIDD sample", "cbsd68": "CBSD68",
                 "kodak24": "Kodak24", "set12": "Set12", "bsd68": "BSD68"}
DATASET_ORDER = ("polyu:test", "fmdd", "sidd_sample", "cbsd68", "kodak24", "set12", "bsd68")
# Whole-set sizes (MANIFEST.md): a record with fewer images is a subset even when no record of its column is whole.
SET_SIZES = {"polyu:test": 22, "fmdd": 48, "sidd_sample": 12, "cbsd68": 68, "kodak24": 24, "set12": 12, "bsd68": 68}
FAMILY_ORDER = ("diffusion", "cnn", "classical")
# Option values a builder treats as its default although they are spelt differently (cddpm.py: steps=None means
# one step from the matched entry).
IMPLIED_DEFAULTS = {"cddpm": {"steps": 1}, "cddpm-prob": {"steps": 1}}
# Defaults that changed: records made before the change with the option unset ran the old default, so they get it
# written out (the edit behind the commit "ddpm-match and svnr default to one step", made 2026-11-22 07:47 UTC).
DEFAULT_CHANGES = {"ddpm-match": ("2026-11-22T07:47:00+00:00", "steps", "all"),
                   "svnr": ("2026-11-22T07:47:00+00:00", "steps", 25)}
# Weights that were replaced: records a method made with its own weights before then, on the listed datasets (None:
# all), measured the earlier weights; they are shown as such and not ranked (the times are those of the commits
# that shipped the new weights).  Round 6 (commit 97e0784) shipped ddpm-natural (which ddpm-match loads), both
# DnCNNs, pridnet-color and a wider mwcnn-color; round 7 the small colour realdiff model and both SVNR models;
# round 8 cddpm-gaussian (which cddpm and cddpm-prob load) and the gray realdiff model; round 10 the wider gray
# realdiff model seeded from the DDPM.
COLOUR_SETS = {"polyu:test", "sidd_sample", "cbsd68", "kodak24"}
GRAY_SETS = {"fmdd", "set12", "bsd68"}
ROUND6 = "2026-11-22T07:56:41+00:00"
WEIGHT_CHANGES = {"ddpm-match": [(ROUND6, None)],
                  "dncnn": [(ROUND6, None)],
                  "pridnet": [(ROUND6, COLOUR_SETS)],
                  "mwcnn": [(ROUND6, COLOUR_SETS)],
                  "svnr": [("2026-12-02T03:09:55+00:00", None)],
                  "cddpm": [("2026-12-02T04:56:00+00:00", None)],
                  "cddpm-prob": [("2026-12-02T04:56:00+00:00", None)],
                  "realdiff": [("2026-12-02T02:50:00+00:00", COLOUR_SETS), ("2026-12-02T04:56:00+00:00", GRAY_SETS),
                               ("2026-12-02T08:55:00+00:00", GRAY_SETS)]}
DEFAULT_PANELS = ("cbsd68:gaussian:25:cpu", "set12:gaussian:25:cpu", "polyu:test:real:cpu")


@dataclass(frozen=True)
class Result:
    """One summary row of one result file."""
    method: str
    options: tuple[tuple[str, Any], ...]    # non-default options, sorted
    stem: str | None                        # weights used when they are not the method's own
    blind: bool                             # a sigma-taking method given no sigma on synthetic noise
    dataset: str
    noise: str
    psnr: float
    ssim: float
    seconds: float
    images: int
    subset: str                             # "" for the whole set, else what was measured ("first 6", "128-px crops")
    device: str                             # "cpu" or "cuda"
    device_name: str
    when: dt.datetime                       # UTC
    stamp: str                              # the date (and time) as the file states it
    source: Path
    order: int                              # position in its file
    weights: tuple[tuple[str, Any], ...] = ()   # (stem, training steps) of the weights the method could load, as
                                                # bench files since 2026-11-22 05:04 state them; () when not stated

    @property
    def row(self) -> tuple[str, tuple[tuple[str, Any], ...], str | None, bool]:
        return (self.method, self.options, self.stem, self.blind)

    @property
    def column(self) -> tuple[str, str]:
        return (self.dataset, self.noise)


def _spec(method: str) -> Any:
    from diffdenoise.registry import METHODS
    return METHODS.get(method)


def family(method: str) -> str:
    spec = _spec(method)
    return spec.family if spec is not None else "other"


def _builder_defaults(method: str) -> dict[str, Any]:
    spec = _spec(method)
    if spec is None:
        return dict(IMPLIED_DEFAULTS.get(method, {}))
    defaults: dict[str, Any] = {}
    try:
        from diffdenoise.registry import resolve
        for name, p in inspect.signature(resolve(spec.target)).parameters.items():
            if p.default is not inspect.Parameter.empty:
                defaults[name] = p.default
    except Exception:       # a method whose module cannot be imported here: keep every option in the label
        pass
    return {**defaults, **spec.defaults, **IMPLIED_DEFAULTS.get(method, {})}


def normalise_options(method: str, options: dict[str, Any] | None, when: dt.datetime | None = None
                      ) -> tuple[tuple[str, Any], ...]:
    """The options that differ from the method's defaults, as a sorted tuple (hashable); a record made ``when``
    before a default changed (``DEFAULT_CHANGES``) gets the old default written out."""
    options = dict(options or {})
    change = DEFAULT_CHANGES.get(method)
    if change and when is not None and when < _parse_time(change[0]):
        options.setdefault(change[1], change[2])
    defaults = _builder_defaults(method)
    return tuple(sorted((k, v) for k, v in (options or {}).items() if k not in defaults or defaults[k] != v))


def _own_stem(method: str, stem: str | None) -> str | None:
    spec = _spec(method)
    if stem is None or (spec is not None and stem in spec.weights):
        return None
    return stem


def _takes_sigma(method: str) -> bool:
    """Whether a noise level means something to the method (the registry's ``blind``): else "blind" is no variant."""
    spec = _spec(method)
    return spec is None or not spec.blind


def _parse_time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text)
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def file_written(path: Path) -> dt.datetime:
    """When ``path`` was written: its last commit if it is tracked and unchanged, else its modification time."""
    try:
        changed = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=path.parent,
                                 capture_output=True, text=True, timeout=30)
        if changed.returncode == 0 and not changed.stdout.strip():
            log = subprocess.run(["git", "log", "-1", "--format=%cI", "--", path.name], cwd=path.parent,
                                 capture_output=True, text=True, timeout=30)
            if log.returncode == 0 and log.stdout.strip():
                return _parse_time(log.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)


def _record_time(stamp: str, path: Path) -> dt.datetime:
    if "T" in stamp or " " in stamp.strip():
        return _parse_time(stamp)
    day = dt.date.fromisoformat(stamp)
    written = file_written(path)
    if written.date() == day:
        return written
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def _subset(settings: dict[str, Any], images: int) -> str:
    """How a run differs from the whole set: ``limit`` (first N images) and ``crop`` (centre crops), "" if not."""
    parts = []
    if settings.get("limit") is not None:
        parts.append(f"first {images}")
    if settings.get("crop"):
        parts.append(f"{settings['crop']}-px crops")
    return ", ".join(parts)


def leaks_clean_image(method: str, noise: str, config: dict[str, Any]) -> bool:
    """SVNR handed the exact map of signal-dependent noise: s^2 = a x + b^2 gives x away, so such records are
    upper bounds, not results. benchmarks/svnr_table.py states ``map_given`` since it hands observed maps."""
    if not method.startswith("svnr") or not noise.startswith("poisson_gaussian"):
        return False
    if config.get("sigma_mode") in ("observed", "auto"):     # the bench's observed map, or estimated from y
        return "oracle" in method
    return "oracle" in method or not str(config.get("map_given", "")).startswith("observed")


def _bench_results(data: dict[str, Any], path: Path) -> list[Result]:
    config = data.get("config", {})
    stamp = str(config.get("date", ""))
    when = _record_time(stamp, path) if stamp else file_written(path)
    sigma_blind = config.get("sigma_mode") == "auto"
    out = []
    for i, row in enumerate(data["summary"]):
        method, noise = row["method"], row["noise"]
        if leaks_clean_image(method, noise, config):
            continue
        options = config.get("method_options", {}).get(method, {})
        out.append(Result(
            method=method, options=normalise_options(method, options, when), stem=None,
            blind=sigma_blind and noise != "real" and _takes_sigma(method),
            dataset=DATASET_ALIASES.get(row["dataset"], row["dataset"]), noise=noise,
            psnr=float(row["psnr"]), ssim=float(row["ssim"]), seconds=float(row["seconds_per_image"]),
            images=int(row["images"]), subset=_subset(config, int(row["images"])),
            device=str(config.get("device", "cpu")).split(":")[0],
            device_name=str(config.get("device_name") or config.get("device") or "?")
            + (f", {config['cpu_count']} cores" if config.get("cpu_count") and config.get("device") == "cpu" else ""),
            when=when, stamp=stamp[:16].replace("T", " ") or when.strftime("%Y-%m-%d %H:%M"), source=path, order=i,
            weights=tuple(sorted((stem, info.get("steps")) for stem, info in
                                 (config.get("weights") or {}).get(method, {}).items()))))
    return out


def _gpu_results(data: dict[str, Any], path: Path) -> list[Result]:
    out = []
    for i, (key, row) in enumerate(data.items()):
        method, noise = row["method"], row["noise"]
        stamp = str(row.get("date", ""))
        # sigma mode: stated, or the key itself (round5/ddpm_match_cbsd68.json is keyed "true" / "auto")
        sigma_mode = row.get("sigma_mode") or (key if key in ("true", "auto") else "true")
        if leaks_clean_image(method, noise, {"sigma_mode": sigma_mode}):
            continue
        when = _record_time(stamp, path) if stamp else file_written(path)
        out.append(Result(
            method=method, options=normalise_options(method, row.get("options"), when),
            stem=_own_stem(method, row.get("stem")),
            blind=sigma_mode == "auto" and noise != "real" and _takes_sigma(method),
            dataset=DATASET_ALIASES.get(row["dataset"], row["dataset"]), noise=noise,
            psnr=float(row["psnr"]), ssim=float(row["ssim"]), seconds=float(row["seconds_per_image"]),
            images=int(row["images"]), subset=_subset(row, int(row["images"])),
            device=str(row.get("device", "cuda")).split(":")[0], device_name=str(row.get("gpu", row.get("device"))),
            when=when, stamp=stamp, source=path, order=i))
    return out


def _is_summary_row(row: Any) -> bool:
    return isinstance(row, dict) and {"method", "dataset", "noise", "psnr", "ssim", "seconds_per_image",
                                      "images"} <= set(row)


def load_results(root: Path = RESULTS) -> list[Result]:
    """Every benchmark record in the JSON files under ``root`` (other JSON files are ignored)."""
    results: list[Result] = []
    for path in sorted(Path(root).rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        if isinstance(data.get("summary"), list) and isinstance(data.get("config"), dict) and \
                all(_is_summary_row(r) for r in data["summary"]):
            results.extend(_bench_results(data, path))
        elif data and all(_is_summary_row(v) for v in data.values()):
            results.extend(_gpu_results(data, path))
    # Files that do not state a limit (the GPU driver's --eval-limit) still give themselves away by their count.
    most: dict[tuple[str, str], int] = {}
    for r in results:
        most[r.column] = max(most.get(r.column, 0), r.images, SET_SIZES.get(r.dataset, 0))
    results = [replace(r, subset=f"{r.images} of {most[r.column]} images")
               if not r.subset and r.images < most[r.column] else r for r in results]
    return [replace(r, subset=", ".join(filter(None, [r.subset, "earlier weights"]))) if earlier_weights(r) else r
            for r in results]


def earlier_weights(r: Result) -> bool:
    """True when ``r`` ran the method's own weights before they were replaced.  A record that states its weights
    is judged by them: the training steps of the stem its images load (gray sets the gray model) against the
    shipped card's.  Older records by their time (``WEIGHT_CHANGES``)."""
    if r.stem is not None:
        return False
    if r.weights:
        stems = dict(r.weights)
        kind = "-gray" if r.dataset in GRAY_SETS else "-color"
        stem = next((s for s in stems if s.endswith(kind)), None) or (next(iter(stems)) if len(stems) == 1 else None)
        if stem is not None:
            return stems[stem] != shipped_steps(stem)
    return any(r.when < _parse_time(when) and (sets is None or r.dataset in sets)
               for when, sets in WEIGHT_CHANGES.get(r.method, ()))


def shipped_steps(stem: str) -> Any:
    """The training steps on the card of the shipped weights ``stem`` (None when it is not shipped)."""
    try:
        return json.loads((REPO / "weights" / f"{stem}.json").read_text(encoding="utf-8")).get("steps")
    except (OSError, ValueError):
        return None


def _preference(r: Result) -> tuple[Any, ...]:
    return (not r.subset, r.when, str(r.source), r.order)


def select(results: Iterable[Result], device: str | None = None
           ) -> dict[tuple[Any, ...], dict[tuple[str, str], Result]]:
    """row -> column -> the winning record (full set before subset, then newest); ``device`` keeps one device."""
    best: dict[tuple[Any, ...], dict[tuple[str, str], Result]] = {}
    for r in results:
        if device is not None and r.device != device:
            continue
        cells = best.setdefault(r.row, {})
        if r.column not in cells or _preference(r) > _preference(cells[r.column]):
            cells[r.column] = r
    return best


def _column_key(col: tuple[str, str]) -> tuple[Any, ...]:
    dataset, noise = col
    pos = DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else len(DATASET_ORDER)
    kind, _, level = noise.partition(":")
    try:
        number = float(level)
    except ValueError:
        number = math.inf
    return (pos, dataset, noise != "real", kind, number, noise)


def column_label(col: tuple[str, str]) -> str:
    dataset, noise = col
    name = DATASET_NAMES.get(dataset, dataset)
    if noise == "real":
        return f"{name} (real)"
    kind, _, level = noise.partition(":")
    return f"{name} σ{level}" if kind == "gaussian" and "," not in level else f"{name} {noise}"


def row_label(row: tuple[Any, ...]) -> str:
    method, options, stem, blind = row
    extra = [f"{k}={v}" for k, v in options]
    if stem:
        extra.append(f"weights {stem}")
    if blind:
        extra.append("σ̂")
    return f"`{method}`" + (f" ({', '.join(extra)})" if extra else "")


def _row_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    method, options, stem, blind = row
    from diffdenoise.registry import METHODS
    fam = family(method)
    names = list(METHODS)
    return (FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else len(FAMILY_ORDER),
            names.index(method) if method in names else len(names), method, len(options), str(options),
            stem or "", blind)


def ranks(cells: dict[tuple[Any, ...], Result]) -> dict[tuple[Any, ...], int]:
    """Competition ranks by PSNR (1 = best; ties share a rank) among the full-set records of one column."""
    full = {row: r.psnr for row, r in cells.items() if not r.subset}
    return {row: 1 + sum(1 for other in full.values() if other > psnr) for row, psnr in full.items()}


def _source_label(r: Result) -> str:
    try:
        path = r.source.resolve().relative_to(REPO)
    except ValueError:
        path = r.source
    device = "CPU" if r.device == "cpu" else "GPU"
    return f"{device}: `{path}`, {r.device_name}, {r.stamp}"


def build_table(results: Sequence[Result], all_columns: bool = False) -> str:
    """The markdown ranking table and its list of sources.  Columns measured only on subsets are left out unless
    ``all_columns``; rows with no cell in the columns shown are left out."""
    best = select(results)
    every = {col for cells in best.values() for col in cells}
    full = {col for cells in best.values() for col, r in cells.items() if not r.subset}
    columns = sorted(every if all_columns else full, key=_column_key)
    rows = sorted((row for row in best if any(col in best[row] for col in columns)), key=_row_key)
    by_column = {col: {row: best[row][col] for row in rows if col in best[row]} for col in columns}
    column_ranks = {col: ranks(cells) for col, cells in by_column.items()}
    sources: dict[str, str] = {}
    counters = {"cpu": 0, "gpu": 0}

    def source_id(r: Result) -> str:
        label = _source_label(r)
        if label not in sources:
            kind = "cpu" if r.device == "cpu" else "gpu"
            counters[kind] += 1
            sources[label] = f"{'C' if kind == 'cpu' else 'G'}{counters[kind]}"
        return sources[label]

    header = "| method | family | " + " | ".join(column_label(c) for c in columns) + " |"
    lines = [header, "|---|---|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for col in columns:
            r = best[row].get(col)
            if r is None:
                cells.append("")
                continue
            sid = source_id(r)
            if r.subset:
                cells.append(f"*{r.psnr:.2f} / {r.ssim:.4f}* ({r.subset}) {sid}")
                continue
            rank = column_ranks[col][row]
            psnr = f"**{r.psnr:.2f}**" if rank == 1 else f"{r.psnr:.2f}"
            cells.append(f"{psnr} / {r.ssim:.4f} #{rank} {sid}")
        lines.append(f"| {row_label(row)} | {family(row[0])} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Cells: PSNR dB / SSIM, #rank by PSNR within the column (bold: best), source. Empty: not measured. "
                 "*Italics*: a subset of the set (`--limit`) or a record of weights replaced since (earlier weights), "
                 "not ranked. σ̂: sigma estimated from the image. "
                 "Where a method/set/noise was measured more than once, the newest full-set record is shown."
                 + ("" if len(columns) == len(every) else
                    f" {len(every) - len(columns)} set/noise column(s) measured only on subsets are left out "
                    "(`--all-columns` shows them)."))
    lines.append("")
    lines.append("Sources:")
    for label, sid in sorted(sources.items(), key=lambda kv: (kv[1][0], int(kv[1][1:]))):
        lines.append(f"- {sid} — {label}")
    return "\n".join(lines) + "\n"


def parse_panel(text: str) -> tuple[str, str, str]:
    """``dataset:noise:device`` (the dataset may hold a colon, e.g. ``polyu:test:real:cpu``)."""
    parts = text.split(":")
    if len(parts) < 3 or parts[-1] not in ("cpu", "cuda"):
        raise SystemExit(f"bad panel {text!r}: expected dataset:noise:device, device cpu or cuda")
    device = parts[-1]
    if parts[-2] == "real":
        return ":".join(parts[:-2]), "real", device
    return ":".join(parts[:-3]), ":".join(parts[-3:-1]), device


def _place_labels(ax: Any, items: list[tuple[str, float, float]], fontsize: float = 7) -> None:
    """Label each marker at the first of a few offsets whose text box overlaps no earlier label or marker
    (display pixels; a text box is estimated from the character count)."""
    dpi_scale = ax.figure.dpi / 72
    char_w, line_h = 0.6 * fontsize * dpi_scale, 1.3 * fontsize * dpi_scale
    centres = [tuple(ax.transData.transform((x, y))) for _, x, y in items]
    taken = [(cx - 4, cy - 4, cx + 4, cy + 4) for cx, cy in centres]
    for (text, x, y), (cx, cy) in sorted(zip(items, centres), key=lambda it: -it[0][2]):
        w = char_w * len(text)
        candidates = [(6, 2), (6, -line_h - 2), (-w - 6, 2), (-w - 6, -line_h - 2), (6, line_h + 2),
                      (6, -2 * line_h - 2), (-w / 2, line_h + 4), (-w / 2, -2 * line_h - 4)]
        for dx, dy in candidates:
            box = (cx + dx, cy + dy, cx + dx + w, cy + dy + line_h)
            if not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
                break
        else:
            dx, dy = candidates[0]
            box = (cx + dx, cy + dy, cx + dx + w, cy + dy + line_h)
        taken.append(box)
        ax.annotate(text, (x, y), textcoords="offset pixels", xytext=(dx, dy), fontsize=fontsize,
                    va="bottom", ha="left")


def scatter(results: Sequence[Result], panels: Sequence[tuple[str, str, str]], path: Path) -> list[str]:
    """PSNR against seconds per image (log axis), one panel per (dataset, noise, device); returns one caption line
    per panel naming its sources."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"diffusion": "tab:red", "cnn": "tab:blue", "classical": "tab:gray", "other": "tab:green"}
    markers = {"diffusion": "o", "cnn": "s", "classical": "^", "other": "D"}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.8), squeeze=False, dpi=110)
    captions: list[str] = []
    labels: list[tuple[Any, list[tuple[tuple[Any, ...], Result]]]] = []
    for ax, (dataset, noise, device) in zip(axes[0], panels):
        best = select(results, device=device)
        points = [(row, cells[(dataset, noise)]) for row, cells in best.items()
                  if (dataset, noise) in cells and not cells[(dataset, noise)].subset]
        where = "CPU" if device == "cpu" else "GPU"
        names = sorted({r.device_name for _, r in points})
        ax.set_title(f"{column_label((dataset, noise))} — {where}" + (f" ({', '.join(names)})" if names else ""),
                     fontsize=10)
        ax.set_xscale("log")
        ax.set_xlabel(f"seconds per image ({where}, log scale)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(True, which="both", alpha=0.3)
        for row, r in points:
            fam = family(r.method)
            ax.scatter([r.seconds], [r.psnr], c=colors.get(fam, "black"), marker=markers.get(fam, "o"), s=40,
                       zorder=3)
        if points:
            xs, ys = [r.seconds for _, r in points], [r.psnr for _, r in points]
            ax.set_xlim(min(xs) / 2, max(xs) * 4)
            pad = max(0.3, 0.08 * (max(ys) - min(ys)))
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        else:
            ax.text(0.5, 0.5, "no full-set record", transform=ax.transAxes, ha="center")
        labels.append((ax, points))
        for fam in FAMILY_ORDER:
            ax.scatter([], [], c=colors[fam], marker=markers[fam], label=fam)
        ax.legend(loc="lower right", fontsize=8)
        files = sorted({str(r.source.resolve().relative_to(REPO)) if r.source.resolve().is_relative_to(REPO)
                        else str(r.source) for _, r in points})
        captions.append(f"{column_label((dataset, noise))}, {where}: {len(points)} methods from "
                        + ", ".join(f"`{f}`" for f in files))
    fig.tight_layout()
    for ax, points in labels:
        _place_labels(ax, [(row_label(row).replace("`", ""), r.seconds, r.psnr) for row, r in points])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi)
    plt.close(fig)
    return captions


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Rank every method on every benchmark set from the JSON files under benchmarks/results/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n  .venv/bin/python benchmarks/rank.py\n"
               "  .venv/bin/python benchmarks/rank.py --out benchmarks/results/ranking.md "
               "--plot docs/img/psnr_vs_time.png\n"
               "  .venv/bin/python benchmarks/rank.py --plot out/p.png --panel set12:gaussian:25:cpu")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder searched for JSON (default: %(default)s)")
    p.add_argument("--out", type=Path, help="also write the table to this markdown file (default: print only)")
    p.add_argument("--all-columns", action="store_true",
                   help="also show set/noise columns measured only on subsets (default: left out)")
    p.add_argument("--plot", type=Path, help="write the PSNR-vs-time scatter PNG here (default: no plot)")
    p.add_argument("--panel", action="append", default=None,
                   help="dataset:noise:device of one scatter panel, repeatable "
                        f"(default: {' and '.join(DEFAULT_PANELS)})")
    args = p.parse_args(argv)
    results = load_results(args.results)
    if not results:
        print(f"no benchmark records under {args.results}", file=sys.stderr)
        return 2
    text = build_table(results, all_columns=args.all_columns)
    if args.plot is not None:
        captions = scatter(results, [parse_panel(x) for x in (args.panel or DEFAULT_PANELS)], args.plot)
        text += "\nScatter plot `" + str(args.plot) + "`, newest full-set record per method and device:\n" + \
            "".join(f"- {c}\n" for c in captions)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
