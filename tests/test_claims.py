"""claims: every number of its sentences read back from hand-built summaries (state_claims, headline_claims, the
premise readings)."""
import pandas as pd
import pytest

from ssync_lib.lab.claims import (claims_document, headline_claims, paper_change, premise_accuracy, premise_teaching, read_premise_accuracy,
                                  read_premise_teaching, state_claims)


def summary() -> pd.DataFrame:
    """7 and 15 slots; dense only at 7 (one seed), the baseline with one seed at 15. Decoder: SSync lowest FG-ARI
    at 7, highest at 15 and highest mBO everywhere; attention: the baseline gains more than SSync."""
    rows = [  # objective, slots, seed, decoder fg_ari, decoder mbo, attention fg_ari, attention mbo
        ("baseline", 7, 0, 0.60, 0.30, 0.60, 0.30), ("baseline", 7, 1, 0.62, 0.30, 0.60, 0.30),
        ("baseline", 15, 0, 0.50, 0.30, 0.70, 0.30),
        ("dense", 7, 0, 0.70, 0.20, 0.65, 0.20),
        ("ssync", 7, 0, 0.50, 0.40, 0.60, 0.40), ("ssync", 7, 1, 0.54, 0.40, 0.60, 0.40),
        ("ssync", 15, 0, 0.58, 0.40, 0.62, 0.40), ("ssync", 15, 1, 0.60, 0.40, 0.62, 0.40),
    ]
    return pd.DataFrame(rows, columns=["objective", "slots", "seed", "decoder/video/fg_ari", "decoder/video/mbo",
                                       "attention/video/fg_ari", "attention/video/mbo"])


def test_claim_one_names_the_highest_objective_per_count_with_seed_spreads():
    text = state_claims(summary())
    assert ("7 slots: FG-ARI: baseline 61.0 ± 1.0, dense 70.0 (one seed), ssync 52.0 ± 2.0 (highest: **dense**); "
            "mBO: baseline 30.0 ± 0.0, dense 20.0 (one seed), ssync 40.0 ± 0.0 (highest: **ssync**)") in text
    assert ("15 slots (dense not run): FG-ARI: baseline 50.0 (one seed), ssync 59.0 ± 1.0 (highest: **ssync**)"
            in text)
    assert "decoder maps: SSync is ahead on FG-ARI at 15 slots; on mBO at 7, 15 slots." in text
    assert "attention maps: SSync is ahead on FG-ARI at no slot count; on mBO at 7, 15 slots." in text


def test_claim_two_measures_the_change_over_the_paper_range_for_objectives_run_at_both_counts():
    text = state_claims(summary())
    assert "change from 7 to 15 slots" in text
    assert ("decoder maps (seeds at 15 slots: baseline 1, ssync 2): baseline FG-ARI -11.0, mBO +0.0; "
            "ssync FG-ARI +7.0, mBO +0.0. SSync's FG-ARI change is the most favourable; at 15 slots its FG-ARI is "
            "above baseline's (59.0 against 50.0).") in text
    assert "attention maps (seeds at 15 slots: baseline 1, ssync 2): baseline FG-ARI +10.0" in text
    assert ("ssync FG-ARI +2.0, mBO +0.0. SSync's FG-ARI change is not the most favourable; at 15 slots its "
            "FG-ARI is not above baseline's (62.0 against 70.0).") in text
    assert "dense FG-ARI" not in text  # not run at 15 slots


def test_range_starts_at_seven_only_when_the_sweep_reaches_beyond_it():
    small = summary().assign(slots=lambda d: d["slots"].map({7: 4, 15: 5}))
    assert "change from 4 to 5 slots" in state_claims(small, maps=("decoder",))
    assert "attention maps" not in state_claims(small, maps=("decoder",))


def test_paper_change_is_the_published_seven_to_fifteen_difference():
    assert paper_change() == {"baseline": -13.1, "dense": -3.7, "ssync": 1.9}
    assert "baseline -13.1, dense -3.7, ssync +1.9" in state_claims(summary())


