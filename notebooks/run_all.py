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


def render_html(executed: list[Path], html_dir: Path) -> Path:
    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    links = []
    for path in executed:
        body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
        (html_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
        links.append(f'<li><a href="{path.stem}.html">{path.stem}</a></li>')
    index = html_dir / "index.html"
    index.write_text("<html><body><h1>SSync companion: executed notebooks</h1><ul>"
                     + "".join(links) + "</ul></body></html>", encoding="utf-8")
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
    index = render_html(executed, out_dir / "html")
    for name, seconds in timings:
        print(f"{name:32s} {seconds:8.1f} s")
    print(f"{'total':32s} {sum(s for _, s in timings):8.1f} s\nreport: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
