"""The arguments of ``python -m ssync_lib experiment``: each checked, with its name, before anything trains
(``sweep_from_args``), and the command line recorded in the provenance."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable

from ssync_lib.config import get_config
from ssync_lib.config_checks import validate
from ssync_lib.errors import ConfigError
from ssync_lib.lab.experiment.columns import COLUMN_SETS, COLUMNS, TEST_COLUMNS
from ssync_lib.lab.experiment.sweep import BRANCHABLE, Sweep
from ssync_lib.objectives.objective import OBJECTIVES


def parse_list(text: str, kind=str, name: str = "list", allowed=None, minimum: int | None = None) -> list:
    """Comma-separated values of one command-line argument, each checked; errors name the argument
    (``--seeds: 'x' is not an integer``)."""
    values = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            value = kind(item)
        except ValueError:
            raise ConfigError(f"{name}: '{item}' is not {'an integer' if kind is int else 'a ' + kind.__name__}",
                              fix=f"give {name} as comma-separated values, e.g. {name} 0,1,2") from None
        if allowed is not None and value not in allowed:
            close = difflib.get_close_matches(item, allowed, n=3, cutoff=0.5)
            few = len(allowed) <= 8
            raise ConfigError(f"{name}: '{item}' is not one of {', '.join(allowed) if few else 'its names'}"
                              + (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""),
                              fix=f"choose among {list(allowed)}" if few else
                              f"{name} takes names of summary.csv's columns, e.g. {','.join(allowed[:2])}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name}: {value} is below {minimum}", fix=f"give values >= {minimum}")
        values.append(value)
    if len(set(values)) != len(values):
        raise ConfigError(f"{name}: '{text}' repeats a value", fix="give each value once")
    return values


def sweep_from_args(args) -> Sweep:
    """The sweep of ``python -m ssync_lib experiment``, every argument checked (with its name) before anything
    trains, and every run's config validated."""
    objectives = parse_list(args.objectives, name="--objectives", allowed=OBJECTIVES)
    if not objectives:
        raise ConfigError("--objectives: no objective given", fix=f"e.g. --objectives {','.join(OBJECTIVES)}")
    seeds = parse_list(args.seeds, int, name="--seeds", minimum=0)
    if not seeds:
        raise ConfigError("--seeds: no seed given", fix="e.g. --seeds 0,1,2")
    slots = parse_list(args.slots, int, name="--slots", minimum=1)
    parse_list(args.columns, name="--columns", allowed=COLUMNS + TEST_COLUMNS + list(COLUMN_SETS))
    name = args.name or args.profile
    if Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"--name: '{name}' is not a plain folder name", fix="give a name without '/' (e.g. easy)")
    sweep = Sweep(profile=args.profile, objectives=objectives, seeds=seeds,
                  slots=slots or [get_config(args.profile, args.overrides).model.num_slots], name=name,
                  overrides=list(args.overrides), branch=parse_list(args.branch, name="--branch", allowed=BRANCHABLE))
    for objective in objectives:
        for count in sweep.slots:
            validate(sweep.config(objective, seeds[0], count))
    return sweep


def command_line(argv: Iterable[str]) -> str:
    return "python -m ssync_lib " + " ".join(argv)
