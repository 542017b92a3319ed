"""Arguments that several command lines share, declared once: the profile, ``--set KEY=VALUE`` overrides and
``--data-root``. Used by ``python -m ssync_lib`` and ``python -m ssync_lib.lab.bench``."""
from __future__ import annotations

import argparse

from ssync_lib.config import PROFILES


def add_profile(p: argparse.ArgumentParser, default: str = "cpu", what: str = "config profile") -> None:
    p.add_argument("--profile", default=default, choices=sorted(PROFILES), help=f"{what} (default {default})")


def add_overrides(p: argparse.ArgumentParser, example: str = "max_steps=500 model.num_slots=7",
                  what: str = "config overrides") -> None:
    """``--set KEY=VALUE ...`` (repeatable) into ``args.overrides``."""
    p.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help=f"{what}, e.g. --set {example}")


class _DataRoot(argparse.Action):
    """``--data-root PATH``: shorthand for ``--set data.root=PATH`` (kept in the order given among the --set's)."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.overrides = [*namespace.overrides, f"data.root={value}"]


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", action=_DataRoot, default=argparse.SUPPRESS, metavar="PATH",
                   help="the data set's folder (sets data.root), e.g. /data/movi_c")
