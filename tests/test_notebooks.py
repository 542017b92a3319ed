"""Every numbered notebook runs under papermill in the smoke profile and writes finite headline metrics.

The notebooks share one run folder (session-scoped), so 03-05 reuse the models that 02-04 trained,
as they do in ``runs/`` for a reader. Each writes ``<run_root>/notebooks_metrics/<NN>_smoke.json``.
"""
import json
import math
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
METRIC_KEYS = ("fg_ari", "mbo", "miou")
# Keys each notebook must write (beyond being finite): its headline numbers.
EXPECTED = {
    "01": {"val_videos", "frames_per_video", "synth-easy/objects_per_video", "synth-hard/objects_per_video"},
    "02": {f"{maps}/{k}" for maps in ("decoder", "attention") for k in METRIC_KEYS},
    "03": {f"{m}/decoder/{k}" for m in ("baseline", "dense") for k in METRIC_KEYS} | {"dense_bytes_per_pair"},
    "04": {f"{m}/{maps}/{k}" for m in ("baseline", "dense", "ssync") for maps in ("decoder", "attention")
           for k in METRIC_KEYS} | {"boundary_share", "interior_share"},
    "05": {f"{m}/s{s}/{k}" for m in ("baseline", "dense", "ssync") for s in (3, 4, 6) for k in ("fg_ari", "mbo")},
}


@pytest.fixture(scope="session")
def run_root(tmp_path_factory):
    return tmp_path_factory.mktemp("notebook-runs")


def test_every_notebook_is_covered():
    assert sorted(p.name[:2] for p in NOTEBOOKS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(path, run_root, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{path.name}: no parameters cell"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # smoke models are tiny: one thread per kernel is faster
    papermill.execute_notebook(str(path), str(tmp_path / path.name), kernel_name="python3", cwd=str(NOTEBOOK_DIR),
                               parameters={"profile": "smoke", "interactive": False, "run_root": str(run_root)},
                               progress_bar=False)
    number = path.name[:2]
    metrics = json.loads((run_root / "notebooks_metrics" / f"{number}_smoke.json").read_text())
    missing = EXPECTED[number] - set(metrics)
    assert not missing, f"{path.name} did not write {sorted(missing)}"
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    for key, value in metrics.items():
        if key.endswith(("mbo", "miou", "_share")):
            assert 0.0 <= value <= 1.0, (key, value)
        if key.endswith("fg_ari"):
            assert -1.0 <= value <= 1.0, (key, value)


def test_write_back_drops_papermill_traces(tmp_path):
    run_all = _run_all()
    nb = nbformat.v4.new_notebook(metadata={"papermill": {"duration": 1.0}, "kernelspec": {"name": "python3", "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell("profile = 'cpu'", metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]})
    body = nbformat.v4.new_code_cell("print(1)", metadata={"papermill": {"duration": 0.1}, "execution": {"iopub.status.busy": "2026-11-25T21:23:42Z"}})
    body.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells = [params, injected, body]
    nbformat.write(nb, tmp_path / "executed.ipynb")
    run_all.write_back(tmp_path / "executed.ipynb", tmp_path / "committed.ipynb")
    back = nbformat.read(tmp_path / "committed.ipynb", as_version=4)
    assert [c.source for c in back.cells] == ["profile = 'cpu'", "print(1)"]
    assert "papermill" not in back.metadata and back.metadata.kernelspec.name == "python3"
    assert dict(back.cells[1].metadata) == {} and back.cells[1].outputs[0].text == "1\n"


def _run_all():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", NOTEBOOK_DIR / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    return run_all


PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")  # 1x1 px


def test_html_landing_page_has_a_card_per_notebook(tmp_path):
    run_all = _run_all()
    executed = []
    for name, marker in (("01_data", "viz.plot_frames(frames, item"), ("02_baseline", "viz.plot_map_rows(")):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
        other = nbformat.v4.new_code_cell("plot_something_else()")
        other.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})]
        key = nbformat.v4.new_code_cell(f"x = 1\n{marker}...)")
        key.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG[:40] + "\n" + PNG[40:]})]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), other, key]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        executed.append(tmp_path / f"{name}.ipynb")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "02_cpu.json").write_text(json.dumps({"decoder/fg_ari": 0.5975, "attention/fg_ari": 0.6883}))
    index = run_all.render_html(executed, tmp_path / "html", profile="cpu", metrics_dir=tmp_path / "metrics")
    text = index.read_text()
    assert "Profile <b>cpu</b>" in text and text.count("class='card'") == 2
    assert text.count(f"data:image/png;base64,{PNG}") == 2 and "base64,AAAA" not in text  # the key figure only
    assert "FG-ARI of the slot attention masks" in text and "68.8%" in text and "59.8%" in text
    assert "attention/fg_ari" not in text  # no raw keys
    assert "the data: videos with instance masks" in text  # 01's card, without numbers (no JSON)
    first, second = ((tmp_path / "html" / f"{n}.html").read_text() for n in ("01_data", "02_baseline"))
    assert 'href="02_baseline.html"' in first and 'href="index.html"' in first
    assert 'href="01_data.html"' in second and 'href="index.html"' in second


@pytest.mark.parametrize("key, label, value, shown", [
    ("dense/decoder/fg_ari", "dense alignment: FG-ARI of the decoder masks", 0.6912, "69.1%"),
    ("attention/mbo", "mBO of the slot attention masks", 0.3, "30.0%"),
    ("ssync/s7/mbo", "SSync, 7 slots: mBO of the decoder masks", 0.225, "22.5%"),
    ("synth-easy/objects_per_video", "objects per video (synth-easy)", 3.05, "3.05"),
    ("synth-easy/mean_area_frac", "mean object area (share of the frame) (synth-easy)", 0.081, "8.1%"),
    ("val_videos", "validation videos", 200.0, "200"),
    ("dense_bytes_per_pair", "dense alignment: bytes per pair of patches", 25.53, "25.5"),
    ("boundary_share", "patches SSync calls boundary", 0.38, "38.0%"),
    ("something/new", "something/new", 1.5, "1.5"),
])
def test_plain_labels(key, label, value, shown):
    run_all = _run_all()
    assert run_all.plain_label(key) == label and run_all.plain_value(key, value) == shown


def test_every_card_marker_finds_a_figure_in_the_committed_notebooks():
    run_all = _run_all()
    for path in NOTEBOOKS:
        marker, _ = run_all.KEY_FIGURE[path.name[:2]]
        assert run_all.key_figure(nbformat.read(path, as_version=4), marker), f"{path.name}: no figure for {marker!r}"
