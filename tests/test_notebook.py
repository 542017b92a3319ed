"""notebook.py: the notebooks' set-up, one clip through a model, and the failure finder of the gallery."""
import numpy as np
import torch

from ssync_lib.lab.notebook import find_failures, run_on_clip, setup_notebook


def test_setup_notebook_and_run_on_clip_are_deterministic(tmp_path):
    nb = setup_notebook("smoke", ("baseline", "ssync"), data_root=str(tmp_path / "data"), run_root=str(tmp_path),
                        video_index=1)
    assert set(nb.cfgs) == {"baseline", "ssync"} and nb.cfg is nb.cfgs["baseline"]
    assert nb.frames.shape[-1] == 3 and nb.masks.shape == nb.item["masks"].shape and nb.digits == 1
    assert nb.config("ssync", **{"model.num_slots": 7}).model.num_slots == 7
    from ssync_lib.models import create_model
    model = create_model(nb.cfg.model, input_size=nb.cfg.data.input_size)
    a, b = run_on_clip(model, nb.item["video"], seed=3), run_on_clip(model, nb.item["video"], seed=3)
    assert torch.equal(a.masks, b.masks) and a.masks.shape[0] == 1


def _clip():
    """3 frames of 4x4: object 1 top-left, object 2 top-right, object 3 bottom-right, background elsewhere."""
    masks = np.zeros((3, 4, 4), dtype=np.int64)
    masks[:, :2, :2], masks[:, :2, 2:], masks[:, 2:, 2:] = 1, 2, 3
    return masks


def test_find_failures_on_a_hand_built_clip():
    masks = _clip()
    labels = np.zeros((3, 4, 4), dtype=np.int64)  # slot 0 = background ...
    labels[:, :2, :2] = 0  # object 1 lost to the background's slot in every frame
    labels[:, :2, 2:] = 1  # object 2 in slot 1 ...
    labels[:, 2:, 2:] = 1  # ... shared with object 3 in frames 0 and 1
    labels[2, 2:, 2:] = 2  # object 3 moves to slot 2 in frame 2
    found = {(f["kind"], tuple(f["objects"])): f for f in find_failures(masks, labels)}
    assert set(found) == {("lost", (1,)), ("switch", (3,)), ("shared", (2, 3))}
    assert found[("lost", (1,))]["frames"] == [0, 1, 2] and found[("lost", (1,))]["slots"] == [0]
    assert found[("switch", (3,))]["frames"] == [2] and found[("switch", (3,))]["slots"] == [1, 2]
    assert found[("shared", (2, 3))]["frames"] == [0, 1]


def test_find_failures_is_silent_on_a_perfect_map():
    masks = _clip()
    assert find_failures(masks, masks) == []


def test_describe_switch_on_reads_the_logged_values():
    import pandas as pd

    from ssync_lib.lab.notebook import describe_switch_on

    history = pd.DataFrame({"step": [0, 50, 100, 150, 200], "dense_dec": [0.0, 0.0, 1.0, 0.9, 0.8],
                            "other": [0.0] * 5})
    assert describe_switch_on(history, ["dense_dec", "other"], window=1) == (
        "dense_dec: on from step 100; 1.00 just after, 0.80 at the end (-20%); other: never on.")


def test_describe_failures_and_curves():
    import pandas as pd

    from ssync_lib.lab.notebook import describe_curves, describe_failures

    masks = torch.zeros(2, 4, 4, dtype=torch.long)
    masks[:, :2, :2] = 1  # object 1 top left
    labels = torch.zeros(2, 4, 4, dtype=torch.long)  # everything in slot 0: object 1 shares the background's slot
    assert describe_failures(masks, labels, {1: "red"}) == "the red object shares the background's slot (slots [0], frames [0, 1])"
    labels[:, :2, :2] = 3
    assert describe_failures(masks, labels) == "every object keeps a slot of its own in every frame"
    masks, labels = torch.cat([masks, masks[:1]]), torch.cat([labels, labels[:1]])  # 3 frames ...
    labels[2, :2, :2] = 0  # ... the last one in the background's slot: less than half of them
    assert describe_failures(masks, labels, {1: "red"}) == ("the red object is in the background's slot for a while "
                                                            "(slots [0], frames [2])")
    evals = pd.DataFrame({"step": [2000, 2000, 4000, 4000], "objective": ["baseline", "ssync"] * 2,
                          "fg": [0.4, 0.4, 0.5, 0.3]})
    assert describe_curves(evals, "fg", mark_step=2400) == (
        "at step 2,000 (before step 2,400): baseline 40.0, ssync 40.0; at step 4,000: baseline 50.0, ssync 30.0.")


def test_failure_frames_show_what_each_case_is_about():
    from ssync_lib.lab.notebook import failure_frames

    assert failure_frames({"kind": "switch", "moves": [(5, 1, 2), (9, 2, 3)]}, 12) == [3, 4, 5, 6]  # t-1 and t
    assert failure_frames({"kind": "switch", "moves": [(11, 1, 2)]}, 12) == [9, 10, 11]
    assert failure_frames({"kind": "shared", "frames": [2, 3, 4, 5, 6, 7, 8, 9]}, 12, max_frames=3) == [2, 6, 9]
    assert failure_frames({"kind": "lost", "frames": [0]}, 12) == [0, 2, 4, 7, 9, 11]


def test_encoder_comparison_reads_the_clips_at_the_weights_size(tmp_path):
    from ssync_lib.data import build_dataset, denormalize
    from ssync_lib.pretrain.features import LAST_BLOCK, SHIPPED_WEIGHTS
    from ssync_lib.lab.notebook import encoder_comparison
    from ssync_lib.lab.viz import pca_rgb

    nb = setup_notebook("smoke", data_root=str(tmp_path / "data"), run_root=str(tmp_path))  # 32 px data
    seen = encoder_comparison(nb.cfg, "synth-easy", SHIPPED_WEIGHTS, count=2)  # the shipped ViT reads 64 px
    nb.cfg.data.input_size = 64
    data = build_dataset(nb.cfg, "val")
    T = data[0]["video"].shape[0]
    assert seen.ids == [data[0]["id"], data[1]["id"]] and seen.num_frames == [T, T] and seen.shown == [T // 2] * 2
    assert torch.equal(seen.masks[1], data[1]["masks"][T // 2])
    torch.testing.assert_close(seen.frames[0], denormalize(data[0]["video"])[T // 2])
    assert list(seen.views) == ["random: cpu", LAST_BLOCK]
    assert torch.equal(seen.middle(LAST_BLOCK)[1], seen.views[LAST_BLOCK].labels[1][T // 2])
    colours = seen.pca_colours("random: cpu")  # PCA fitted on the shown frames' patches together
    middle = torch.stack([f[T // 2] for f in seen.views["random: cpu"].features])  # 2 16 16 64
    np.testing.assert_array_equal(colours, pca_rgb(middle.flatten(1, 2), (16, 16)))
    assert colours.shape == (2, 16, 16, 3)
