"""The paper's three claims, stated from a sweep summary in sentences computed from it (notebook 05).

Input: a sweep summary as ``experiment`` writes it (``summary.csv``: one row per finished run, columns
``objective``, ``slots``, ``seed`` and metric columns such as ``decoder/video/fg_ari`` in [0, 1]). Output:
markdown whose every number is read from that table, so the text cannot disagree with it, whichever way the
figures go. Cells with one seed say "(one seed)" instead of a spread of zero; objectives missing at a slot
count are named.

The claims (method notes §4): 1. SSync decomposes better than the baseline and dense alignment; 2. it is robust
to the slot count where the others degrade (MOVi-C, 7 to 15 slots: ``PAPER_SLOT_ROBUSTNESS``); 3. its cost is
linear in the number of patches (measured by the benchmarks, not by a sweep: ``bench.alignment.cost_claim``).
``headline_claims`` states claims 1 and 2 in one sentence each; ``premise_accuracy`` / ``premise_teaching`` and their
``read_*`` sentences state SSync's premises, measured on the baselines (``ssync_lib.diagnostics``).
"""
from __future__ import annotations

import pandas as pd

from ssync_lib.lab.viz.results import PAPER_SLOT_ROBUSTNESS
from ssync_lib.objectives.objective import OBJECTIVES  # baseline, dense, ssync: the order of every table

METRICS = {"FG-ARI": "fg_ari", "mBO": "mbo"}  # the two metrics each claim is stated with


