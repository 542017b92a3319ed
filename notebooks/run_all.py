"""Execute the numbered notebooks with papermill and render an HTML report with nbconvert.

    python notebooks/run_all.py --profile cpu --out runs/notebooks
    python notebooks/run_all.py --profile smoke --only 02 -p steps=50
    python notebooks/run_all.py --profile cpu --only 03 --write-back   # refresh the committed outputs

Executed notebooks land in OUT/<profile>/, the HTML report in OUT/<profile>/html/ (index.html
links every notebook). Each notebook runs with its working directory set to notebooks/.
``--write-back`` copies the executed notebooks over notebooks/NN_*.ipynb (the committed outputs) without
papermill's injected-parameters cell and run metadata, so the parameters cell keeps its defaults.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from ssync_lib.config import PROFILES
from ssync_lib.errors import ConfigError, UserInputError

HERE = Path(__file__).resolve().parent


def parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ConfigError(f"-p {text}: not of the form name=value", fix="write it as -p name=value, e.g. -p steps=50")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def notebook_paths(only: list[str]) -> list[Path]:
    paths = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        raise ConfigError(f"--only {' '.join(only)}: no notebook in {HERE} matches {only or 'NN_*.ipynb'}",
                          fix="give notebook number prefixes, e.g. --only 01 04")
    return paths


# The landing page's card per notebook (``card``): what it teaches; its key figure, the first image drawn by the
# first code cell whose source contains the marker, with a caption; the metrics (keys of its notebooks_metrics JSON)
# it quotes (none listed: its first six).
TEACHES = {
    "01": "the data: videos with instance masks, the synthetic levels, how many objects and how large, what the "
          "encoder sees (random against pretrained features)",
    "02": "the base model (VideoSAUR + SlotContrast): slot maps over time, which slot holds which object, slot "
          "attention's iterations, the reconstruction, slot vectors, metrics, failures",
    "03": "dense alignment (SRL): the positives of one patch, why its cost is quadratic, the trained model beside the "
          "baseline",
    "04": "SSync: merged pseudo-labels, boundary and interior patches, its two losses, the three objectives side by "
          "side, its cost",
    "05": "robustness to the number of slots: the committed sweeps, the paper's claims with their numbers, SSync's "
          "premises per slot count",
}
KEY_FIGURE = {  # notebook: (marker, caption)
    "01": ("viz.plot_frames(frames, item", "one validation clip: frames over their instance masks"),
    "02": ("viz.plot_map_rows(", "argmax slot maps of the slot attention and the decoder beside the ground truth"),
    "03": ("viz.plot_patch_sets(", "one patch's positive sets: same attention slot, top-k by feature, same "
                                   "decoder slot"),
    "04": ("viz.plot_boundary_interior(", "SSync's boundary and interior patches over the encoder's and decoder's "
                                          "labels"),
    "05": ("viz.plot_slot_sweep(", "decoder FG-ARI and mBO against the slot count, beside the paper's"),
}
HEADLINE_KEYS = {
    "01": ["val_videos", "frames_per_video", "synth-easy/objects_per_video", "synth-hard/objects_per_video",
           "synth-easy/mean_area_frac"],
    "02": ["decoder/fg_ari", "attention/fg_ari", "decoder/mbo", "attention/mbo"],
    "03": ["baseline/decoder/fg_ari", "dense/decoder/fg_ari", "dense/attention/fg_ari", "dense/decoder/mbo",
           "dense_bytes_per_pair"],
    "04": ["ssync/decoder/fg_ari", "ssync/attention/fg_ari", "ssync/decoder/mbo", "boundary_share", "interior_share"],
}
OBJECTIVE_WORDS = {"baseline": "baseline", "dense": "dense alignment", "ssync": "SSync"}
METRIC_WORDS = {"fg_ari": "FG-ARI", "mbo": "mBO", "miou": "mIoU"}
MAPS_WORDS = {"decoder": "decoder masks", "attention": "slot attention masks"}
PLAIN = {"val_videos": "validation videos", "frames_per_video": "frames per video", "input_size": "frame size (px)",
         "val_objects_per_video": "objects per validation video",
         "objects_per_video": "objects per video", "mean_area_frac": "mean object area (share of the frame)",
         "dense_bytes_per_pair": "dense alignment: bytes per pair of patches",
         "boundary_share": "patches SSync calls boundary", "interior_share": "patches SSync calls interior"}
PERCENT = ("fg_ari", "mbo", "miou", "_share", "area_frac")  # keys whose values are fractions, shown in %


def plain_label(key: str) -> str:
    """A metric key in words: ``dense/decoder/fg_ari`` -> ``dense alignment: FG-ARI of the decoder masks``,
    ``ssync/s7/mbo`` -> ``SSync, 7 slots: mBO of the decoder masks``, ``synth-easy/objects_per_video`` ->
    ``objects per video (synth-easy)``; an unknown key is returned as it is."""
    parts = key.split("/")
    if parts[-1] in METRIC_WORDS:
        metric, rest = METRIC_WORDS[parts[-1]], parts[:-1]
        maps = rest.pop() if rest and rest[-1] in MAPS_WORDS else "decoder"  # notebook 05 quotes decoder masks
        who = [OBJECTIVE_WORDS.get(p, p) if not re.fullmatch(r"s\d+", p) else f"{p[1:]} slots" for p in rest]
        return (", ".join(who) + ": " if who else "") + f"{metric} of the {MAPS_WORDS[maps]}"
    if key in PLAIN:
        return PLAIN[key]
    if len(parts) == 2 and parts[1] in PLAIN:
        return f"{PLAIN[parts[1]]} ({parts[0]})"
    return key


def plain_value(key: str, value: float) -> str:
    """Fractions as percentages with one decimal, counts as they are, other numbers to three figures."""
    if key.endswith(PERCENT):
        return f"{100 * value:.1f}%"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def headline(number: str, metrics: dict) -> list[tuple[str, str]]:
    """The notebook's headline numbers as (plain label, value) pairs: its listed keys, else its first six (SSync's
    first; notebook 05's keys depend on the slot counts a profile can afford)."""
    keys = ([k for k in HEADLINE_KEYS.get(number, []) if k in metrics]
            or sorted(metrics, key=lambda k: (not k.startswith("ssync/"), k))[:6])  # SSync's first
    return [(plain_label(k), plain_value(k, metrics[k])) for k in keys]


