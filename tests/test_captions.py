"""lab/captions/: the notebooks' sentences (01's encoder figures, 02's, 04's merge), checked against small
hand-made clips whose answers are known."""
import numpy as np
import pandas as pd
import pytest
import torch

from ssync_lib.config import get_config
from ssync_lib.lab import captions
from ssync_lib.lab.notebook import find_failures


def _clip(T: int = 4):
    """T frames of 4x4: object 1 top-left 2x2, object 2 top-right 2x2, background elsewhere (8 pixels)."""
    masks = torch.zeros(T, 4, 4, dtype=torch.long)
    masks[:, :2, :2], masks[:, :2, 2:] = 1, 2
    return masks


def test_describe_encoder_reads_the_config():
    cfg = get_config("cpu")
    text = captions.describe_encoder(cfg, (16, 16), 64)
    assert "**random**" in text and "`patch_embed`" in text and "patch size to 4 px" in text
    assert "a 64 px frame becomes the grid (16, 16) of 256 patches, each a D=64 feature vector" in text
    cfg.model.weights, cfg.model.feature_layer = "dinov2", "blocks.11"
    assert "The weights are the published `dinov2` ones, the features read at `blocks.11`." in (
        captions.describe_encoder(cfg, (16, 16), 64))


def test_describe_object_tracks_names_slots_changes_and_the_background():
    masks = _clip()
    labels = torch.zeros(4, 4, 4, dtype=torch.long)  # background slot 0; object 1 in slot 0 too (lost)
    labels[:, :2, 2:] = 1  # object 2 in slot 1 ...
    labels[2:, :2, 2:] = 2  # ... then slot 2 from frame 2: one slot change
    labels[:, 3, :2] = 1  # slot 1 also takes 2 of the 8 background pixels in every frame (> 5 %)
    text, table = captions.describe_object_tracks(masks, labels, {1: "red", 2: "green"}, "decoder")
    lines = text.split("\n")
    assert lines[0] == "- **decoder**: the background is covered mostly by slot 0."
    assert lines[1] == ("  - the red object (1): slot 0, **in the background's slot in 4 of 4 frames** (not separated "
                        "from the background) (that slot covers 100 % of its pixels on average).")
    assert lines[2] == ("  - the green object (2): slots 1, 2, **1 slot change** (that slot covers 100 % of its "
                        "pixels on average).")
    assert list(table["switches"]) == [0, 1] and list(table["with_background"]) == [4, 0]
    labels[:, :2, 2:] = 1  # object 2 keeps slot 1, which takes 25 % of the background's pixels
    text, _ = captions.describe_object_tracks(masks, labels, {1: "red", 2: "green"}, "decoder")
    assert "slot 1, its own slot in all 4 frames (a slot that also takes 25 % of the background's pixels)" in text


def test_describe_slot_areas_and_unused_slots():
    labels = torch.zeros(2, 2, 2, dtype=torch.long)
    labels[:, 0, 0] = 2  # slot 2 wins 1 of 4 patches, slot 0 the rest, slots 1 and 3 nothing
    assert captions.slot_areas({"decoder": labels}, 4)["decoder"].tolist() == [0.75, 0.0, 0.25, 0.0]
    text = captions.describe_slot_areas({"decoder": labels}, 4)
    assert text == ("Share of the clip's patches each slot wins (argmax, all frames): decoder: slot 0 75 %, slot 1 0 %, "
                    "slot 2 25 %, slot 3 0 %. In the decoder map, slots 1, 3 win (almost) no patch: unused on this "
                    "clip.")
    labels[1, 1, 1] = 1  # slot 1 wins 1 of 8 patches now: only slot 3 is unused
    assert captions.describe_slot_areas({"decoder": labels}, 4).endswith("slot 3 wins (almost) no patch: unused on "
                                                                         "this clip.")