def test_a_gap_smaller_than_the_seed_spread_is_called_so():
    close = summary()
    close.loc[(close.objective == "baseline") & (close.slots == 15), "decoder/video/fg_ari"] = 0.585
    extra = close[(close.objective == "baseline") & (close.slots == 15)].assign(seed=1, **{"decoder/video/fg_ari": 0.615})
    text = state_claims(pd.concat([close, extra]), maps=("decoder",))  # baseline 60.0 ± 1.5, ssync 59.0 ± 1.0
    assert "its FG-ARI is not above baseline's (59.0 against 60.0, a gap within the seeds' spread)." in text
    assert "seeds' spread" not in state_claims(summary())  # 59.0 ± 1.0 against one baseline seed at 50.0


def test_headline_claims_one_sentence_each_with_the_summary_numbers():
    claim1, claim2 = headline_claims(summary())
    # SSync's largest mBO lead is at 7 slots (40 against 30 and 20); FG-ARI highest only at 15 (59 against 50)
    assert claim1 == ("**1. SSync decomposes better: in part.** Its decoder FG-ARI is the highest at 15 slots, its mBO "
                      "at 7, 15 slots (at 7 slots mBO 40.0 against the baseline's 30.0 and dense alignment's 20.0; "
                      "FG-ARI 52.0 against the baseline's 61.0 and dense alignment's 70.0).")
    assert claim2.startswith("**2. SSync is robust to the slot count: yes, in direction.** From 7 to 15 slots its "
                             "decoder FG-ARI changes by +7.0 points, the baseline's by -11.0 (seeds' spread at 15 "
                             "slots: up to 1.0); the paper, on MOVi-C: the baseline -13.1")
    assert "dense alignment's by" not in claim2  # dense was not run at 15 slots


def test_headline_claims_say_no_when_ssync_never_leads():
    rows = summary()
    rows.loc[rows.objective == "ssync", ["decoder/video/fg_ari", "decoder/video/mbo"]] = 0.1
    rows.loc[(rows.objective == "ssync") & (rows.slots == 15), "decoder/video/fg_ari"] = 0.05  # -5.0 against -11.0
    claim1, claim2 = headline_claims(rows)
    assert claim1.startswith("**1. SSync decomposes better: no.** Its decoder FG-ARI is the highest at no slot count, "
                             "its mBO at no slot count")
    assert claim2.startswith("**2. SSync is robust to the slot count: yes, in direction.** From 7 to 15 slots its "
                             "decoder FG-ARI changes by -5.0 points, the baseline's by -11.0")
    rows.loc[(rows.objective == "ssync") & (rows.slots == 15), "decoder/video/fg_ari"] = 0.0  # -10.0 ... still ahead
    rows.loc[(rows.objective == "baseline") & (rows.slots == 15), "decoder/video/fg_ari"] = 0.61  # +0.0
    assert headline_claims(rows)[1].startswith("**2. SSync is robust to the slot count: no.** From 7 to 15 slots its "
                                               "decoder FG-ARI changes by -10.0 points, the baseline's by +0.0")
    assert headline_claims(rows[rows.objective == "baseline"]) == [
        "SSync and another objective were not both run at any slot count of this sweep."]


def premise_summary() -> pd.DataFrame:
    """Baseline rows at 4 and 8 slots (two seeds at 8): the decoder ahead inside objects at both counts, the
    encoder ahead at boundaries at 8 only; on SSync's interior set the teacher right more often at both counts,
    on its boundary set the student at both."""
    cols = ["premises/interior/encoder_merged_acc", "premises/interior/decoder_merged_acc",
            "premises/boundary/encoder_merged_acc", "premises/boundary/decoder_merged_acc",
            "teaching/interior/teacher_right_pct", "teaching/interior/student_right_pct",
            "teaching/boundary/teacher_right_pct", "teaching/boundary/student_right_pct"]
    rows = [(4, 0, 0.60, 0.80, 0.50, 0.55, 30.0, 3.0, 10.0, 30.0),
            (8, 0, 0.50, 0.60, 0.52, 0.48, 20.0, 4.0, 10.0, 20.0),
            (8, 1, 0.50, 0.70, 0.54, 0.50, 10.0, 2.0, 12.0, 20.0)]
    frame = pd.DataFrame(rows, columns=["slots", "seed", *cols])
    return frame.assign(objective="baseline", sweep="test")


