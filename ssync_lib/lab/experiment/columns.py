"""The sweep summary's columns: the metric keys of a run's evaluation (``SUMMARY_KEYS``), the table's columns
(``COLUMNS``), the held-out test split's (prefixed ``test/``), the named sets of ``--columns`` and the plain words a
reader sees (``plain_name``)."""
from __future__ import annotations

from ssync_lib.diagnostics import PREMISE_KEYS

METRIC_KEYS = [f"{maps}/video/{m}" for maps in ("decoder", "attention") for m in ("fg_ari", "mbo", "miou")]
LABEL_KEYS = [f"pseudo_labels/{name}" for name in ("merged_slots", "boundary_pct", "interior_pct", "agreement_pct")]
SHARING_KEYS = [f"{maps}/video/objects_{what}" for maps in ("decoder", "attention") for what in ("lost", "shared")]
# SSync's premises against ground truth (diagnostics.py): FG-ARI and accuracy (fractions, shown in %), set shares
# and teaching precision (already in %), merged pairs per clip
PREMISE_FRACTIONS = [k for k in PREMISE_KEYS if k.endswith(("_fg_ari", "_acc"))]
SUMMARY_KEYS = METRIC_KEYS + LABEL_KEYS + SHARING_KEYS + PREMISE_KEYS
COLUMNS = METRIC_KEYS + ["sec_per_step"] + SHARING_KEYS + LABEL_KEYS + PREMISE_KEYS  # of the table (--columns)
TEST = "test/"  # prefix of the held-out test split's columns (--test-split): test/decoder/video/fg_ari, ...
TEST_KEYS = [TEST + k for k in SUMMARY_KEYS]
TEST_COLUMNS = [TEST + c for c in COLUMNS if c != "sec_per_step"]
# Named column sets of markdown_table / --columns: the README's tables.
COLUMN_SETS = {
    "metrics": ["decoder/video/fg_ari", "decoder/video/mbo", "attention/video/fg_ari", "attention/video/mbo",
                "decoder/video/objects_lost", "decoder/video/objects_shared"],
    # who is right where (accuracy against each patch's object), what merged, who is right where they disagree
    "premises": [f"premises/{where}/{maps}_acc" for where in ("interior", "boundary")
                 for maps in ("encoder_merged", "decoder_merged")]
                + ["merge_audit/pairs", "merge_audit/object_split", "merge_audit/object_background",
                   "merge_audit/two_objects"]
                + [f"teaching/{where}/{who}_right_pct" for where in ("boundary", "interior")
                   for who in ("teacher", "student")],
}
COLUMN_SETS.update({f"{name}-test": [TEST + c for c in columns] for name, columns in list(COLUMN_SETS.items())})


# Plain words for the summary's columns in tables a reader sees (markdown_table(..., plain=True)); the raw key
# otherwise. Metrics and shares in %.
PLAIN_NAMES = {
    "decoder/video/fg_ari": "decoder FG-ARI", "decoder/video/mbo": "decoder mBO", "decoder/video/miou": "decoder mIoU",
    "attention/video/fg_ari": "attention FG-ARI", "attention/video/mbo": "attention mBO",
    "attention/video/miou": "attention mIoU",
    "decoder/video/objects_lost": "objects lost to the background slot",
    "decoder/video/objects_shared": "objects sharing a slot",
    "pseudo_labels/agreement_pct": "maps agree", "pseudo_labels/merged_slots": "merged slots per clip",
    "merge_audit/pairs": "merged pairs per window", "merge_audit/object_split": "merges within one object",
    "merge_audit/object_background": "merges of an object with a background slot",
    "merge_audit/two_objects": "merges of two objects",
    **{f"premises/{where}/{maps}_merged_{score}": f"{where}: {maps} {name}" for where in ("interior", "boundary")
       for maps in ("encoder", "decoder") for score, name in (("acc", "accuracy"), ("fg_ari", "FG-ARI"))},
    **{f"teaching/{where}/{who}_right_pct": f"{where}: {who} right" for where in ("interior", "boundary")
       for who in ("teacher", "student")},
}


def plain_name(column: str) -> str:
    """A summary column in words (``PLAIN_NAMES``, ``(test)`` after a test split's), else the short form
    markdown_table always used."""
    if column.startswith(TEST):
        return f"{plain_name(column.removeprefix(TEST))} (test)"
    return PLAIN_NAMES.get(column, column.replace("/video/", " ").replace("pseudo_labels/", ""))
