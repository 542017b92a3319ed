"""What a frozen encoder sees, in words (notebook 01, "What the encoder sees"): the sentences under its PCA, CLS
attention and k-means figures, computed from the arrays those figures draw.

Shapes: n frames (one per clip), H W frame size, h w patch grid, heads attention heads; ``masks`` (n, H, W)
ground-truth ids (0 = background), read per patch by nearest sampling (``border_patches``)."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ssync_lib.lab.captions.model import border_patches
from ssync_lib.lab.viz import upsample_labels
from ssync_lib.lab.captions.words import _plural


def segment_share(values, segments) -> float:
    """The share of the variance of ``values`` (..., c) that lies between the groups of ``segments`` (...) (the
    correlation ratio eta^2, summed over the c channels): 1 when every segment is one value, 0 when all segments
    have the same mean. NaN when ``values`` do not vary."""
    x = np.asarray(values, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1])  # points c
    _, group = np.unique(np.asarray(segments).reshape(-1), return_inverse=True)
    sums = np.zeros((group.max() + 1, x.shape[1]))
    np.add.at(sums, group, x)
    means = sums / np.bincount(group)[:, None]  # per segment
    total = float(((x - x.mean(0)) ** 2).sum())
    within = float(((x - means[group]) ** 2).sum())
    return 1.0 - within / total if total > 0 else math.nan


def patch_segments(masks, grid: tuple[int, int]) -> torch.Tensor:
    """masks (n, H, W) -> (n, h, w): one segment id per patch, each object and the background of each frame apart
    (frame index * (largest id + 1) + the patch's ground-truth id)."""
    gt = border_patches(masks, grid)[0]  # n h w
    return gt + (int(gt.max()) + 1) * torch.arange(len(gt)).view(-1, 1, 1)


def describe_encoder_pca(colours: Mapping[str, object], masks, level: str) -> str:
    """The PCA figure (``viz.plot_encoder_pca``) in words: per encoder, the share of its PCA colours' variance
    (``colours``: name -> (n, h, w, 3), ``viz.pca_rgb``) that lies between the ground-truth segments."""
    shares = {name: segment_share(rgb, patch_segments(masks, np.asarray(rgb).shape[1:3]))
              for name, rgb in colours.items()}
    n = len(masks)
    ranked = sorted(shares, key=shares.get, reverse=True)
    text = (f"**PCA colours** of the middle frames of the {n} `{level}` {_plural(n, 'clip')} (three components per "
            "encoder, fitted on these frames' patches together; black: the objects' outlines). The ground-truth "
            "segments (each object and the background of each frame) account for "
            + ", ".join(f"**{100 * v:.0f} %** of the colours' variance with `{name}`" for name, v in shares.items())
            + " (100 % would be one flat colour per object and one for the background). ")
    if len(ranked) > 1 and shares[ranked[0]] - shares[ranked[-1]] >= 0.05:
        text += f"So the colours of `{ranked[0]}` follow the objects more closely than those of `{ranked[-1]}`."
    elif len(ranked) > 1:
        text += "So both encoders' colours follow the objects about equally closely (within 5 points)."
    return text


def attention_shares(attention, masks) -> pd.DataFrame:
    """Per head (rows): the share of the CLS attention over the patches (``attention`` (n, heads, h, w), each map
    normalised to sum 1) that falls on the objects' patches and on the outer ring of patches, beside the share of
    the grid those patches cover; means over the n frames."""
    a = torch.as_tensor(attention, dtype=torch.float64)
    a = a / a.sum((-2, -1), keepdim=True)
    h, w = a.shape[-2:]
    objects = (border_patches(masks, (h, w))[0] > 0).double()  # n h w
    ring = torch.ones(h, w, dtype=torch.float64)
    ring[1:-1, 1:-1] = 0  # the outer ring of patches
    return pd.DataFrame({"on_objects": (a * objects[:, None]).sum((-2, -1)).mean(0).numpy(),
                         "objects_area": float(objects.mean()),
                         "on_border": (a * ring).sum((-2, -1)).mean(0).numpy(),
                         "border_area": float(ring.mean())}).rename_axis("head")


def describe_cls_attention(attention, masks, level: str, encoder: str) -> str:
    """The CLS-attention figure (``viz.plot_cls_attention``) in words, per head: how much of its attention falls on
    the objects and on the border of the frame, against their area (``attention_shares``)."""
    table = attention_shares(attention, masks)
    objects_area, border_area = table.objects_area.iloc[0], table.border_area.iloc[0]
    parts = []
    for head, row in table.iterrows():
        ratio = row.on_objects / objects_area if objects_area > 0 else math.nan
        leaning = ("it picks out objects" if ratio >= 1.5 else "it looks at the background" if ratio <= 2 / 3
                   else "about in proportion to their area")
        parts.append(f"head {head} puts **{100 * row.on_objects:.0f} %** of its attention on the objects "
                     f"({ratio:.1f}x their share of the patches: {leaning}) and {100 * row.on_border:.0f} % on the "
                     f"outer ring ({row.on_border / border_area:.1f}x its share)")
    n = len(masks)
    return (f"**CLS attention** of `{encoder}` on the middle frames of the {n} `{level}` {_plural(n, 'clip')} "
            f"(each map scaled to its own maximum; cyan: the objects' outlines). Objects cover "
            f"{100 * objects_area:.0f} % of the patches, the outer ring of patches {100 * border_area:.0f} %: "
            + "; ".join(parts) + ". The random patch embedding the profiles read has no attention to draw: it maps "
            "each patch on its own, before any transformer block.")


def own_clusters(labels, masks) -> tuple[int, int]:
    """How many objects of the frames (masks (n, H, W)) have a cluster of their own in ``labels`` (n, h, w) or
    (n, H, W) (upsampled, nearest): the cluster that covers most of the object's pixels covers most of no other
    object's and not most of the background's. Returns (objects with their own cluster, objects)."""
    masks = np.asarray(masks)
    labels = upsample_labels(np.asarray(labels), masks.shape[-2:])
    own = total = 0
    for lab, gt in zip(labels, masks):
        ids = np.unique(gt)
        main = {i: np.bincount(lab[gt == i]).argmax() for i in ids}  # each id's majority cluster
        for i in ids[ids > 0]:
            total += 1
            own += sum(main[j] == main[i] for j in ids) == 1
    return own, total


def describe_encoder_kmeans(scores: Mapping[str, Sequence[float]], labels: Mapping[str, object], masks, level: str,
                            num_frames: Sequence[int]) -> str:
    """The k-means figure (``viz.plot_encoder_kmeans``) in words: each encoder's mean video FG-ARI over the clips
    and per clip (``scores``: name -> one value per clip; the first entry the features the profiles read), on how
    many clips the other one scores higher, and in the frames shown (``labels``: name -> (n, h, w), ``masks``
    (n, H, W)) how many objects have a cluster of their own (``own_clusters``)."""
    (ref, ref_scores), (other, other_scores) = list(scores.items())[:2]
    n = len(ref_scores)
    wins = sum(b > a for a, b in zip(ref_scores, other_scores))
    frames = sorted(set(num_frames))
    per_clip = {name: ", ".join(f"{v:.2f}" for v in values) for name, values in scores.items()}
    return (f"**k-means against the ground truth** (K = objects + 1 per clip, all "
            f"{'/'.join(map(str, frames))} frames of a clip clustered together, seed 0; the figure shows the middle "
            f"frame's clusters): on the `{other}` features k-means scores **{np.nanmean(other_scores):.3f}** video "
            f"FG-ARI on these {n} `{level}` {_plural(n, 'clip')} (per clip {per_clip[other]}) against "
            f"**{np.nanmean(ref_scores):.3f}** for `{ref}`, the random patch embedding the profiles read (per clip "
            f"{per_clip[ref]}); `{other}` scores higher on {wins} of {n}. In the frames shown, "
            + ", ".join(f"`{name}` gives {own} of {total} objects a cluster of their own"
                        for name, (own, total) in ((name, own_clusters(lab, masks)) for name, lab in labels.items()))
            + " (the others share their main cluster with another object or the background).")
