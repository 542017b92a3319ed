"""The published configurations on a GPU: one prepared check (issue 22), offline, in at most 8 minutes.

    python scripts/gpu_check.py                      # on a GPU machine: results/gpu/gpu_check.{json,md}
    python scripts/gpu_check.py --out $OUT           # somewhere else
    python scripts/gpu_check.py --dry-run            # the same code on the CPU at tiny sizes (tests/test_gpu_check.py)

Stages, each with its own time budget (``--budget STAGE=SECONDS``); a stage that fails or runs out of time is
recorded with its error in the JSON and the next stage runs:

1. ``data``: a MOVi-layout shard set (``{work}/shards/{train,val}/shard-*.tar``) written by the project's synthetic
   generator: 24-frame videos at 128 px (the MOVi release; the model resizes them to the profile's input size),
   ``--steps x batch`` training clips (one epoch covers a run) and ``--val-clips`` validation clips.
2. ``train``: ``ssync_lib.train.train`` on the ``movi_c`` profile (random ViT-S/14 weights, batch 64 of 4-frame
   chunks) for each objective (baseline, dense alignment, SSync) and each variant (``fp32``, ``bf16`` =
   ``train.amp_bf16``, ``+compile`` = ``train.compile``): seconds per step after ``--timing-warmup`` steps (log.csv,
   ``log_every=1``), the data-loader wait per step (the loop's ``training_batches`` wrapped while it runs), peak GPU
   memory, finite losses, first against last reconstruction loss. The objectives' losses are on from step 0
   (``ssync_warmup_frac``, ``dense_from_frac``, ``redundancy_until_frac`` = 0): the steps timed are those of their
   main phase.
3. ``bench_step``, ``bench_labels``, ``bench_alignment``: ``python -m ssync_lib.lab.bench {step,labels,alignment}`` as
   subprocesses on the device; their CSV tables go into the JSON.
4. ``evaluate``: ``ssync_lib.evaluate.evaluate`` of a fresh model over the validation shards, timed.
5. ``profiles``: ``movi_e`` and ``ytvis`` trained for ``--profile-steps`` steps each (shapes, memory); both read the
   MOVi-layout shards (the model's shapes and memory are under test, not the YouTube-VIS reader).

Every size is a flag, and ``--set key=value`` overrides every config (``ssync_lib/config.py``); ``--dry-run``
chooses the CPU, a one-block ViT, tiny frames and a few steps. Big files (shards, runs, bench CSVs) go to ``--work``;
``--out`` gets only the JSON and the Markdown table.

The parts, one job a file, are in ``scripts/gpu/`` (settings, time budgets, stages, report); this file runs them.
"""
from __future__ import annotations

import datetime
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # the working tree

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from gpu.budget import attempt  # noqa: E402
from gpu.report import environment, write_report  # noqa: E402
from gpu.settings import STAGES, build_parser, settings_from_args  # noqa: E402
from gpu.stages import STAGE_FUNCTIONS, is_cuda, release  # noqa: E402

__all__ = ["STAGES", "attempt", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    try:
        s = settings_from_args(args)
    except (ValueError, KeyError) as err:
        parser.error(str(err))
    if is_cuda(s.device) and not torch.cuda.is_available():
        parser.error(f"--device {s.device} but torch.cuda.is_available() is False: on a machine without a GPU "
                     f"run the CPU dry run (--dry-run)")
    started = time.perf_counter()
    report = {"command": " ".join(["python scripts/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "environment": environment(s.device), "settings": asdict(s), "stages": {}}
    try:
        for name, stage in STAGE_FUNCTIONS.items():
            record = report["stages"][name] = {}
            if name not in s.stages:
                record.update(status="skipped", error="not in --stages")
                continue
            tqdm.write(f"== gpu_check: {name} (budget {s.budgets[name]:.0f} s)")
            attempt(record, s.budgets[name], lambda r: stage(s, r))
            release(s.device)
            report["seconds"] = time.perf_counter() - started
            write_report(report, s.out)
    finally:
        report["seconds"] = time.perf_counter() - started
        write_report(report, s.out)
    for name, record in report["stages"].items():
        print(f"{name:16s} {record['status']:8s} {record.get('seconds', 0):7.1f} s  {record.get('error', '')}")
    print(f"wrote {s.out / 'gpu_check.json'} and {s.out / 'gpu_check.md'} in {report['seconds']:.0f} s")
    return 0 if all(r["status"] == "ok" for n, r in report["stages"].items() if n in s.stages) else 1


if __name__ == "__main__":
    raise SystemExit(main())
