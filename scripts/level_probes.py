"""Short probes of the CPU recipe on variants of synth-tex: which property of the level stops it learning objects?

The `cpu` recipe learns objects on synth-easy and none on synth-tex (docs/results.md, "The textured levels"). synth-tex
differs in two ways: more, smaller objects (3-8 of radius 0.08-0.15) and pixels that vary inside each object
(shading 0.5, gratings 0.12, noise 6). Each probe changes one of them and trains the recipe briefly; the synth-easy
control shows what a level the recipe learns looks like after the same steps.

Each probe: the profile's recipe (`cpu_tex` by default) on the probe's level, ``--steps`` steps (2,000; warm-up
200) from seed 0, scored by ``evaluate`` on the first ``--val-videos`` validation videos (50). The decay of the
learning rate follows the shorter schedule, so a probe is a screen, not a result: synth-easy's full runs score
0.41-0.42 decoder FG-ARI at step 2,000 of 8,000.

    python scripts/level_probes.py                       # all probes, runs/probes/<name>/ + runs/probes/probes.csv
    python scripts/level_probes.py tex-flat tex-big      # some of them
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pandas as pd

from ssync_lib.config import PROFILES, get_config
from ssync_lib.data import scenes
from ssync_lib.data.synthetic import generate_from_config
from ssync_lib.errors import UserInputError
from ssync_lib.train import train

TEX = scenes.LEVELS["synth-tex"]
# name -> (level parameters, extra overrides): one change to synth-tex each, and two controls
PROBES = {
    "synth-easy": (scenes.LEVELS["synth-easy"], {}),  # control: a level the recipe learns
    "tex-flat": (dataclasses.replace(TEX, shading=0.0, pattern=0.0, noise=0.0), {}),  # synth-tex's objects, flat
    "tex-flat-9slots": (dataclasses.replace(TEX, shading=0.0, pattern=0.0, noise=0.0), {"model.num_slots": 9}),
    "tex-big": (dataclasses.replace(TEX, radius=(0.125, 0.25), num_objects=(3, 5)), {}),  # synth-easy's sizes
    "synth-tex-mild": (scenes.LEVELS["synth-tex-mild"], {}),  # synth-easy's sizes, a third of the variation
}
SCORES = ["decoder/video/fg_ari", "decoder/video/mbo", "attention/video/fg_ari", "attention/video/mbo",
          "decoder/video/objects_lost"]


def run_probe(name: str, out: Path, profile: str, steps: int, val_videos: int) -> dict:
    """Train and score one probe; returns its row (level parameters, overrides and scores)."""
    params, extra = PROBES[name]
    level = f"probe-{name}"
    scenes.LEVELS[level] = params  # a custom level (data/synthetic.py): its parameters go to meta.json
    cfg = get_config(profile, {"data.level": level, "data.root": str(out / "data" / name),
                               "train.max_steps": steps, "train.warmup_steps": min(200, steps // 10),
                               "train.eval_every": 0, "data.max_val_videos": val_videos,
                               "train.run_root": str(out), "train.name": name, **extra})
    generate_from_config(cfg, workers=1, progress=False)
    train(cfg, resume="auto", progress=False)
    metrics = json.loads((out / name / "metrics.json").read_text())["metrics"]
    return {"probe": name, **{k: v for k, v in dataclasses.asdict(params).items() if k != "shapes"},
            "overrides": json.dumps(extra), **{k: metrics[k] for k in SCORES}}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probes", nargs="*", help=f"any of {', '.join(PROBES)} (default: all)")
    parser.add_argument("--out", default="runs/probes")
    parser.add_argument("--profile", default="cpu_tex", choices=sorted(PROFILES))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--val-videos", type=int, default=50)
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.probes) - set(PROBES))
    if unknown:
        parser.error(f"unknown probe(s) {', '.join(unknown)}; choose among {', '.join(PROBES)}")
    for name in ("steps", "val_videos"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be an integer >= 1")
    out = Path(args.out)
    try:
        rows = [run_probe(name, out, args.profile, args.steps, args.val_videos) for name in args.probes or PROBES]
    except UserInputError as err:  # one message and its fix, exit 2 (docs/bad-input.md)
        if args.traceback:
            raise
        parser.exit(2, f"error: {err}\n")
    table = pd.DataFrame(rows)
    table.to_csv(out / "probes.csv", index=False)
    print(table[["probe", *SCORES]].round(3).to_string(index=False))
    return table


if __name__ == "__main__":
    main()