def cell_stats(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and std (ddof=0) over seeds in %, and the number of seeds, per (objective, slots)."""
    cells = summary.groupby(["objective", "slots"])[column]
    return pd.DataFrame({"mean": cells.mean() * 100, "std": cells.std(ddof=0) * 100, "seeds": cells.size()})


def cell_text(stats: pd.DataFrame, objective: str, slots: int) -> str:
    """``ssync 54.4 ± 0.7``, or ``ssync 57.2 (one seed)``."""
    row = stats.loc[(objective, slots)]
    return f"{objective} {row['mean']:.1f} " + ("(one seed)" if row["seeds"] == 1 else f"± {row['std']:.1f}")


def paper_change(low: int = 7, high: int = 15) -> dict[str, float]:
    """The published FG-ARI change from ``low`` to ``high`` slots on MOVi-C, per objective (points)."""
    fg = PAPER_SLOT_ROBUSTNESS.set_index(["objective", "slots"])["fg_ari"]
    return {o: round(fg[(o, high)] - fg[(o, low)], 1) for o in OBJECTIVES}


def state_claims(summary: pd.DataFrame, maps: tuple[str, ...] = ("decoder", "attention")) -> str:
    """Markdown: per map (``decoder`` masks, slot ``attention``), at every slot count where SSync and another
    objective ran, each one's FG-ARI and mBO and the highest (claim 1); the change of each from the lowest
    count of the paper's range (7, when the summary reaches beyond it) to the highest (claim 2)."""
    counts = sorted(int(k) for k in summary["slots"].unique())
    high = counts[-1]
    low = 7 if 7 in counts and high > 7 else counts[0]  # the paper's range starts at 7 slots
    claim1, claim2 = [], []
    for map_name in maps:
        stats = {metric: cell_stats(summary, f"{map_name}/video/{key}") for metric, key in METRICS.items()}
        have = set(stats["FG-ARI"].index)
        ahead: dict[str, list[int]] = {metric: [] for metric in METRICS}
        lines = []
        for k in counts:
            ran = [o for o in OBJECTIVES if (o, k) in have]
            if "ssync" not in ran or len(ran) < 2:
                continue
            parts = []
            for metric, table in stats.items():
                best = max(ran, key=lambda o: table.loc[(o, k), "mean"])
                if best == "ssync":
                    ahead[metric].append(k)
                parts.append(f"{metric}: " + ", ".join(cell_text(table, o, k) for o in ran)
                             + f" (highest: **{best}**)")
            missing = [o for o in OBJECTIVES if o not in ran]
            lines.append(f"  - {k} slots" + (f" ({', '.join(missing)} not run)" if missing else "") + ": "
                         + "; ".join(parts))
        where = "; ".join(f"on {metric} " + (f"at {', '.join(map(str, ks))} slots" if ks else "at no slot count")
                          for metric, ks in ahead.items())
        claim1.append(f"- {map_name} maps: SSync is ahead {where}.\n" + "\n".join(lines))

        if low == high:  # one slot count: no change to measure
            claim2.append(f"- {map_name} maps: not measurable, the sweep ran one slot count ({high}).")
            continue
        both = [o for o in OBJECTIVES if (o, low) in have and (o, high) in have]
        change = {o: {m: t.loc[(o, high), "mean"] - t.loc[(o, low), "mean"] for m, t in stats.items()} for o in both}
        seeds = ", ".join(f"{o} {stats['FG-ARI'].loc[(o, high), 'seeds']}" for o in both)
        trend = "; ".join(f"{o} FG-ARI {d['FG-ARI']:+.1f}, mBO {d['mBO']:+.1f}" for o, d in change.items())
        if "ssync" in change and len(change) > 1:
            best = all(change["ssync"]["FG-ARI"] > d["FG-ARI"] for o, d in change.items() if o != "ssync")
            at_high = stats["FG-ARI"].xs(high, level="slots")  # mean, std, seeds per objective
            rival = max((o for o in both if o != "ssync"), key=lambda o: at_high.loc[o, "mean"])
            gap = at_high.loc["ssync", "mean"] - at_high.loc[rival, "mean"]
            spread = max(at_high.loc["ssync", "std"], at_high.loc[rival, "std"])  # 0 with one seed each
            verdict = (f" SSync's FG-ARI change is {'the most' if best else 'not the most'} favourable; at {high} "
                       f"slots its FG-ARI is {'above' if gap > 0 else 'not above'} {rival}'s "
                       f"({at_high.loc['ssync', 'mean']:.1f} against {at_high.loc[rival, 'mean']:.1f}"
                       + (", a gap within the seeds' spread" if abs(gap) < spread else "") + ").")
        else:
            verdict = " SSync and another objective were not both run at these counts."
        claim2.append(f"- {map_name} maps (seeds at {high} slots: {seeds}): {trend}.{verdict}")
    paper = ", ".join(f"{o} {d:+.1f}" for o, d in paper_change().items())
    return (f"**1. SSync decomposes better than the others** (video level, %, mean ± sd over seeds):\n\n"
            + "\n".join(claim1)
            + "\n\n**2. SSync is robust to the slot count where the others degrade**: "
            + (f"change from {low} to {high} slots, in points" if low != high else "one slot count")
            + ":\n\n" + "\n".join(claim2)
            + f"\n\n(The paper, decoder FG-ARI from 7 to 15 slots on MOVi-C: {paper}.)\n\n"
            "**3. SSync costs linearly in the number of patches**: measured by the benchmarks, not by a sweep "
            "(`cost_claim` on results/bench/alignment.csv; docs/benchmarks.md; notebook 03).")


def claims_document(summary: pd.DataFrame, sweep: str, test_prefix: str = "test/") -> str:
    """Markdown of a results folder's ``claims.md`` (``experiment --results``): ``state_claims`` on the validation
    columns, then again on the held-out test split's (the columns named ``test_prefix`` + metric, e.g.
    ``test/decoder/video/fg_ari``) for the runs that have them."""
    parts = [f"# The paper's claims restated from the sweep `{sweep}`\n\nEvery number below is computed from this "
             f"folder's `summary.csv` by `ssync_lib.lab.claims.state_claims` (written by `experiment --results`).",
             "## Validation\n\n" + state_claims(summary)]
    renamed = {c: c[len(test_prefix):] for c in summary.columns if c.startswith(test_prefix)}
    if renamed:
        test = summary.drop(columns=[c for c in renamed.values() if c in summary.columns]).rename(columns=renamed)
        test = test.dropna(subset=[f"decoder/video/{key}" for key in METRICS.values()])
        if len(test):
            parts.append(f"## Held-out test split ({len(test)} of {len(summary)} runs)\n\n" + state_claims(test))
    return "\n\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- one sentence per claim (notebook 05)

WHO = {"baseline": "the baseline's", "dense": "dense alignment's", "ssync": "SSync's"}


def headline_claims(summary: pd.DataFrame, low: int = 7) -> list[str]:
    """Claims 1 and 2 in one markdown sentence each (decoder masks, video level, means over seeds, %); the per-map,
    per-count detail is ``state_claims``. Claim 1: the slot counts where SSync has the highest FG-ARI and mBO,
    quoted where its mBO lead is largest. Claim 2: each objective's FG-ARI change from ``low`` slots (7, the
    paper's range, when the sweep reaches beyond it; else its lowest count) to its highest count, beside the paper's."""
    stats = {key: cell_stats(summary, f"decoder/video/{key}") for key in METRICS.values()}
    fg, mbo = (stats[key]["mean"].unstack("objective") for key in ("fg_ari", "mbo"))
    counts = [k for k in fg.index if "ssync" in fg.columns and pd.notna(fg.loc[k, "ssync"]) and fg.loc[k].count() > 1]
    if not counts:
        return ["SSync and another objective were not both run at any slot count of this sweep."]
    others = [o for o in OBJECTIVES if o != "ssync" and o in fg.columns]
    ahead = {name: [k for k in counts if t.loc[k, "ssync"] > t.loc[k, others].max()]
             for name, t in (("FG-ARI", fg), ("mBO", mbo))}
    verdict = ("yes" if all(len(ks) == len(counts) for ks in ahead.values())
               else "in part" if any(ahead.values()) else "no")

    def where(ks: list[int]) -> str:
        return f"at {', '.join(map(str, ks))} slots" if ks else "at no slot count"

    k = max(counts, key=lambda k: mbo.loc[k, "ssync"] - mbo.loc[k, others].max())  # SSync's best count on mBO

    def quote(table: pd.DataFrame, metric: str) -> str:
        rivals = " and ".join(f"{WHO[o]} {table.loc[k, o]:.1f}" for o in others if pd.notna(table.loc[k, o]))
        return f"{metric} {table.loc[k, 'ssync']:.1f} against {rivals}"

    claim1 = (f"**1. SSync decomposes better: {verdict}.** Its decoder FG-ARI is the highest {where(ahead['FG-ARI'])}, "
              f"its mBO {where(ahead['mBO'])} (at {k} slots {quote(mbo, 'mBO')}; {quote(fg, 'FG-ARI')}).")
    low = low if low in counts and counts[-1] > low else counts[0]
    high = counts[-1]
    ran = [o for o in OBJECTIVES if o in fg.columns and pd.notna(fg.loc[low, o]) and pd.notna(fg.loc[high, o])]
    change = {o: fg.loc[high, o] - fg.loc[low, o] for o in ran}
    if low == high or len(ran) < 2 or "ssync" not in ran:
        return [claim1, f"**2. SSync is robust to the slot count:** not measurable here (no two objectives at two "
                        f"slot counts)."]
    spread = stats["fg_ari"]["std"].unstack("objective").loc[high, ran].max()
    paper = paper_change(low, high) if {low, high} <= set(PAPER_SLOT_ROBUSTNESS["slots"]) else {}
    best = max(change, key=change.get) == "ssync"
    claim2 = (f"**2. SSync is robust to the slot count: {'yes, in direction' if best else 'no'}.** From {low} to "
              f"{high} slots its decoder FG-ARI changes by {change['ssync']:+.1f} points, "
              + ", ".join(f"{WHO[o]} by {change[o]:+.1f}" for o in ran if o != "ssync")
              + (f" (seeds' spread at {high} slots: up to {spread:.1f})" if spread > 0 else "")
              + ("; the paper, on MOVi-C: " + ", ".join(f"{WHO[o][:-2]} {d:+.1f}" for o, d in paper.items())
                 if paper else "") + ".")
    return [claim1, claim2]


# ----------------------------------------------------------------------------- SSync's premises (notebook 05)

PATCHES = {"interior": "inside objects", "boundary": "at object boundaries"}
TEACHER = {"interior": "decoder", "boundary": "encoder"}  # §4: the decoder teaches inside, the encoder at edges


def premise_accuracy(rows: pd.DataFrame) -> pd.DataFrame:
    """Long table of the merged labels' accuracy (%) against each patch's object, one row per run of ``rows``
    (baseline runs that carry the premise diagnostics: ``experiment.premise_rows``), patch set and map: columns
    slots, seed, sweep, patches (``interior`` / ``boundary``: ground-truth patches inside objects / on their
    edges), labels (``encoder`` / ``decoder``), accuracy."""
    return pd.concat([rows[["slots", "seed", "sweep"]].assign(
        patches=where, labels=maps, accuracy=100 * rows[f"premises/{where}/{maps}_merged_acc"])
        for where in PATCHES for maps in ("encoder", "decoder")], ignore_index=True)


def premise_teaching(rows: pd.DataFrame) -> pd.DataFrame:
    """Long table of who is right where SSync's teacher and student disagree, on its own interior set (the decoder
    teaches) and boundary set (the encoder teaches), one row per run, set and side: columns slots, seed, sweep,
    patches, who (``teacher``: the teacher right and the student wrong; ``student``: the reverse), pct (% of the
    set's patches)."""
    return pd.concat([rows[["slots", "seed", "sweep"]].assign(
        patches=where, who=who, pct=rows[f"teaching/{where}/{who}_right_pct"])
        for where in PATCHES for who in ("teacher", "student")], ignore_index=True)


def _span(values: pd.Series, unit: str) -> str:
    low, high = values.min(), values.max()
    return f"{low:.1f}{unit}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}{unit}"


def read_premise_accuracy(rows: pd.DataFrame) -> list[str]:
    """Three sentences on ``premise_accuracy`` (means over seeds): at how many slot counts the decoder's labels are
    the more accurate inside objects, the encoder's at boundaries (SSync's premise, §4), and the verdict."""
    means = premise_accuracy(rows).groupby(["patches", "slots", "labels"])["accuracy"].mean().unstack("labels")
    inside = means.loc["interior", "decoder"] - means.loc["interior", "encoder"]  # points, per slot count
    edge = means.loc["boundary", "encoder"] - means.loc["boundary", "decoder"]
    n = len(inside)
    k_in, k_edge = inside.idxmax(), edge.idxmax()
    first = (f"Inside objects the decoder's labels are the more accurate at {(inside > 0).sum()} of {n} slot counts"
             + (f", by {_span(inside[inside > 0], ' points')}" if (inside > 0).any() else "")
             + f" (at {k_in} slots {means.loc[('interior', k_in), 'decoder']:.1f}% against the encoder's "
             f"{means.loc[('interior', k_in), 'encoder']:.1f}%).")
    second = (f"At boundaries the encoder's labels are the more accurate at {(edge > 0).sum()} of {n} slot counts, "
              f"the difference ranging from {edge.min():+.1f} to {edge.max():+.1f} points (at {k_edge} slots "
              f"{means.loc[('boundary', k_edge), 'encoder']:.1f}% against the decoder's "
              f"{means.loc[('boundary', k_edge), 'decoder']:.1f}%).")
    share = {"inside objects": (inside > 0).mean(), "at boundaries": (edge > 0).mean()}  # of the slot counts
    holds = [w for w, s in share.items() if s == 1]
    if len(holds) == 2:
        third = ("So both halves of SSync's premise hold at every slot count: each map teaches where it is the "
                 "better one.")
    elif not holds:
        third = "So neither half of SSync's premise holds at every slot count here."
    else:
        other = next(w for w in share if w not in holds)
        third = (f"So the premise holds {holds[0]} at every slot count and "
                 + ("fails" if share[other] <= 0.5 else "holds only in part") + f" {other}.")
    return [first, second, third]


def read_premise_teaching(rows: pd.DataFrame) -> list[str]:
    """Three sentences on ``premise_teaching`` (means over seeds): on SSync's interior and boundary sets, at how
    many slot counts the teacher is right more often than the student where the two disagree, and the verdict."""
    means = premise_teaching(rows).groupby(["patches", "slots", "who"])["pct"].mean().unstack("who")
    sentences, good = [], {}
    for where in PATCHES:
        m = means.loc[where]
        ahead = m["teacher"] > m["student"]
        good[where] = ahead.all()
        ratio = (m["teacher"] / m["student"]).where(ahead, m["student"] / m["teacher"])
        k = m.index.max()
        sentences.append(
            f"On SSync's {where} set, where the {TEACHER[where]} teaches and the two disagree, the teacher is right "
            f"(and the student wrong) more often than the reverse at {ahead.sum()} of {len(m)} slot counts"
            + (f" ({_span(ratio[ahead], 'x')} as often)" if ahead.any() else "")
            + (f" and the student more often at {(~ahead).sum()} ({_span(ratio[~ahead], 'x')})" if (~ahead).any()
               else "") + f"; at {k} slots {m.loc[k, 'teacher']:.1f}% of the set's patches against "
            f"{m.loc[k, 'student']:.1f}%.")
    sentences.append("So on both sets the teaching mostly corrects the student." if all(good.values()) else
                     "So on both sets, where the two disagree, the teacher is more often the wrong one."
                     if not any(good.values()) else
                     f"So on the {next(w for w in good if good[w])} set the teaching mostly corrects the student, "
                     f"while on the {next(w for w in good if not good[w])} set, where the two disagree, the teacher "
                     "is more often the wrong one.")
    return sentences