def test_describe_background_share_averages_each_slot_over_background_patches():
    masks = torch.zeros(1, 4, 4, dtype=torch.long)
    masks[0, :2, :2] = 1  # one object patch of a 2x2 grid, three background patches
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0] = torch.tensor([[1.0, 0.2], [0.4, 0.6]])  # slot 0: the object and 40 % of the background
    maps[0, 1] = 1 - maps[0, 0]
    text = captions.describe_background_share({"decoder": maps}, masks)
    assert "the decoder map gives its slots 40 %, 60 % of each background patch on average (slots 0-1; slot 1 the most)" in text


def test_iteration_settling_counts_patches_already_in_their_final_slot():
    final = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]])  # S=2, 2x2: slot 0 top, slot 1 bottom
    first = torch.full((2, 2, 2), 0.5)
    first[0] = torch.tensor([[0.9, 0.1], [0.9, 0.1]])  # slot 0 left column: right on 2 of 4 patches
    first[1] = 1 - first[0]
    iters = [torch.stack([first, final]), torch.stack([final, final])]  # frame 0: 2 iterations, frame 1: 2
    settled, peak = captions.iteration_settling(iters)
    assert settled == {(0, 0): 0.5, (0, 1): 1.0, (1, 0): 1.0, (1, 1): 1.0}
    assert abs(peak[0, 0] - 0.9) < 1e-6 and peak[0, 1] == 1.0
    text = captions.describe_iterations(iters)
    assert "After the first iteration of frame 0, slot 0 wins 50 % of the patches" in text
    assert "t=0 iteration 1: 50 % settled, weight 0.90" in text and "start 100 % of the way" in text


def test_reconstruction_error_at_borders_and_inside():
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, :4, :4] = 1  # on a 4x4 grid: object 1 is the top-left 2x2 patches
    gt_patch, border = captions.border_patches(masks, (4, 4))
    assert gt_patch[0, :2, :2].eq(1).all() and int(gt_patch.sum()) == 4
    # border: the 3 object patches and 5 background patches that touch the other id; (0, 0) and (3, 3) do not
    assert int(border.sum()) == 8 and not border[0, 0, 0] and not border[0, 3, 3] and border[0, 1, 1]
    features = torch.ones(1, 16, 3)
    recon = features.clone()
    recon[0, [0, 15]] = torch.tensor([1.0, -1.0, 0.0])  # patches (0, 0) and (3, 3): cos = 0, error 1
    err = captions.reconstruction_error(features, recon, (4, 4))
    assert err.shape == (1, 4, 4) and torch.allclose(err[0, 0, 0], torch.tensor(1.0)) and abs(float(err.sum()) - 2) < 1e-6
    tracks = pd.DataFrame({"id": [1], "name": ["red"], "with_background": [1]})
    text = captions.describe_reconstruction(err, masks, tracks)
    assert ("Mean error 1 − cos: 0.125 over all patches, 0.000 on patches at an object's outline, 0.250 elsewhere"
            in text)
    assert "The red object shares the background's slot, yet its features are rebuilt (mean error 0.250" in text
    assert "Every object has a slot of its own" in captions.describe_reconstruction(
        err, masks, tracks.assign(with_background=[0]))


def test_slot_persistence_on_kept_and_swapped_slots():
    slots = torch.eye(3)[None].repeat(4, 1, 1)  # T=4, S=3, d=3: every slot the same vector in every frame
    assert captions.slot_persistence(slots) == (1.0, 1.0, 0.0)
    swapped = slots.clone()
    swapped[2:] = slots[2:, [1, 0, 2]]  # slots 0 and 1 swap their vectors between frames 1 and 2
    kept, self_sim, other_sim = captions.slot_persistence(swapped)
    assert abs(kept - 7 / 9) < 1e-6 and abs(self_sim - 7 / 9) < 1e-6 and abs(other_sim - 1 / 9) < 1e-6
    assert "In 78 % of the 3 x 3 (step, slot) pairs" in captions.describe_slot_persistence(swapped)


