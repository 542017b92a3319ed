"""Generate the synthetic data of a profile (skipped when its meta.json already matches).

    python data_scripts/make_synthetic.py --profile cpu                      # data/synth-easy
    python data_scripts/make_synthetic.py --profile cpu --level synth-hard   # data/synth-hard
    python data_scripts/make_synthetic.py --profile smoke data.num_train=32 --root /tmp/x --force
    python data_scripts/make_synthetic.py --profile cpu_movi                 # data/movi-mini (PyBullet, 3D)

The profile's level picks the generator: the 2D scenes (ssync_lib/data/synthetic.py) or movi-mini, the MOVi-style
3D level (ssync_lib/data/movi_mini/: train, val and --num-test test videos; an interrupted run resumes).

Extra arguments are config overrides (`key=value`, see ssync_lib/config.py). Without --root, a level
other than the profile's goes next to the profile's root: data/synth-easy -> data/synth-hard,
data/smoke -> data/smoke-synth-hard.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ssync_lib.config import get_config, resolve_path
from ssync_lib.data import movi_mini
from ssync_lib.data.synthetic import generate_from_config
from ssync_lib.errors import UserInputError
from ssync_lib.run_lock import check_writable


def default_root(root: str, profile_level: str, level: str) -> str:
    """The profile's root, or a sibling folder named after another level."""
    if level == profile_level:
        return root
    path = Path(root)
    return str(path.parent / level) if path.name == profile_level else f"{root}-{level}"


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the data; bad input (a profile, a key, an unwritable or foreign folder) prints one
    message, exit 2 (``--traceback`` raises it)."""
    traceback = "--traceback" in (sys.argv[1:] if argv is None else argv)
    try:
        generate_data(argv)
    except (UserInputError, FileExistsError) as err:  # FileExistsError: a folder of another data set
        if traceback:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def generate_data(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="config profile (smoke, cpu, ...)")
    parser.add_argument("--level", default=None, help="synthetic level (default: the profile's)")
    parser.add_argument("--root", default=None, help="output folder (default: see above)")
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument("--force", action="store_true", help="regenerate even if meta.json matches")
    parser.add_argument("--num-test", type=int, default=250, help="movi-mini: held-out test videos")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    cfg = get_config(args.profile, args.overrides)
    if args.level is not None:
        cfg.data.root = default_root(cfg.data.root, cfg.data.level, args.level)
        cfg.data.level = args.level
    if args.root is not None:
        cfg.data.root = args.root
    root = resolve_path(cfg.data.root)
    check_writable(root / "meta.json", elsewhere="--root PATH")  # before the work
    start = time.perf_counter()
    d = cfg.data
    what = f"{d.level}: {d.num_train} train + {d.num_val} val videos, {d.num_frames} frames of {d.resolution} px"
    if d.level in movi_mini.LEVELS:
        reused = movi_mini.generate(root, d.level, d.synth_seed, d.num_train, d.num_val, args.num_test, d.resolution,
                                    d.num_frames, workers=args.workers, force=args.force)
        what = what.replace(" val videos", f" val + {args.num_test} test videos")
    else:
        reused = generate_from_config(cfg, workers=args.workers, force=args.force)
    if reused:
        print(f"reused {root} ({what}; meta.json matches, use --force to regenerate)")
    else:
        print(f"wrote {root} ({what}) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    status = main()
    if status:  # 0 returns normally (the tests run this file with runpy)
        sys.exit(status)
