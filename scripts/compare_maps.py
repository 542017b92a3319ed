"""The object maps of several trained runs on the same clips, in one figure per clip: ground truth, then each run's
decoder object maps (argmax over slots of the decoder masks) and encoder attention maps.

    python scripts/compare_maps.py --run "random features=runs/experiments/movimini-v1/baseline-s11-seed0" \
        --run "pretrained=runs/experiments/movimini-v1-dino/baseline-s11-seed0" --split val --videos 0,1 \
        --out results/movi-mini-dino/maps

Every run is evaluated on the data its own config names (``data.root``), so the runs must share one level; the clips
are read from the first run's data. Writes ``<out>/<split>_<video id>.png`` and prints each run's step.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from ssync_lib.checkpoint import load_trained  # noqa: E402
from ssync_lib.data import build_dataset, denormalize  # noqa: E402
from ssync_lib.evaluate import predicted_labels  # noqa: E402
from ssync_lib.lab.notebook import run_on_clip  # noqa: E402
from ssync_lib.lab.viz import plot_map_rows, save_figure  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="NAME=RUN",
                   help="a label and a run folder (or checkpoint file); repeat for each run")
    p.add_argument("--split", default="val", choices=["val", "test"])
    p.add_argument("--videos", default="0,1", help="comma-separated indices into the split")
    p.add_argument("--frames", default="0,6,12,18,23", help="comma-separated frame indices to draw")
    p.add_argument("--out", required=True, help="folder of the PNGs")
    args = p.parse_args(argv)

    runs = {}
    for item in args.run:
        name, sep, path = item.partition("=")
        if not sep:
            p.error(f"--run takes NAME=RUN, got {item!r}")
        runs[name] = load_trained(path, ["train.device=cpu"], objective=False)
        print(f"{name}: {runs[name].path} (step {runs[name].step})")
    first = next(iter(runs.values()))
    data = build_dataset(first.cfg, args.split)
    frames_to_show = [int(t) for t in args.frames.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for index in (int(i) for i in args.videos.split(",")):
        clip = data[index]
        rows = {"ground truth": clip["masks"]}
        num_slots = 0
        for name, trained in runs.items():
            output = run_on_clip(trained.model, clip["video"])
            labels = predicted_labels(output, output.grid)  # the labels evaluate scores, on the patch grid
            rows[f"{name}\ndecoder"], rows[f"{name}\nattention"] = labels["decoder"][0], labels["attention"][0]
            num_slots = max(num_slots, output.masks.shape[2])
        ts = [t for t in frames_to_show if t < len(clip["video"])]
        title = f"{args.split} video {clip['id']}\n" + "; ".join(f"{n}: step {r.step}" for n, r in runs.items())
        fig = plot_map_rows(denormalize(clip["video"]), rows, num_slots, frames_to_show=ts, title=title)
        path = out / f"{args.split}_{clip['id']}.png"
        save_figure(fig, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