def test_describe_metrics_quotes_the_table_and_the_clip():
    masks = _clip(1)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2, 2:] = 1  # object 2 alone in slot 1 (IoU 1); object 1 in the background's slot 0: IoU 4/12
    table = pd.DataFrame({"objective": ["baseline"] * 2, "maps": ["attention", "decoder"], "fg_ari": [0.7, 0.6],
                          "mbo": [0.3, 0.25], "miou": [0.3, 0.25]})
    metrics = {"num_videos": 10, "attention/video/objects_lost": 0.34, "decoder/video/objects_lost": 0.4}
    text = captions.describe_metrics(table, metrics, labels, masks, {1: "red", 2: "green"}, 2, (2, 2))
    assert "The attention maps score the higher FG-ARI (0.70 against 0.60 for the decoder maps)" in text
    assert "red 0.33 (slot 0), green 1.00 (slot 1)" in text and "(a 2x2 grid upsampled to 4 px)" in text
    assert "mBO equals mIoU here because every object's best slot is a different slot (slots 0, 1)" in text
    assert "34 % of objects (attention maps) and 40 % of objects (decoder maps)" in text
    labels[0] = 0  # both objects' best slot is slot 0 now
    assert "two objects share their best slot" in captions.describe_metrics(table, metrics, labels, masks,
                                                                          {1: "red", 2: "green"}, 2, (2, 2))


def test_a_sliver_or_the_background_slot_is_no_identity_switch():
    masks = _clip()
    labels = torch.zeros(4, 4, 4, dtype=torch.long)
    labels[:, :2, :2], labels[:, :2, 2:] = 1, 2
    labels[2:, :2, :2] = 3  # object 1, in full view, moves from slot 1 to slot 3 at t=2: a switch
    switch = [f for f in find_failures(masks, labels) if f["kind"] == "switch"]
    assert switch == [{"kind": "switch", "objects": [1], "frames": [2], "slots": [1, 3], "moves": [(2, 1, 3)]}]
    labels[3, :2, :2] = 2  # and on to slot 2 at t=3: two moves
    switch = [f for f in find_failures(masks, labels) if f["kind"] == "switch"][0]
    assert switch["frames"] == [2, 3] and switch["slots"] == [1, 3, 2] and switch["moves"] == [(2, 1, 3), (3, 3, 2)]
    labels[3, :2, :2] = 3
    small = masks.clone()
    small[2:, :2, :2] = 0
    small[2:, 0, 0] = 1  # object 1 shrinks to 1 pixel (a quarter of its largest area) when its slot changes
    assert not [f for f in find_failures(small, labels) if f["kind"] == "switch"]
    labels[2:, :2, :2] = 0  # object 1 falls into the background's slot 0 from t=2 (half its frames: lost)
    assert [f["kind"] for f in find_failures(masks, labels)] == ["lost"]
    labels[2, :2, :2] = 1  # ... only at t=3 (a quarter of its frames: partly lost, no switch)
    assert find_failures(masks, labels) == [{"kind": "partly_lost", "objects": [1], "frames": [3], "slots": [0]}]


