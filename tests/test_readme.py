"""The README is the front door (issue 31): short, its layout table complete, its links alive, and the numbers of its
"Results at a glance" those of the committed results files."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next ``## ``."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start: end if end > 0 else len(README)]


def layout_names() -> str:
    """The first column of the "Where things are" table."""
    rows = [line for line in section("Where things are").splitlines() if line.startswith("| `")]
    return "\n".join(row.split(" | ")[0] for row in rows)


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_layout_names_every_folder_script_module_and_checkpoint():
    names = layout_names()
    folders = [p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
               and p.name not in {"data", "runs"} and not p.name.endswith(".egg-info")
               and any(f.is_file() for f in p.rglob("*") if ".venv" not in f.parts)]
    missing = [f for f in folders if f"`{f}/" not in names]
    missing += [p.name for p in (ROOT / "scripts").glob("*.py") if p.name not in names]
    missing += [p.name for p in (ROOT / "checkpoints").glob("*/*") if p.is_dir() and p.name not in names]
    lib = ROOT / "ssync_lib"
    missing += [p.name for p in lib.glob("*.py") if p.name != "__init__.py" and p.name not in names]
    missing += [p.name for p in lib.iterdir()
                if p.is_dir() and (p / "__init__.py").exists() and f"{p.name}/" not in names]
    assert not missing, f"README's layout table does not name {missing}"


def test_layout_paths_and_links_exist():
    for row in layout_names().splitlines():
        first = re.findall(r"`([^`]+)`", row)
        base = ROOT / first[0]
        # the other names of a row are siblings of its first path: `ssync_lib/train.py`, `evaluate.py`
        paths = [base] + [base.parent / rel for rel in first[1:] if "/" not in rel.rstrip("/")]
        for path in paths:
            assert path.exists(), f"README layout row {row!r}: {path.relative_to(ROOT)} does not exist"
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_results_index_names_every_results_folder():
    index = (ROOT / "results" / "README.md").read_text()
    for folder in (ROOT / "results").iterdir():
        if folder.is_dir():
            assert f"[`{folder.name}/`]({folder.name}/README.md)" in index, folder.name
            assert (folder / "README.md").exists(), f"results/{folder.name} has no README"


@pytest.fixture(scope="module")
def decoder_means() -> pd.DataFrame:
    """Mean over seeds (%) of the synth-easy sweep's decoder metrics, per objective (columns) and slot count."""
    summary = pd.read_csv(ROOT / "results" / "synth-easy" / "summary.csv")
    means = summary.groupby(["slots", "objective"])[["decoder/video/fg_ari", "decoder/video/mbo"]].mean() * 100
    return means


def test_glance_claims_carry_the_committed_numbers(decoder_means):
    glance = section("Results at a glance")
    fg = decoder_means["decoder/video/fg_ari"].unstack()
    mbo = decoder_means["decoder/video/mbo"].unstack()
    claim1 = (f"At 11 slots its mBO is {mbo.loc[11, 'ssync']:.1f} against the baseline's {mbo.loc[11, 'baseline']:.1f} "
              f"and dense alignment's {mbo.loc[11, 'dense']:.1f}, but its FG-ARI is lower ({fg.loc[11, 'ssync']:.1f} "
              f"against {fg.loc[11, 'baseline']:.1f} and {fg.loc[11, 'dense']:.1f}).")
    change = fg.loc[15] - fg.loc[7]
    claim2 = (f"its FG-ARI changes by {change['ssync']:+.1f}, the baseline's by {change['baseline']:+.1f}, "
              f"dense alignment's by {change['dense']:+.1f}")
    assert claim1 in glance and claim2 in glance
    assert fg.loc[11, "ssync"] < min(fg.loc[11, "baseline"], fg.loc[11, "dense"])  # "in part" stays true
    assert mbo.loc[11, "ssync"] > max(mbo.loc[11, "baseline"], mbo.loc[11, "dense"])


def test_glance_cost_claim_carries_the_committed_benchmark():
    """Claim 3 against results/bench/alignment.csv: log-log slopes fitted here with numpy (sizes >= 256), ratios."""
    bench = pd.read_csv(ROOT / "results" / "bench" / "alignment.csv")
    assert not bench["extrapolated"].any()  # measured points only
    slope = {m: np.polyfit(np.log(g.tokens[g.tokens >= 256]), np.log(g.peak_bytes[g.tokens >= 256]), 1)[0]
             for m, g in bench.groupby("method")}
    at = bench[bench.tokens == 2304].set_index("method")
    claim3 = (f"Its peak memory grows with exponent {slope['ssync']:.2f} in the tokens per clip, dense alignment's "
              f"with {slope['dense direct']:.2f}; at MOVi-C's 2,304 tokens dense alignment needs "
              f"{at.peak_bytes['dense direct'] / at.peak_bytes['ssync']:.0f}x SSync's memory and "
              f"{at.seconds['dense direct'] / at.seconds['ssync']:.0f}x its time")
    assert claim3 in section("Results at a glance")


def test_glance_movi_mini_carries_the_committed_regime_table():
    """The 3D level's paragraph (decoder FG-ARI at 11 slots, validation / held-out test, mean over seeds) against
    results/movi-mini/summary.csv, and the boundary premise's two accuracies on its baselines."""
    summary = pd.read_csv(ROOT / "results" / "movi-mini" / "summary.csv")
    at11 = summary[summary["slots"] == 11].groupby("objective")
    val, test = at11["decoder/video/fg_ari"].mean() * 100, at11["test/decoder/video/fg_ari"].mean() * 100
    glance = " ".join(section("Results at a glance").split())  # line breaks as spaces
    for objective, name in [("baseline", "the baseline"), ("dense", "dense alignment"), ("ssync", "SSync")]:
        assert f"{val[objective]:.1f} / {test[objective]:.1f} for {name}" in glance, objective
    boundary = at11[["premises/boundary/encoder_merged_acc", "premises/boundary/decoder_merged_acc"]].mean() * 100
    encoder, decoder = boundary.loc["baseline"]
    assert f"right on {encoder:.1f} % of boundary patches, the decoder's on {decoder:.1f} %" in glance
