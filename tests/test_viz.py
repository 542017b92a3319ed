"""Every plot renders on small tensors (Agg backend); the array helpers are exact."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.colors import to_hex
import torch

from ssync_lib.lab import viz, widgets

T, S, H, W, h, w, D = 4, 3, 16, 16, 4, 4, 8


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def clip():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(T, 3, H, W, generator=g)  # T 3 H W
    gt = torch.randint(0, 3, (T, H, W), generator=g)  # T H W
    attn = torch.softmax(torch.randn(T, S, h, w, generator=g), 1)  # T S h w
    labels = attn.argmax(1)  # T h w
    return frames, gt, attn, labels


def _pixels(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def test_upsample_labels_is_nearest_block_repeat():
    lab = np.arange(6).reshape(2, 3)
    up = viz.upsample_labels(lab, (4, 6))
    np.testing.assert_array_equal(up, np.kron(lab, np.ones((2, 2), dtype=int)))


def test_overlay_keeps_background_and_blends_objects():
    img = np.full((2, 2, 3), 0.5)
    lab = np.array([[0, 1], [1, 0]])
    out = viz.overlay(img, lab, num_labels=2, alpha=0.5, background=0)
    np.testing.assert_allclose(out[0, 0], img[0, 0])
    np.testing.assert_allclose(out[0, 1], 0.5 * 0.5 + 0.5 * viz.slot_colors(2)[1])


def test_label_colors_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        viz.label_colors(np.array([[0, 2]]), num_labels=2)


def test_to_image_accepts_both_layouts_and_uint8():
    chw = np.random.rand(3, 5, 7)
    np.testing.assert_allclose(viz.to_image(chw), chw.transpose(1, 2, 0), rtol=1e-6)
    assert viz.to_image(np.full((5, 7, 3), 255, np.uint8)).max() == 1.0


def test_pca_rgb_recovers_a_two_cluster_split():
    feats = np.zeros((2, h * w, D))
    feats[:, : h * w // 2, 0] = 1.0  # top half of the grid differs along one direction
    rgb = viz.pca_rgb(feats, (h, w))
    assert rgb.shape == (2, h, w, 3) and rgb.min() >= 0 and rgb.max() <= 1
    top, bottom = rgb[:, : h // 2, :, 0], rgb[:, h // 2:, :, 0]
    assert np.ptp(top) == 0 and np.ptp(bottom) == 0 and abs(top.mean() - bottom.mean()) == 1.0


def test_pca_rgb_names_a_grid_mismatch():
    with pytest.raises(ValueError, match="grid"):
        viz.pca_rgb(np.zeros((5, D)), (2, 2))


def test_frame_and_map_plots_render(clip):
    frames, gt, attn, labels = clip
    assert _pixels(viz.plot_frames(frames, gt)).std() > 0
    fig = viz.plot_map_rows(frames, {"ground truth": gt, "attention": labels, "decoder": labels}, num_labels=S)
    assert len(fig.axes) == 4 * len(viz.frame_indices(T))
    _pixels(fig)
    _pixels(viz.plot_pca(frames, torch.randn(T, h * w, D), (h, w)))
    fig = viz.plot_slot_maps(frames, {"attention": attn, "decoder": attn}, t=1)
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "the slot's share of the patch"]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, 1.0)  # the colour bar says what white means
    _pixels(fig)


def test_encoder_plots_draw_one_row_per_clip_and_one_column_per_encoder(clip):
    frames, gt, attn, labels = clip  # T frames stand for T clips' shown frames here
    rgb = {"random": np.random.default_rng(0).random((T, h, w, 3)), "pretrained": np.zeros((T, h, w, 3))}
    fig = viz.plot_encoder_pca(frames.movedim(1, -1), gt, rgb, title="pca")
    assert len(fig.axes) == T * 3 and [ax.get_title() for ax in fig.axes[:3]] == [
        "frame, objects outlined", "random: PCA", "pretrained: PCA"]
    assert fig.axes[1].images[0].get_extent() == [-0.5, W - 0.5, H - 0.5, -0.5]  # the grid over the whole frame
    assert _pixels(fig).std() > 0
    fig = viz.plot_cls_attention(frames.movedim(1, -1), gt, attn)  # S heads
    assert len(fig.axes) == T * (S + 1) and fig.axes[S].get_title() == f"head {S - 1}"
    _pixels(fig)
    fig = viz.plot_encoder_kmeans(frames.movedim(1, -1), gt, {"random": labels, "pretrained": labels},
                                  {"random": [0.25] * T, "pretrained": [0.5, 0.125, 1.0, 0.0]})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1] == "random: k-means\nFG-ARI 0.25" and titles[2] == "pretrained: k-means\nFG-ARI 0.50"
    assert titles[3 * 1 + 2] == "FG-ARI 0.12" and titles[3 * 3 + 2] == "FG-ARI 0.00"
    _pixels(fig)


def test_ssync_plots_render(clip):
    frames, gt, attn, labels = clip
    boundary = torch.rand(T, h, w) > 0.5
    _pixels(viz.plot_boundary_interior(frames, labels, labels, boundary, ~boundary, num_labels=S))
    fig = viz.plot_boundary_interior(frames, labels, labels, boundary, ~boundary, num_labels=S, masks=gt)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[:S] == [f"slot {s}" for s in range(S)] and texts[S:] == ["not selected (dimmed frame)",
                                                                       "ground-truth outline (white)"]
    _pixels(fig)
    _pixels(viz.plot_coverage(attn > 0.3, t=0))
    iou = torch.tensor([[1.0, 0.8, 0.1], [0.8, 1.0, 0.2], [0.1, 0.2, 1.0]])
    fig = viz.plot_iou_matrix(iou, threshold=0.7)
    assert len(fig.axes[0].patches) == 2  # (0, 1) and (1, 0) outlined
    fig = viz.plot_merge_graph(iou, 0.7, slot_map=torch.tensor([0, 0, 2]), areas=torch.tensor([5, 2, 3]))
    assert "[0, 1]->0" in fig.axes[0].get_title()
    _pixels(fig)


def test_patch_sets_render_and_check_frames(clip):
    frames = clip[0]
    sets = {"A": torch.rand(T, h, w) > 0.5, "K": torch.zeros(T, h, w, dtype=torch.bool)}
    fig = viz.plot_patch_sets(frames, sets, anchor=(0, 1, 2))
    assert fig.axes[0].get_ylabel().endswith(f"({int(sets['A'].sum())} patches)")
    _pixels(fig)
    with pytest.raises(ValueError, match="covers 2 frames"):
        viz.plot_patch_sets(frames, {"A": sets["A"][:2]}, anchor=(0, 0, 0))
    # coloured by slot: a set of slot 3's patches in slot 3's colour, a set that is no slot's in white (on black frames)
    black = torch.zeros_like(torch.as_tensor(frames))
    every = torch.ones(T, h, w, dtype=torch.bool)
    fig = viz.plot_patch_sets(black, {"A": every, "K": every}, anchor=(0, 1, 2), slots={"A": 3, "K": None})
    row_a, row_k = (fig.axes[i * T].get_images()[0].get_array() for i in (0, 1))
    assert np.allclose(row_a[0, 0], 0.65 * viz.slot_colors(4)[3]) and np.allclose(row_k[0, 0], 0.65)


def test_explorer_static_and_interactive(clip):
    frames, _, attn, labels = clip
    maps = {"attention": attn, "decoder": attn, "boundary": torch.where(labels > 0, labels, -1)}
    fig = widgets.explore(frames, maps, num_labels=S, interactive=False)
    assert len(fig.axes) == 4 * len(viz.frame_indices(T))  # a row of frames, then one row per map
    dimmed = "unselected (frame dimmed)"  # the boundary map leaves patches at -1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"slot {s}" for s in range(S)] + [dimmed]
    fig = widgets.explore(frames, {"masks": labels}, num_labels=S, interactive=False, label="id")
    present = sorted(set(labels.unique().tolist()))
    assert 0 in present
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"id {s}" for s in present]
    # instance masks with the background at -1 (notebook 01): no "id 0" entry, the dimmed frame instead
    fig = widgets.explore(frames, {"masks": torch.where(labels > 0, labels, -1)}, num_labels=S, interactive=False,
                          label="id")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"id {s}" for s in present if s > 0] + [dimmed]
    fig = viz.plot_explorer(frames, maps, num_labels=S, frames_to_show=[2], slot=1)
    assert len(fig.axes) == 4
    box = widgets.explore(frames, maps, num_labels=S, interactive=True)
    slider = box.children[0].children[0]
    slider.value = T - 1  # moving the slider redraws without error
    assert slider.max == T - 1
    with pytest.raises(ValueError, match="shape"):
        viz.plot_explorer(frames, {"bad": torch.zeros(T, h)}, num_labels=S)


def test_curve_and_table_plots_render():
    history = pd.DataFrame({"step": np.arange(0, 50, 10), "loss": np.linspace(1, 0.1, 5),
                            "recon": np.linspace(0.8, 0.1, 5), "ssync_dec": [0, 0, 0.1, 0.1, 0.05],
                            "lr": 1e-3, "grad_norm": 1.0, "epoch": 0})
    fig = viz.plot_loss_curves(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "recon", "ssync_dec"]
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log", "linear"]
    with pytest.raises(KeyError, match="step"):
        viz.plot_loss_curves(history.drop(columns="step"))
    flat = {f"{k}/{level}/{n}": v for k in ("decoder", "attention") for level in ("video", "image")
            for n, v in (("fg_ari", 0.5), ("mbo", 0.3), ("miou", 0.2), ("miou_valid", 8))}
    table = pd.concat([viz.metrics_rows(flat, m) for m in ("baseline", "ssync")])
    assert table.shape == (4, 5) and set(table["maps"]) == {"decoder", "attention"} and (table["mbo"] == 0.3).all()
    _pixels(viz.plot_metric_bars(table))
    sweep = pd.DataFrame([{"objective": o, "slots": s, "seed": seed, "decoder/video/fg_ari": 0.1 * s,
                           "decoder/video/mbo": 0.2} for o in ("ssync", "dense", "baseline") for s in (3, 4, 5)
                          for seed in (0, 1)])
    fig = viz.plot_slot_sweep(sweep, paper=viz.PAPER_SLOT_ROBUSTNESS)
    assert len(fig.axes) == 4  # here and the paper, FG-ARI and mBO
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["baseline", "dense", "ssync"]
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["baseline", "dense", "ssync"]  # paper's
    assert fig.axes[0].get_xlim() == fig.axes[2].get_xlim()  # one slot axis for here and the paper (3-15)
    assert list(fig.axes[0].get_xticks()) == [3, 4, 5, 7, 11, 15]
    here = fig.axes[0].get_lines()[0].get_ydata()  # the sweep's fractions drawn in %, as the paper's
    assert max(here) == pytest.approx(50.0) and fig.axes[0].get_ylabel() == fig.axes[2].get_ylabel() == "FG-ARI (%)"
    _pixels(fig)
    with pytest.raises(KeyError, match="slots"):
        viz.plot_slot_sweep(sweep.drop(columns="slots"))
    # dense alignment ran at 11 slots only: the one legend still names it, in the colour of its lines
    runs = [("baseline", 7), ("ssync", 7), ("baseline", 11), ("dense", 11), ("ssync", 11)]
    logs = pd.DataFrame([{"objective": o, "slots": s, "seed": 0, "step": step, "recon": 1.0 / (step + 1)}
                         for o, s in runs for step in (0, 10, 20)])
    evals = pd.DataFrame([{"objective": o, "slots": s, "seed": 0, "step": step, "decoder/video/fg_ari": 0.5}
                          for o, s in runs for step in (10, 20)])
    fig = viz.plot_sweep_curves(logs, evals)
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    legend = {t.get_text(): to_hex(h.get_color())
              for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
    assert list(legend) == ["baseline", "dense", "ssync"]
    colours = [{to_hex(line.get_color()) for line in ax.get_lines()} for ax in fig.axes[:2]]  # reconstruction, 7 | 11
    assert colours[0] == {legend["baseline"], legend["ssync"]} and colours[1] == set(legend.values())
    _pixels(fig)
    stats = pd.DataFrame({"id": ["a", "a", "b", "c"], "num_objects": [2, 2, 1, 0],
                          "area_frac": [0.1, 0.2, 0.05, np.nan], "split": ["train"] * 4})
    fig = viz.plot_object_stats(stats, hue="split")
    assert sorted(p.get_height() for p in fig.axes[0].patches if p.get_height() > 0) == [1, 1, 1]
    with pytest.raises(KeyError, match="num_objects"):
        viz.plot_object_stats(stats.drop(columns="num_objects"))


# ----------------------------------------------------------------------------- readable maps


def _lab(rgb):
    """sRGB in [0, 1] -> CIELAB (D65)."""
    c = np.asarray(rgb, float)
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def test_slot_palette_is_distinct_from_the_object_colours_and_stable():
    from ssync_lib.data.scenes import DISTINCT_COLOURS

    slots = _lab(viz.slot_colors(12))
    objects = _lab(np.array(DISTINCT_COLOURS) / 255.0)
    assert np.linalg.norm(slots[:, None] - objects[None], axis=-1).min() > 30  # delta E, well apart
    mutual = np.linalg.norm(slots[:, None] - slots[None], axis=-1) + 1e3 * np.eye(12)
    assert mutual.min() > 15
    np.testing.assert_array_equal(viz.slot_colors(5), viz.slot_colors(11)[:5])  # slot k: one colour everywhere
    assert viz.slot_colors(15).shape == (15, 3) and viz.slot_color_names(3) == ["navy", "pink", "olive"]


def test_map_rows_are_unblended_with_a_slot_legend(clip):
    frames, gt, _, labels = clip
    fig = viz.plot_map_rows(frames, {"ground truth": gt, "decoder": labels}, num_labels=S, frames_to_show=[0])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["slot 0", "slot 1", "slot 2"]
    shown = fig.axes[2].images[0].get_array()  # the decoder row: the slot colours themselves, no frame blended in
    np.testing.assert_allclose(shown, viz.label_colors(viz.upsample_labels(labels[0], (H, W)), S))
    fig = viz.plot_frames(frames, gt)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["background (0)", "id 1", "id 2"]


def _hand_clip():
    """4 frames of 8x8: object 1 (left) and object 2 (right) on background 0. The slot map gives object 1
    slot 2 throughout, object 2 slot 1 then slot 0 (an identity switch at t=2) and slot 0 is the
    background's, so object 2 shares the background's slot in frames 2 and 3."""
    gt = np.zeros((4, 8, 8), int)
    gt[:, 1:5, 1:4] = 1  # 12 pixels, 9 of them in slot 2's patches
    gt[:3, 4:7, 4:7] = 2  # smaller in frame 3
    gt[3, 5:7, 5:7] = 2
    lab = np.zeros((4, 4, 4), int)  # patch grid 4x4 of 2x2-pixel patches
    lab[:, 0:2, 0:2] = 2
    lab[:2, 2:4, 2:4] = 1
    return gt, lab


def test_slot_tracks_on_a_hand_built_clip():
    gt, lab = _hand_clip()
    ids, slots, share = viz.slot_tracks(gt, lab)
    assert ids == [0, 1, 2]
    np.testing.assert_array_equal(slots, [[0, 0, 0, 0], [2, 2, 2, 2], [1, 1, 0, 0]])
    assert share[1, 0] == pytest.approx(9 / 12) and share[2, 0] == 1.0
    summary = viz.track_summary(gt, lab, names={1: "green"})
    assert summary.to_dict("list") == {"id": [1, 2], "name": ["green", "object 2"], "frames": [4, 4],
                                       "slots": [[2], [1, 0]], "switches": [0, 1], "with_background": [0, 2],
                                       "mean_share": summary["mean_share"].tolist()}
    used = len(np.unique(np.asarray(lab)))
    assert viz.describe_tracks(gt, {"model": lab}) == (
        f"- **model**: 1 of 2 objects in the background's slot for at least half of their frames; 1 slot changes of "
        f"objects; the background's majority slot takes 1 different slot(s) over the clip; {used} slots used in all")


def test_slot_tracks_mark_invisible_objects():
    gt, lab = _hand_clip()
    gt[1][gt[1] == 2] = 0  # object 2 hidden in frame 1
    _, slots, share = viz.slot_tracks(gt, lab)
    assert slots[2, 1] == -1 and np.isnan(share[2, 1])
    assert viz.track_summary(gt, lab)["frames"].tolist() == [4, 3]
    with pytest.raises(ValueError, match="frames"):
        viz.slot_tracks(gt, lab[:2])


def test_plot_slot_tracks_draws_the_track_matrix_and_the_legend():
    gt, lab = _hand_clip()
    fig = viz.plot_slot_tracks(gt, {"attention": lab, "decoder": lab}, num_labels=3, names={1: "green"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["background", "1 green", "2"]
    assert [t.get_text() for t in ax.texts] == ["0", "0", "0", "0", "2", "2", "2", "2", "1", "1", "0", "0"]
    assert sum(p.get_hatch() == "///" for p in ax.patches) == 2  # object 2 in the background's slot, t = 2, 3
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["slot 0", "slot 1", "slot 2",
                                                                   "same slot as\nthe background"]
    assert len(fig.axes) == 2
    _pixels(fig)


def test_object_colour_names_pick_the_synthetic_colour():
    from ssync_lib.data.scenes import DISTINCT_COLOURS

    gt, _ = _hand_clip()
    frames = np.zeros((4, 8, 8, 3))
    frames[gt == 1] = np.array(DISTINCT_COLOURS[5]) / 255.0  # purple
    frames[gt == 2] = np.array(DISTINCT_COLOURS[3]) / 255.0 + 0.03  # blue, a little noise
    assert viz.object_colour_names(frames, gt) == {1: "purple", 2: "blue"}


def test_attention_iterations_reconstruction_and_slot_vectors_render(clip):
    frames, _, attn, _ = clip
    fig = viz.plot_attention_iterations(frames, {"t=0, it 1": (0, attn[0]), "t=0, it 2": (0, attn[1]),
                                                 "t=1, it 1": (1, attn[2])})
    assert len(fig.axes) == 3 * (S + 2)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"slot {s}" for s in range(S)]
    _pixels(fig)
    feats = torch.randn(T, h * w, D)
    fig = viz.plot_reconstruction(frames, feats, feats, (h, w))
    err = fig.axes[3 * len(viz.frame_indices(T))].images[0].get_array()
    np.testing.assert_allclose(err, 0, atol=1e-6)  # a perfect reconstruction: no error anywhere
    _pixels(fig)
    slots = torch.randn(T, S, D)
    slots[1:] = slots[0]  # every slot unchanged over time: its nearest next-frame slot is itself
    fig = viz.plot_slot_vectors(slots, t=0)
    assert [t.get_text() for t in fig.axes[2].texts][:T - 1] == ["0"] * (T - 1)
    _pixels(fig)


def test_pca_rgb_with_a_reference_uses_its_basis():
    feats = np.random.default_rng(0).normal(size=(2, h * w, D))
    np.testing.assert_allclose(viz.pca_rgb(feats, (h, w), reference=feats), viz.pca_rgb(feats, (h, w)))
    shifted = viz.pca_rgb(feats + 100.0, (h, w), reference=feats)
    assert shifted.min() >= 0 and shifted.max() <= 1  # outside the reference's range: clipped


def _premise_rows() -> pd.DataFrame:
    cols = {f"premises/{w}/{m}_merged_acc": 0.5 + 0.1 * (m == "decoder") for w in ("interior", "boundary")
            for m in ("encoder", "decoder")}
    cols |= {f"teaching/{w}/{who}_right_pct": 10.0 + 5 * (who == "teacher") for w in ("interior", "boundary")
             for who in ("teacher", "student")}
    return pd.DataFrame([{"slots": s, "seed": seed, "sweep": "x", "objective": "baseline", **cols}
                         for s in (4, 8) for seed in range(1 + (s == 8))])


def test_premise_figures_one_panel_per_patch_set_with_their_legends():
    from ssync_lib.lab.claims import premise_accuracy, premise_teaching

    fig = viz.plot_premise_accuracy(premise_accuracy(_premise_rows()), title="test")
    assert [ax.get_title() for ax in fig.axes] == ["interior patches (inside objects)", "boundary patches (object edges)"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["encoder", "decoder"]
    assert "1-2 seeds per slot count" in fig._suptitle.get_text()
    decoder = fig.axes[0].get_lines()[1].get_ydata()
    assert list(decoder) == pytest.approx([60.0, 60.0])  # in %
    _pixels(fig)
    fig = viz.plot_premise_teaching(premise_teaching(_premise_rows()))
    assert [ax.get_title() for ax in fig.axes] == ["interior set: the decoder teaches", "boundary set: the encoder teaches"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["teacher right, student wrong",
                                                                             "student right, teacher wrong"]
    assert sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() > 0) == [10.0, 10.0, 15.0, 15.0]
    _pixels(fig)


def test_sweep_metric_wraps_panels_and_marks_the_branch_step():
    evals = pd.DataFrame([{"objective": o, "slots": s, "seed": 0, "step": step, "fg": 0.5}
                          for o in ("baseline", "ssync") for s in (4, 5, 7, 11) for step in (2000, 4000)])
    fig = viz.plot_sweep_metric(evals, "fg", "FG-ARI", wrap=3, mark_step=2400)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["4 slots", "5 slots", "7 slots", "11 slots"]
    assert len(fig.axes) == 6 and fig.get_size_inches()[0] <= 12.5  # two rows of three, not one wide row
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["baseline", "ssync", "step 2,400"]
    colours = {t.get_text(): to_hex(h.get_color()) for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
    assert colours["ssync"] == to_hex(sns.color_palette()[2])  # SSync's colour even without dense alignment
    assert any(list(line.get_xdata()) == [2400, 2400] for line in visible[0].get_lines())
    _pixels(fig)