def test_premise_tables_are_long_and_in_percent():
    accuracy = premise_accuracy(premise_summary())
    assert len(accuracy) == 3 * 4 and set(accuracy.labels) == {"encoder", "decoder"}
    row = accuracy[(accuracy.slots == 4) & (accuracy.patches == "interior") & (accuracy.labels == "decoder")]
    assert row.accuracy.item() == pytest.approx(80.0)
    teaching = premise_teaching(premise_summary())
    assert len(teaching) == 3 * 4 and set(teaching.who) == {"teacher", "student"}


def test_premise_readings_count_the_slot_counts_and_quote_the_means():
    first, second, third = read_premise_accuracy(premise_summary())
    # inside: 4 slots +20.0, 8 slots mean 65.0 - 50.0 = +15.0; boundary: 4 slots -5.0, 8 slots 53.0 - 49.0 = +4.0
    assert first == ("Inside objects the decoder's labels are the more accurate at 2 of 2 slot counts, by 15.0-20.0 "
                     "points (at 4 slots 80.0% against the encoder's 60.0%).")
    assert second == ("At boundaries the encoder's labels are the more accurate at 1 of 2 slot counts, the difference "
                      "ranging from -5.0 to +4.0 points (at 8 slots 53.0% against the decoder's 49.0%).")
    assert third == "So the premise holds inside objects at every slot count and fails at boundaries."
    interior, boundary, verdict = read_premise_teaching(premise_summary())
    assert "interior set, where the decoder teaches" in interior and "at 2 of 2 slot counts (5.0-10.0x as often)" in interior
    assert "at 8 slots 15.0% of the set's patches against 3.0%" in interior
    assert "at 0 of 2 slot counts and the student more often at 2 (1.8-3.0x)" in boundary
    assert verdict == ("So on the interior set the teaching mostly corrects the student, while on the boundary set, "
                       "where the two disagree, the teacher is more often the wrong one.")


def test_claims_document_states_the_claims_on_validation_and_on_the_test_split_columns():
    val = summary()
    test = val.rename(columns=lambda c: f"test/{c}" if "/video/" in c else c)
    test.loc[:, "test/decoder/video/fg_ari"] = test["test/decoder/video/fg_ari"] - 0.1  # the test split scores lower
    both = pd.concat([val, test.filter(like="test/")], axis=1)
    both.loc[both.objective == "dense", [c for c in both.columns if c.startswith("test/")]] = float("nan")
    text = claims_document(both, "x")
    head, validation, held_out = text.split("## ")
    assert "sweep `x`" in head
    assert validation.startswith("Validation") and state_claims(val) in validation
    assert held_out.startswith("Held-out test split (7 of 8 runs)")  # dense was not scored on it
    assert "7 slots (dense not run): FG-ARI: baseline 51.0 ± 1.0, ssync 42.0 ± 2.0" in held_out
    assert "test split" not in claims_document(val, "x")  # no test columns: validation only


def test_claim_two_is_not_measured_on_a_sweep_of_one_slot_count():
    one = summary()[lambda d: d.slots == 7]
    text = state_claims(one)
    assert "**2. SSync is robust to the slot count where the others degrade**: one slot count:" in text
    assert "- decoder maps: not measurable, the sweep ran one slot count (7)." in text
    assert "change from" not in text and "+0.0" not in text