def test_describe_failure_says_what_the_figure_draws():
    masks = _clip()
    labels = torch.zeros(4, 4, 4, dtype=torch.long)
    labels[:, :2, :2], labels[:, :2, 2:] = 1, 2
    labels[2:, :2, :2] = 2  # t=2: object 1 takes slot 2 ...
    labels[2:, :2, 2:] = 1  # ... and object 2 slot 1: the two swap
    names = {1: "red", 2: "green"}
    found = find_failures(masks, labels)
    assert [(f["kind"], f["objects"]) for f in found] == [("switch", [1]), ("switch", [2])]
    text = captions.describe_failure({**found[0], "labels": labels}, masks, names, 4)
    assert text.startswith("the red object (id 1) is held by slot 1 at t=1 (it covers 100 % of the object's pixels) "
                           "and by slot 2 at t=2 (100 %), while the object is in full view: 100 % and 100 % of its "
                           "largest area (both frames drawn). At t=1 slot 2 held 4 pixels, mostly the green object "
                           "(id 2); at t=2 slot 1 holds 4 pixels, mostly the green object (id 2). The background's majority slot stays "
                           "slot 0 across the switch.")
    labels[2:, 2:, :] = 3  # the background's majority slot changes to 3 at t=2 as well
    case = {**[f for f in find_failures(masks, labels) if f["kind"] == "switch"][0], "labels": labels}
    assert ("the background's majority slot changes too, from slot 0 (it covers 100 % of the background at t=1) "
            "to slot 3 (100 % at t=2)") in captions.describe_failure(case, masks, names, 4)
    labels = torch.zeros(4, 4, 4, dtype=torch.long)
    labels[:, :2, :] = 1  # both objects in slot 1 in every frame ...
    labels[:, 2, :2] = 1  # ... with 2 of the 8 background pixels
    shared = [f for f in find_failures(masks, labels) if f["kind"] == "shared"][0]
    text = captions.describe_failure({**shared, "labels": labels}, masks, names, 4)
    assert text.startswith("the red object (id 1) and the green object (id 2) are both held by slot 1 in 4 frames "
                           "(0, 1, 2, 3); at t=0 slot 1 covers 100 % and 100 % of their pixels (and 25 % of the background's), their centres are 2 px "
                           "apart (frames of 4 px), with 2 objects in the clip for 4 slots.")
    labels[:, :2, :2] = 0  # object 1 in the background's slot in every frame
    lost = [f for f in find_failures(masks, labels) if f["kind"] == "lost"][0]
    assert captions.describe_failure({**lost, "labels": labels}, masks, names, 4).startswith(
        "the red object (id 1) covers 25.0 % of the clip's pixels (the other objects 25.0 % on average) and is in the "
        "background's slot 0 in 4 of its 4 visible frames.")


def test_describe_baseline_states_the_numbers():
    table = pd.DataFrame({"maps": ["attention", "decoder"], "fg_ari": [0.69, 0.6], "mbo": [0.29, 0.28]})
    tracks = pd.DataFrame({"name": ["purple", "green"], "frames": [12, 12], "switches": [0, 2],
                           "with_background": [12, 0]})
    text = captions.describe_baseline("run", 5, table, 200, tracks, {(0, 0): 0.38, (1, 0): 0.83}, 0.056, 1.0)
    assert "scores video FG-ARI 0.69 with its attention maps and 0.60 with its decoder maps, mBO 0.29 / 0.28" in text
    assert ("1 of 2 objects have a decoder slot of their own, their slots change 2 times; the purple object shares "
            "the background's slot in 12 of 12 frames. Slot attention settles in its iterations (38 % of patches in "
            "place after the first iteration of frame 0, 83 % on frame 1)") in text
    assert "mean error 1 − cos of 0.056" in text and "100 % of slots are their own nearest slot" in text


class _FixedModel(torch.nn.Module):
    """Returns the same slot logits (T, S, N) for any clip, as the encoder's and the decoder's: a 4x4 patch grid."""

    def __init__(self, logits):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # run_on_clip reads the device from a parameter
        self.logits = logits

    def forward(self, video):
        from types import SimpleNamespace

        return SimpleNamespace(attn_logits=self.logits[None], alpha=self.logits[None], grid=(4, 4))


