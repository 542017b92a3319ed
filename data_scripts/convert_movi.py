"""Convert the TFDS release of MOVi-C/E into webdataset shards (the layout of ssync_lib.data.movi).

Needs tensorflow-datasets (and gcsfs or a local copy of the TFDS files); not installed by default:

    pip install tensorflow-datasets
    python data_scripts/convert_movi.py --name movi_c --data-dir gs://kubric-public/tfds --out data/movi_c

Writes {out}/train/shard-*.tar (video.npy; --train-segmentations adds segmentations.npy) and
{out}/val/shard-*.tar (video.npy + segmentations.npy) from the TFDS "validation" split.
"""
from __future__ import annotations

import argparse

from tqdm import tqdm

from ssync_lib.config import resolve_path
from ssync_lib.data.movi import sample_from_tfds, write_shards

SPLITS = {"train": "train", "validation": "val"}  # TFDS split -> our folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="movi_c", help="movi_c or movi_e")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--data-dir", default="gs://kubric-public/tfds", help="TFDS data_dir")
    parser.add_argument("--out", default=None, help="output folder (default data/<name> in the project)")
    parser.add_argument("--shard-size", type=int, default=32, help="videos per shard")
    parser.add_argument("--train-segmentations", action="store_true", help="also store training masks")
    args = parser.parse_args()
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise SystemExit("convert_movi.py needs tensorflow-datasets: pip install tensorflow-datasets") from None
    out = resolve_path(args.out or f"data/{args.name}")
    builder = tfds.builder(f"{args.name}/{args.resolution}x{args.resolution}:{args.version}", data_dir=args.data_dir)
    for tfds_split, folder in SPLITS.items():
        with_masks = folder == "val" or args.train_segmentations
        examples = tfds.as_numpy(builder.as_dataset(split=tfds_split, shuffle_files=False))
        total = builder.info.splits[tfds_split].num_examples
        samples = (sample_from_tfds(ex, i, with_masks) for i, ex in enumerate(tqdm(examples, total=total, desc=folder)))
        count = write_shards(samples, out / folder, args.shard_size)
        print(f"{folder}: {count} videos -> {out / folder}")


if __name__ == "__main__":
    main()
