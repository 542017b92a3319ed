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
import sys
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent


def parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise SystemExit(f"parameter '{text}' is not of the form name=value")
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
        raise SystemExit(f"no notebook in {HERE} matches {only or 'NN_*.ipynb'}")
    return paths


# One line per notebook for the report's index, and the metrics (keys of its notebooks_metrics JSON) it quotes.
DESCRIPTIONS = {
    "01": ("the data: videos with instance masks, the synthetic levels, objects per video and their size",
           ["val_videos", "synth-easy/objects_per_video", "synth-hard/objects_per_video", "synth-easy/mean_area_frac"]),
    "02": ("the base model (VideoSAUR + SlotContrast): slot maps, which slot holds which object, slot attention's "
           "iterations, the reconstruction, slot vectors, metrics",
           ["attention/fg_ari", "decoder/fg_ari", "attention/mbo", "decoder/mbo"]),
    "03": ("dense alignment (SRL): the positives of one patch, the quadratic cost, the trained model beside the baseline",
           ["baseline/decoder/fg_ari", "dense/decoder/fg_ari", "dense/attention/fg_ari", "dense/decoder/mbo",
            "dense_bytes_per_pair"]),
    "04": ("SSync: merged pseudo-labels, boundary and interior patches, the three objectives side by side",
           ["ssync/decoder/fg_ari", "ssync/attention/fg_ari", "ssync/decoder/mbo", "boundary_share", "interior_share"]),
    "05": ("robustness to the number of slots: the sweep over slot counts and seeds",
           []),
}


def _headline(number: str, metrics: dict) -> str:
    """The notebook's headline numbers as ``key value`` pairs: its listed keys, else its first six."""
    keys = [k for k in DESCRIPTIONS.get(number, ("", []))[1] if k in metrics] or sorted(metrics)[:6]
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in keys)


def _nav(pages: list[str], i: int) -> str:
    prev = f'<a href="{pages[i - 1]}.html">&larr; {pages[i - 1]}</a>' if i > 0 else "<span></span>"
    nxt = f'<a href="{pages[i + 1]}.html">{pages[i + 1]} &rarr;</a>' if i + 1 < len(pages) else "<span></span>"
    return ('<nav style="display:flex;justify-content:space-between;max-width:1100px;margin:8px auto;'
            f'font-family:sans-serif">{prev}<a href="index.html">index</a>{nxt}</nav>')


def render_html(executed: list[Path], html_dir: Path, profile: str = "", metrics_dir: Path | None = None) -> Path:
    """Each executed notebook as an HTML page with links to the previous / next page and the index; the index
    names the profile and gives one line per notebook: what it shows and its headline numbers, read from
    ``metrics_dir/<NN>_<profile>.json`` (``run_cache.write_notebook_metrics``) where that file exists."""
    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    pages = [path.stem for path in executed]
    items = []
    for i, path in enumerate(executed):
        body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
        nav = _nav(pages, i)
        head, sep, rest = body.partition("<body")
        if sep:
            tag_end = rest.index(">") + 1
            body = head + sep + rest[:tag_end] + nav + rest[tag_end:]
            body = body.replace("</body>", nav + "</body>", 1)
        (html_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
        number = path.stem[:2]
        line = DESCRIPTIONS.get(number, ("", []))[0]
        metrics_path = metrics_dir / f"{number}_{profile}.json" if metrics_dir is not None else None
        numbers = ""
        if metrics_path is not None and metrics_path.exists():
            numbers = _headline(number, json.loads(metrics_path.read_text()))
        items.append(f'<li><a href="{path.stem}.html">{path.stem}</a>' + (f": {html.escape(line)}" if line else "")
                     + (f"<br><small>{html.escape(numbers)}</small>" if numbers else "") + "</li>")
    index = html_dir / "index.html"
    index.write_text("<html><head><meta charset='utf-8'><title>SSync companion notebooks</title></head>"
                     "<body style='font-family:sans-serif;max-width:1000px;margin:auto'>"
                     f"<h1>SSync companion: executed notebooks</h1><p>profile <b>{html.escape(profile)}</b>"
                     " (ssync_lib/config.py); headline numbers as the notebooks wrote them"
                     " (run_cache.write_notebook_metrics).</p><ul>" + "".join(items) + "</ul></body></html>",
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
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--out", default="runs/notebooks")
    ap.add_argument("--only", nargs="*", default=[], help="notebook number prefixes, e.g. 01 04")
    ap.add_argument("-p", "--param", action="append", default=[], help="extra papermill parameter name=value")
    ap.add_argument("--write-back", action="store_true", help="copy the executed notebooks over notebooks/")
    args = ap.parse_args(argv)

    out_dir = Path(args.out).resolve() / args.profile
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": args.profile, "interactive": False, **dict(parse_param(p) for p in args.param)}
    executed, timings = [], []
    for path in notebook_paths(args.only):
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