def test_split_merge_case_finds_two_slots_of_one_object_and_says_so():
    from ssync_lib.lab.notebook import split_merge_case

    masks = torch.zeros(3, 4, 4, dtype=torch.long)
    masks[:, :, :2] = 1  # object 1: the left half (one pixel per patch), background the right half
    logits = torch.zeros(3, 3, 4, 4)  # T S h w
    logits[:, 0, :2, :2], logits[:, 0, 2:, :2] = 5.0, 4.9  # slot 0 wins the object's top half ...
    logits[:, 1, :2, :2], logits[:, 1, 2:, :2] = 4.9, 5.0  # ... slot 1 its bottom half: both cover all of it
    logits[:, 2, :, 2:] = 5.0  # slot 2: the background
    clip = {"video": torch.zeros(3, 3, 4, 4), "masks": masks, "id": "hand"}
    case = split_merge_case(_FixedModel(logits.flatten(2)), [clip], window=3, merge_iou=0.7)
    assert case["counts"] == {"object_split": 1, "object_background": 0, "two_objects": 0, "background_or_empty": 0}
    assert (case["windows"], case["split_windows"], case["index"], case["start"]) == (1, 1, 0, 0)
    assert case["slots"] == [0, 1] and case["rep"] == 0 and case["object"] == 1 and case["pure"]
    text = captions.describe_split_merge(case, {1: "red"}, 0.7)
    assert text.startswith(
        "In clip hand, frames 0-2 (one window of 3 frames, as in training), the unmerged encoder labels split the red "
        "object (id 1) over slots 0 and 1: slot 0 wins 50 % and slot 1 wins 50 % of its patches, and 100 % and 100 % "
        "of the patches these slots win are that object. Their coverage IoU is 1.00 (slots 0 and 1), above the "
        "threshold 0.7, so the merge gives them one label, 0 (its slot with the largest encoder area): in the merged "
        "row the object carries one label on 100 % of its patches, against 50 % for its largest slot before. No other "
        "slot merges in this window. Over the 1 windows of the first 1 validation clips, 1 hold a merge within one "
        "object; of the 1 merged slot pairs there, 1 join two slots of one object, 0 join")
    logits[:, 1, 2:, :2] = 0.0  # slot 1 no longer covers the object: nothing merges
    case = split_merge_case(_FixedModel(logits.flatten(2)), [clip], window=3, merge_iou=0.7)
    assert "index" not in case and case["split_windows"] == 0
    assert captions.describe_split_merge(case, {}, 0.7).startswith("No window merges two slots of one object")


# ----------------------------------------------------------------------------- notebook 01: what the encoder sees

def test_segment_share_is_the_between_segment_share_of_the_variance():
    values = np.array([[0.0], [2.0], [4.0], [6.0]])  # mean 3: total 9 + 1 + 1 + 9 = 20
    segments = np.array([0, 0, 1, 1])  # means 1 and 5: within 1 + 1 + 1 + 1 = 4
    assert captions.segment_share(values, segments) == 0.8
    assert captions.segment_share(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([3, 3, 7])) == 1.0
    assert captions.segment_share(np.array([[0.0], [2.0], [2.0], [0.0]]), segments) == 0.0
    assert np.isnan(captions.segment_share(np.ones((3, 3)), np.array([0, 1, 2])))


def test_patch_segments_keep_each_frame_apart():
    masks = torch.zeros(2, 4, 4, dtype=torch.long)
    masks[0, :2, :2], masks[1, 2:, 2:] = 1, 2  # frame 0: object 1 top-left; frame 1: object 2 bottom-right
    assert captions.patch_segments(masks, (2, 2)).tolist() == [[[1, 0], [0, 0]], [[3, 3], [3, 5]]]


def test_describe_encoder_pca_compares_how_closely_the_colours_follow_the_objects():
    masks = _clip(2)  # objects 1 and 2 on the top half, background below: 2x2 patches of 2x2 pixels
    flat = np.zeros((2, 2, 2, 3))
    flat[:, 0, 0], flat[:, 0, 1] = (1, 0, 0), (0, 1, 0)  # one colour per object, black background: share 1
    mixed = flat.copy()
    mixed[:, 0, 1] = mixed[:, 1, 0] = (1, 0, 0)  # both objects and one background patch red, the other black
    # red channel over the 8 patches: total sum of squares 6 * 0.25^2 + 2 * 0.75^2 = 1.5; within the segments only
    # the background varies, 2 frames * (0.5^2 + 0.5^2) = 1: share 1 - 1 / 1.5 = 1/3
    assert captions.segment_share(mixed, captions.patch_segments(masks, (2, 2))) == pytest.approx(1 / 3)
    text = captions.describe_encoder_pca({"a": flat, "b": mixed}, masks, "lvl")
    assert "the 2 `lvl` clips" in text and "**100 %** of the colours' variance with `a`" in text
    assert "**33 %** of the colours' variance with `b`" in text
    assert "the colours of `a` follow the objects more closely than those of `b`" in text
    assert "about equally closely" in captions.describe_encoder_pca({"a": flat, "b": flat}, masks, "lvl")