def key_figure(nb, marker: str) -> str | None:
    """The base64 PNG of the first image drawn by the first code cell whose source contains ``marker``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and marker in cell.source:
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    return png.replace("\n", "")  # nbformat joins the stored lines into one str
            return None
    return None


def _nav(pages: list[str], i: int) -> str:
    prev = f'<a href="{pages[i - 1]}.html">&larr; {pages[i - 1]}</a>' if i > 0 else "<span></span>"
    nxt = f'<a href="{pages[i + 1]}.html">{pages[i + 1]} &rarr;</a>' if i + 1 < len(pages) else "<span></span>"
    return ('<nav style="display:flex;justify-content:space-between;max-width:1100px;margin:8px auto;'
            f'font-family:sans-serif">{prev}<a href="index.html">index</a>{nxt}</nav>')


def card(page: str, nb, metrics: dict | None) -> str:
    """One notebook's card on the landing page: key figure (thumbnail, linked to the page), title, what it teaches,
    the figure's caption and the headline numbers with plain labels."""
    number = page[:2]
    marker, caption = KEY_FIGURE.get(number, ("", ""))
    png = key_figure(nb, marker) if marker else None
    thumb = (f'<a href="{page}.html"><img src="data:image/png;base64,{png}" alt="{html.escape(caption)}" '
             'style="width:320px;max-height:240px;object-fit:contain;border:1px solid #ddd"></a>'
             if png else '<div style="width:320px;color:#888">(no figure in this run)</div>')
    numbers = headline(number, metrics) if metrics else []
    rows = "".join(f"<tr><td>{html.escape(label)}</td>"
                   f"<td style='text-align:right'><b>{html.escape(value)}</b></td></tr>" for label, value in numbers)
    return ("<div class='card' style='display:flex;gap:16px;padding:12px;margin:12px 0;border:1px solid #ccc;"
            f"border-radius:6px'>{thumb}<div><h2 style='margin:0'><a href=\"{page}.html\">{html.escape(page)}</a></h2>"
            + (f"<p>{html.escape(TEACHES[number])}</p>" if number in TEACHES else "")
            + (f"<p><small>Key figure: {html.escape(caption)}.</small></p>" if png else "")
            + (f"<table style='font-size:90%'>{rows}</table>" if rows else "") + "</div></div>")


