"""Every plot renders on small tensors (Agg backend); the array helpers are exact."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from ssync_lib import viz, widgets

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
    _pixels(viz.plot_slot_maps(frames, {"attention": attn, "decoder": attn}, t=1))


def test_ssync_plots_render(clip):
    frames, _, attn, labels = clip
    boundary = torch.rand(T, h, w) > 0.5
    _pixels(viz.plot_boundary_interior(frames, labels, labels, boundary, ~boundary, num_labels=S))
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


def test_explorer_static_and_interactive(clip):
    frames, _, attn, labels = clip
    maps = {"attention": attn, "decoder": attn, "boundary": torch.where(labels > 0, labels, -1)}
    fig = widgets.explore(frames, maps, num_labels=S, interactive=False)
    assert len(fig.axes) == 3 * len(viz.frame_indices(T))
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
    _pixels(fig)
    with pytest.raises(KeyError, match="slots"):
        viz.plot_slot_sweep(sweep.drop(columns="slots"))
    stats = pd.DataFrame({"id": ["a", "a", "b", "c"], "num_objects": [2, 2, 1, 0],
                          "area_frac": [0.1, 0.2, 0.05, np.nan], "split": ["train"] * 4})
    fig = viz.plot_object_stats(stats, hue="split")
    assert sorted(p.get_height() for p in fig.axes[0].patches if p.get_height() > 0) == [1, 1, 1]
    with pytest.raises(KeyError, match="num_objects"):
        viz.plot_object_stats(stats.drop(columns="num_objects"))
