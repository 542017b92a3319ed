"""The sentences under the notebooks' figures (notebook 01's encoder figures, notebook 02's, and notebook 04's merge
within one object), computed from what the figures draw, so that they cannot drift from them
(tests/test_captions.py checks them on small hand-made inputs).

    describe_encoder(cfg, grid, feature_dim)            the encoder line in words (random or published weights)
    describe_object_tracks(masks, labels, names, what)   which slot holds which object, frame by frame
    describe_slot_areas(label_maps, S) / describe_background_share(soft_maps, masks)   how the slots share a clip
    iteration_settling(iters) / describe_iterations(iters)   slot attention, iteration by iteration
    reconstruction_error(...) / describe_reconstruction(...)  the decoder's error, at borders and inside regions
    slot_persistence(slots) / describe_slot_persistence(slots)  slot vectors from frame to frame
    describe_metrics(...)                                the metrics table, and why FG-ARI is above mBO
    describe_failure(case, masks, names, num_slots)      one case of the failure gallery (notebook.failure_cases)
    describe_baseline(...)                               the notebook's summary
    describe_split_merge(case, names, threshold)          notebook 04: a merge within one object (notebook.split_merge_case)
    describe_encoder_pca / describe_cls_attention / describe_encoder_kmeans   notebook 01: what a frozen encoder sees
        (segment_share, patch_segments, attention_shares, own_clusters: the numbers they quote)

Shapes: T frames, S slots, H W frame size, h w patch grid, N = h*w patches, D feature dim, d slot dim; ``names``
maps a ground-truth id to a colour name (``viz.object_colour_names``). The other notebooks' sentences sit next to
what they describe: ``notebook.describe_failures`` / ``describe_curves`` / ``describe_switch_on``,
``viz.describe_tracks``, ``claims.read_premise_*``.

Modules: ``encoder.py`` (what a frozen encoder sees), ``model.py`` (what the model does on one clip), ``outcomes.py`` (how it scores and fails, the summary,
notebook 04's merge), ``words.py`` (plurals and lists in prose). Every name is importable from here.
"""
from ssync_lib.lab.captions.encoder import (attention_shares, describe_cls_attention, describe_encoder_kmeans,
                                            describe_encoder_pca, own_clusters, patch_segments, segment_share)
from ssync_lib.lab.captions.model import (border_patches, describe_background_share, describe_encoder,
                                          describe_iterations, describe_object_tracks, describe_reconstruction,
                                          describe_slot_areas, describe_slot_persistence, iteration_settling,
                                          reconstruction_error, slot_areas, slot_persistence)
from ssync_lib.lab.captions.outcomes import (MERGE_WORDS, best_iou, describe_baseline, describe_failure,
                                             describe_metrics, describe_split_merge)

__all__ = ["attention_shares", "describe_cls_attention", "describe_encoder_kmeans", "describe_encoder_pca",
           "own_clusters", "patch_segments", "segment_share", "border_patches", "describe_background_share", "describe_encoder", "describe_iterations",
           "describe_object_tracks", "describe_reconstruction", "describe_slot_areas", "describe_slot_persistence",
           "iteration_settling", "reconstruction_error", "slot_areas", "slot_persistence", "MERGE_WORDS", "best_iou",
           "describe_baseline", "describe_failure", "describe_metrics", "describe_split_merge"]