def render_html(executed: list[Path], html_dir: Path, profile: str = "", metrics_dir: Path | None = None) -> Path:
    """Each executed notebook as an HTML page with links to the previous / next page and the index; the index is a
    landing page naming the profile, with one card per notebook (``card``): key figure, what it teaches and its
    headline numbers, read from ``metrics_dir/<NN>_<profile>.json`` (``run_cache.write_notebook_metrics``) where
    that file exists."""
    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    pages = [path.stem for path in executed]
    cards = []
    for i, path in enumerate(executed):
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb)
        nav = _nav(pages, i)
        head, sep, rest = body.partition("<body")
        if sep:
            tag_end = rest.index(">") + 1
            body = head + sep + rest[:tag_end] + nav + rest[tag_end:]
            body = body.replace("</body>", nav + "</body>", 1)
        (html_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
        metrics_path = metrics_dir / f"{path.stem[:2]}_{profile}.json" if metrics_dir is not None else None
        metrics = json.loads(metrics_path.read_text()) if metrics_path is not None and metrics_path.exists() else None
        cards.append(card(path.stem, nb, metrics))
    index = html_dir / "index.html"
    index.write_text("<html><head><meta charset='utf-8'><title>SSync companion notebooks</title></head>"
                     "<body style='font-family:sans-serif;max-width:1000px;margin:auto'>"
                     "<h1>SSync companion: the notebooks</h1><p>Read them in order: each card shows the notebook's key "
                     f"figure, what it teaches and its headline numbers. Profile <b>{html.escape(profile)}</b> "
                     "(ssync_lib/config.py); numbers as the notebooks wrote them (run_cache.write_notebook_metrics); "
                     "FG-ARI, mBO and mIoU at video level.</p>" + "".join(cards) + "</body></html>",
                     encoding="utf-8")
    return index


def write_back(executed: Path, source: Path) -> None:
    """Executed notebook -> the committed one: papermill's injected cell and timing metadata dropped."""
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, source)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
    ap.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    ap.add_argument("--out", default="runs/notebooks")
    ap.add_argument("--only", nargs="*", default=[], help="notebook number prefixes, e.g. 01 04")
    ap.add_argument("-p", "--param", action="append", default=[], help="extra papermill parameter name=value")
    ap.add_argument("--write-back", action="store_true", help="copy the executed notebooks over notebooks/")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except (UserInputError, papermill.PapermillExecutionError) as err:
        if args.traceback:
            raise
        if isinstance(err, papermill.PapermillExecutionError):  # a notebook stopped: its error, where to read it all
            user = "\nfix: " in str(err.evalue)  # the library's bad input (errors.UserInputError) says its fix
            print(f"error: {err.ename}: {err.evalue} (notebook cell {err.exec_count}; the executed notebook with "
                  f"the traceback is in {Path(args.out).resolve() / args.profile})", file=sys.stderr)
            return 2 if user else 1
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.traceback:
            raise
        print("interrupted: stopped by Ctrl-C; the notebooks executed so far are in "
              f"{Path(args.out).resolve() / args.profile}\nfix: run the same command again (trained runs are kept "
              f"and reused)", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    params = {"profile": args.profile, "interactive": False, **dict(parse_param(p) for p in args.param)}
    paths = notebook_paths(args.only)  # both checked before anything is written
    out_dir = Path(args.out).resolve() / args.profile
    out_dir.mkdir(parents=True, exist_ok=True)
    executed, timings = [], []
    for path in paths:
        target = out_dir / path.name
        print(f"== {path.name} ({args.profile})", flush=True)
        start = time.perf_counter()
        papermill.execute_notebook(str(path), str(target), parameters=params, kernel_name="python3",
                                   cwd=str(HERE), progress_bar=False)
        timings.append((path.name, time.perf_counter() - start))
        executed.append(target)
        if args.write_back:
            write_back(target, path)
    run_root = Path(str(params.get("run_root", "runs"))).expanduser()
    run_root = run_root if run_root.is_absolute() else HERE.parent / run_root  # as config.resolve_path does
    index = render_html(executed, out_dir / "html", profile=args.profile, metrics_dir=run_root / "notebooks_metrics")
    for name, seconds in timings:
        print(f"{name:32s} {seconds:8.1f} s")
    print(f"{'total':32s} {sum(s for _, s in timings):8.1f} s\nreport: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
