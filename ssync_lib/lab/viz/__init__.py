"""All plotting, one module per subject, one vocabulary (objective, slots, seed):

    arrays.py    numpy from tensors, slot colours, overlays, PCA to RGB, upsampling, which slot holds which
                 object (no figures)
    maps.py      frames, masks and slot maps over time (unblended, with the slot legend); dense alignment's
                 patch sets; the widgets' panels; what a frozen encoder sees (PCA, CLS attention, k-means)
    slots.py     what a slot is: which slot holds each object frame by frame, slot attention's iterations, the
                 reconstruction beside its target, slot vectors
    ssync.py     SSync's coverage, IoU matrix, merge graph, boundary and interior patches
    results.py   training curves, metric bars, the slot-count sweep, object statistics
    bench.py     the benchmarks' figures

Every plotting function accepts numpy arrays or torch tensors (on any device) and returns the matplotlib
``Figure`` it drew, so notebooks can show it and tests can close it. Shapes: T frames, S slots, H W frame size,
h w patch grid, N = h*w patches, D feature dim. Label maps are integer arrays (patch-level maps are upsampled to
the frame, nearest); frames are RGB in [0, 1] (or uint8), laid out (T, H, W, 3) as ``ssync_lib.data.denormalize``
returns them, or (T, 3, H, W). Library code never selects a matplotlib backend.
"""
from ssync_lib.lab.viz.arrays import (OBJECT_COLOUR_NAMES, SLOT_PALETTE, axes_grid, frame_indices, label_colors,
                                  object_colour_names, overlay, pca_rgb, slot_color_names, slot_colors, slot_tracks,
                                  to_image, to_numpy, track_summary, describe_tracks, upsample_labels, upsample_maps)
from ssync_lib.lab.viz.bench import (plot_alignment, plot_gradients, plot_labels, plot_metrics, plot_step,
                                    plot_step_comparison)
from ssync_lib.lab.viz.maps import (add_slot_legend, draw_ground_truth, draw_labels, draw_map, draw_outlines,
                                plot_cls_attention, plot_encoder_kmeans, plot_encoder_pca, plot_explorer, plot_frames,
                                plot_map_rows, plot_patch_sets, plot_pca, plot_slot_maps, selection_overlay)
from ssync_lib.lab.viz.results import (NOT_LOSSES, PAPER_SLOT_ROBUSTNESS, SWEEP_METRICS, metrics_rows, objective_order,
                                   plot_loss_curves, plot_metric_bars, plot_object_stats, plot_premise_accuracy,
                                   plot_premise_teaching, plot_slot_sweep, plot_sweep_curves, plot_sweep_metric,
                                   save_figure)
from ssync_lib.lab.viz.slots import plot_attention_iterations, plot_reconstruction, plot_slot_tracks, plot_slot_vectors
from ssync_lib.lab.viz.ssync import plot_boundary_interior, plot_coverage, plot_iou_matrix, plot_merge_graph

__all__ = ["OBJECT_COLOUR_NAMES", "SLOT_PALETTE", "axes_grid", "frame_indices", "label_colors", "object_colour_names",
           "overlay", "pca_rgb", "slot_color_names", "slot_colors", "slot_tracks", "to_image", "to_numpy",
           "track_summary", "describe_tracks", "upsample_labels", "upsample_maps", "add_slot_legend", "draw_ground_truth", "draw_labels",
           "draw_outlines", "plot_attention_iterations", "plot_reconstruction", "plot_slot_tracks", "plot_slot_vectors",
           "plot_alignment", "plot_gradients", "plot_labels", "plot_metrics", "plot_step", "plot_step_comparison",
           "draw_map", "plot_explorer", "plot_frames", "plot_map_rows", "plot_patch_sets", "plot_pca",
           "plot_cls_attention", "plot_encoder_kmeans", "plot_encoder_pca", "plot_slot_maps", "selection_overlay", "NOT_LOSSES", "PAPER_SLOT_ROBUSTNESS", "SWEEP_METRICS",
           "metrics_rows", "objective_order", "plot_loss_curves", "plot_metric_bars", "plot_object_stats",
           "plot_slot_sweep", "plot_sweep_curves", "save_figure", "plot_premise_accuracy", "plot_premise_teaching",
           "plot_sweep_metric", "plot_boundary_interior", "plot_coverage",
           "plot_iou_matrix", "plot_merge_graph"]