def test_attention_shares_and_their_caption_on_hand_made_maps():
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, 2:6, 2:6] = 1  # the 4 centre patches of a 4x4 grid of 2x2 patches; the outer ring is 12 of 16
    attention = torch.zeros(1, 2, 4, 4)
    attention[0, 0, 1, 2] = 0.5  # head 0: all on one object patch (the maps need not sum to 1)
    attention[0, 1] = 0.1  # head 1: uniform
    table = captions.attention_shares(attention, masks)
    assert table.on_objects.tolist() == [1.0, 0.25] and table.on_border.tolist() == [0.0, 0.75]
    assert table.objects_area.tolist() == [0.25, 0.25] and table.border_area.tolist() == [0.75, 0.75]
    text = captions.describe_cls_attention(attention, masks, "lvl", "vit")
    assert "Objects cover 25 % of the patches, the outer ring of patches 75 %" in text
    assert "head 0 puts **100 %** of its attention on the objects (4.0x their share of the patches: it picks out " \
           "objects) and 0 % on the outer ring (0.0x its share)" in text
    assert "head 1 puts **25 %** of its attention on the objects (1.0x their share of the patches: about in " \
           "proportion to their area) and 75 % on the outer ring (1.0x its share)" in text
    attention[0, 0] = 0.1
    attention[0, 0, 1:3, 1:3] = 0.0  # head 0 now avoids the objects
    assert "head 0 puts **0 %** of its attention on the objects (0.0x their share of the patches: it looks at the " \
           "background)" in captions.describe_cls_attention(attention, masks, "lvl", "vit")


def test_own_clusters_count_objects_whose_main_cluster_no_one_else_has():
    masks = _clip(2)  # 4x4: object 1 top-left, object 2 top-right, background the bottom half
    labels = torch.tensor([[[0, 1], [2, 2]], [[0, 0], [2, 2]]])  # 2x2 patches; frame 1: objects 1 and 2 merged
    assert captions.own_clusters(labels, masks) == (2, 4)
    labels[0, 1] = 1  # frame 0: the background takes object 2's cluster
    assert captions.own_clusters(labels, masks) == (1, 4)
    pixels = torch.zeros(1, 4, 4, dtype=torch.long)
    pixels[0, :2, :2], pixels[0, 0, 2:], pixels[0, 1, 2] = 1, 2, 1  # object 2: 2 pixels of cluster 2, 1 of 1, 1 of 0
    assert captions.own_clusters(pixels, masks[:1]) == (2, 2)  # full-resolution labels, majorities 1, 2 and 0


def test_describe_encoder_kmeans_quotes_the_means_the_clips_and_the_wins():
    masks = _clip(2)
    labels = {"random: cpu": torch.tensor([[[0, 1], [2, 2]], [[0, 0], [2, 2]]]),
              "pretrained": torch.tensor([[[0, 1], [2, 2]]] * 2)}
    text = captions.describe_encoder_kmeans({"random: cpu": [0.5, 0.7], "pretrained": [0.9, 0.6]}, labels, masks,
                                            "lvl", [12, 12])
    assert "all 12 frames of a clip" in text
    assert ("In the frames shown, `random: cpu` gives 2 of 4 objects a cluster of their own, `pretrained` gives 4 of "
            "4 objects a cluster of their own") in text
    assert ("on the `pretrained` features k-means scores **0.750** video FG-ARI on these 2 `lvl` clips (per clip "
            "0.90, 0.60) against **0.600** for `random: cpu`") in text
    assert "(per clip 0.50, 0.70); `pretrained` scores higher on 1 of 2." in text
