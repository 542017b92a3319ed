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
