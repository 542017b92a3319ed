"""claims.state_claims: every number of its sentences read back from a hand-built summary."""
import pandas as pd

from ssync_lib.lab.claims import paper_change, state_claims


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
