"""How object-like frozen features are: k-means video FG-ARI per level, and what a pretrained ViT looks at.

    python -m ssync_lib features --weights checkpoints/pretrain/vit.safetensors \\
        --levels data/synth-easy,data/synth-tex,data/movi-mini --out results/pretrain

For each validation video of each level, the tokens of every frame are clustered together by k-means with
K = objects + 1 (``metrics.kmeans_fg_ari``: the labels upsampled to the pixels, video FG-ARI against the ground
truth) on the profile's patch grid (16 x 16 for patch 4 at 64 px). Feature sets, each a (T, h, w, C) tensor:

- ``pixels: mean colour``: the mean RGB of each patch (the cheapest baseline);
- ``pixels: flat patch``: the patch's p x p x 3 pixels;
- ``random: <profile>``: the profile's encoder as the slot model reads it today (random weights, seed 0);
- ``pretrained: patch_embed`` and ``pretrained: block i``: the pretrained ViT read by ``models.FrozenViT`` at
  ``feature_layer`` = patch_embed, 0, 1, ... (the output of block i, before the final norm: what the slot model
  would read with that feature layer).

Writes ``features.csv`` (one row per level, feature set and video), ``table.csv`` / ``table.md`` (means), the
command, and with a ViT the figures ``attention-<level>.png`` (the last block's CLS attention per head) and
``pca-<level>.png`` (the first three principal components of the last block's patch features as RGB, beside
the k-means labels and the ground truth).

``encoder_views(clips, weights)`` is the same probe on a handful of clips for notebook 01 ("What the encoder
sees"): the random patch embedding the CPU profiles read beside the pretrained ViT's last block, with each clip's
k-means labels and score and the last block's CLS attention.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ssync_lib.config import get_config, resolve_path
from ssync_lib.data import build_dataset, check_data_root, denormalize
from ssync_lib.errors import MissingInputError
from ssync_lib.metrics import grid_fg_ari, kmeans_fg_ari, kmeans_labels
from ssync_lib.models.encoder import FrozenViT
from ssync_lib.pretrain.config import PretrainConfig
from ssync_lib.pretrain.loop import level_config, mix_entries

SHIPPED_WEIGHTS = "checkpoints/pretrain/dino-ibot-w64d4-mix.safetensors"  # the ViT pretrained here (results/pretrain/)
LAST_BLOCK = "pretrained: last block"  # encoder_views' name of the pretrained ViT read as model.feature_layer=last


def read_encoder_json(weights: str | Path) -> dict:
    """The JSON that ``export_weights`` writes beside a .safetensors file (backbone, kwargs, input size)."""
    path = resolve_path(weights)
    meta = path.with_suffix(".json")
    if not path.is_file() or not meta.is_file():
        raise MissingInputError(f"--weights {path}: expected the .safetensors file and {meta.name} beside it "
                                f"({'found' if path.is_file() else 'missing'} / "
                                f"{'found' if meta.is_file() else 'missing'})",
                                fix="give the vit.safetensors of a pretraining run (python -m ssync_lib pretrain "
                                    "... --export writes both)")
    return json.loads(meta.read_text())


def pretrained_encoder(weights: str | Path, feature_layer: str | int = "last") -> FrozenViT:
    """The pretrained ViT as the slot model's encoder reads it (``model.weights=<file>``)."""
    meta = read_encoder_json(weights)
    return FrozenViT(meta["model.backbone"], weights=str(resolve_path(weights)), feature_layer=feature_layer,
                     input_size=meta["data.input_size"], **meta["model.backbone_kwargs"])


def random_encoder(profile: str) -> FrozenViT:
    """The profile's encoder with the random weights the slot model draws at seed 0."""
    m = get_config(profile).model
    torch.manual_seed(0)
    return FrozenViT(m.backbone, weights=m.weights, feature_layer=m.feature_layer,
                     input_size=get_config(profile).data.input_size, **m.backbone_kwargs)


def _grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(T, N, C) -> (T, h, w, C)."""
    return tokens.reshape(tokens.shape[0], *grid, tokens.shape[-1])


def feature_sets(profile: str, weights: str | Path | None) -> dict:
    """name -> function video (T, 3, S, S) normalised -> features (T, h, w, C) (module docstring)."""
    rand = random_encoder(profile)
    patch = rand.input_size // rand.grid[0]
    sets = {
        "pixels: mean colour": lambda v: F.avg_pool2d(torch.as_tensor(denormalize(v)).movedim(-1, 1),
                                                      patch).movedim(1, -1),
        "pixels: flat patch": lambda v: F.unfold(torch.as_tensor(denormalize(v)).movedim(-1, 1), patch,
                                                 stride=patch).transpose(1, 2).reshape(len(v), *rand.grid, -1),
        f"random: {profile}": lambda v: _grid(rand(v), rand.grid),
    }
    if weights is not None:
        depth = int(read_encoder_json(weights)["model.backbone_kwargs"].get("depth", 12))
        for layer in ["patch_embed", *range(depth)]:
            enc = pretrained_encoder(weights, layer)
            name = "pretrained: " + (layer if layer == "patch_embed" else f"block {layer}")
            sets[name] = lambda v, enc=enc: _grid(enc(v), enc.grid)
    return sets


def num_objects(masks: torch.Tensor) -> int:
    """The ground-truth objects of masks (..., H, W): the ids > 0 (0 = background)."""
    return int((masks.unique() > 0).sum())


def level_datasets(levels: str, input_size: int, max_videos: int) -> dict:
    """level name -> validation dataset (whole videos with masks) of each folder of ``levels``."""
    cfg = PretrainConfig(profile="cpu")
    cfg.data.input_size, cfg.data.max_val_videos, cfg.dino.mix = input_size, max_videos, levels
    out = {}
    for source, folder in mix_entries(cfg):
        lcfg = level_config(cfg, source, folder)
        check_data_root(lcfg)
        out[Path(folder).name] = build_dataset(lcfg, "val")
    return out


def feature_table(levels: str, profile: str = "cpu", weights: str | Path | None = None, max_videos: int = 50,
                  progress: bool = True) -> pd.DataFrame:
    """One row per (level, feature set, video): num_objects and the k-means video FG-ARI (K = objects + 1)."""
    sets = feature_sets(profile, weights)
    input_size = random_encoder(profile).input_size
    rows = []
    for level, data in level_datasets(levels, input_size, max_videos).items():
        for index in tqdm(range(len(data)), desc=f"features {level}", disable=not progress):
            item = data[index]
            masks = item["masks"]  # T S S
            objects = num_objects(masks)
            if not objects:
                continue
            for name, fn in sets.items():
                score = kmeans_fg_ari(fn(item["video"]).float(), masks, objects + 1, seed=0)
                rows.append({"level": level, "features": name, "video": item["id"], "num_objects": objects,
                             "fg_ari": score})
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean video FG-ARI (and the video count) per feature set (rows) and level (columns)."""
    order = list(dict.fromkeys(rows["features"]))
    table = rows.pivot_table(index="features", columns="level", values="fg_ari", aggfunc="mean", sort=False)
    return table.reindex(order).round(3)


# ----------------------------------------------------------------------------- figures

@torch.no_grad()
def cls_attention(enc: FrozenViT, images: torch.Tensor) -> torch.Tensor:
    """The last block's attention of the CLS query over the patches, per head: images (n, 3, S, S) ->
    (n, heads, h, w), each map summing to 1 - (the CLS token's attention to itself)."""
    vit = enc.vit
    x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))  # n 1+N D
    for block in vit.blocks[:-1]:
        x = block(x)
    attn = vit.blocks[-1].attn
    qkv = attn.qkv(vit.blocks[-1].norm1(x)).unflatten(-1, (3, attn.num_heads, -1))  # n 1+N 3 H d
    q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)  # n H 1+N d
    weights = (q[:, :, :1] * attn.scale @ k.transpose(-2, -1)).softmax(-1)[:, :, 0]  # n H 1+N
    prefix = vit.num_prefix_tokens
    return weights[:, :, prefix:].unflatten(-1, enc.grid)


def middle_frame(item: dict) -> int:
    """The frame a figure shows of a clip: the middle one, T // 2."""
    return item["video"].shape[0] // 2


def _examples(data, count: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(frame (3, S, S), mask (S, S)): the middle frame of the first ``count`` validation videos."""
    out = []
    for index in range(min(count, len(data))):
        item = data[index]
        t = middle_frame(item)
        out.append((item["video"][t], item["masks"][t]))
    return out


@dataclass
class EncoderView:
    """What one frozen encoder makes of n clips, one entry per clip (T frames, (h, w) the patch grid, C channels)."""
    features: list[torch.Tensor]  # (T, h, w, C)
    labels: list[torch.Tensor]  # (T, h, w): k-means over all frames together, K = objects + 1, seed 0
    fg_ari: list[float]  # video FG-ARI of ``labels`` against the clip's masks (NaN for a clip without objects)
    attention: torch.Tensor | None  # (n, heads, h, w): the last block's CLS attention on each clip's middle frame;
    # None for a patch embedding, which has no attention to read


def encoder_views(clips: Sequence[dict], weights: str | Path, profile: str = "cpu") -> dict[str, EncoderView]:
    """The random patch embedding ``profile`` reads (``feature_sets``' ``random: <profile>``) and the pretrained
    ViT's last block (``pretrained: block <depth - 1>``, what ``model.feature_layer=last`` reads) on the same clips,
    items of a validation dataset ({"video": (T, 3, S, S) normalised, "masks": (T, S, S)}) at the encoders' input
    size S. Each clip is clustered by k-means with K = its objects + 1 and scored by video FG-ARI, as in
    ``feature_table``."""
    sizes = {random_encoder(profile).input_size, int(read_encoder_json(weights)["data.input_size"])}
    got = {int(item["video"].shape[-1]) for item in clips}
    if len(sizes) > 1 or got - sizes:
        raise ValueError(f"encoder_views: the clips are {sorted(got)} px, the encoders read {sorted(sizes)} px "
                         f"(profile {profile!r}, {Path(weights).name}); build the clips at that data.input_size")
    sets = feature_sets(profile, weights)
    last = pretrained_encoder(weights, "last")
    chosen = {f"random: {profile}": (sets[f"random: {profile}"], None),
              LAST_BLOCK: (sets[f"pretrained: block {len(last.vit.blocks) - 1}"], last)}
    views = {}
    for name, (fn, attending) in chosen.items():
        features = [fn(item["video"]).float() for item in clips]  # T h w C each
        labels = [kmeans_labels(f, num_objects(item["masks"]) + 1, seed=0) for f, item in zip(features, clips)]
        scores = [grid_fg_ari(lab, item["masks"]) for lab, item in zip(labels, clips)]
        attention = None
        if attending is not None:
            attention = cls_attention(attending, torch.stack([item["video"][middle_frame(item)] for item in clips]))
        views[name] = EncoderView(features=features, labels=labels, fg_ari=scores, attention=attention)
    return views


def attention_figure(weights: str | Path, data, level: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    enc = pretrained_encoder(weights, "last")
    examples = _examples(data)
    maps = cls_attention(enc, torch.stack([f for f, _ in examples]))  # n H h w
    heads = maps.shape[1]
    fig, axes = plt.subplots(len(examples), heads + 1, figsize=(1.8 * (heads + 1), 1.8 * len(examples)),
                             squeeze=False)
    for i, (frame, _) in enumerate(examples):
        axes[i, 0].imshow(denormalize(frame[None])[0])
        for h in range(heads):
            axes[i, h + 1].imshow(maps[i, h].numpy(), cmap="inferno")
            if i == 0:
                axes[i, h + 1].set_title(f"head {h}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{level}: last block's CLS attention per head ({Path(weights).name})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pca_figure(weights: str | Path, data, level: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    enc = pretrained_encoder(weights, "last")
    examples = _examples(data)
    feats = enc(torch.stack([f for f, _ in examples]))  # n N D
    flat = feats.reshape(-1, feats.shape[-1]).double()
    flat = flat - flat.mean(0)
    _, _, v = torch.linalg.svd(flat, full_matrices=False)  # PCA fitted on these frames' patches together
    pcs = flat @ v[:3].T  # n*N 3
    pcs = (pcs - pcs.min(0).values) / (pcs.max(0).values - pcs.min(0).values).clamp_min(1e-12)
    pcs = pcs.reshape(len(examples), *enc.grid, 3).float()
    fig, axes = plt.subplots(len(examples), 4, figsize=(7.2, 1.8 * len(examples)), squeeze=False)
    for i, (frame, mask) in enumerate(examples):
        k = num_objects(mask) + 1
        labels = kmeans_labels(feats[i].reshape(1, *enc.grid, -1).float(), k, seed=0)[0]
        panels = [(denormalize(frame[None])[0], None), (pcs[i], None), (labels, "tab20"), (mask, "tab20")]
        for ax, (img, cmap), title in zip(axes[i], panels, ["frame", "PCA (3 comps as RGB)", f"k-means, K={k}",
                                                             "ground truth"]):
            ax.imshow(torch.as_tensor(img).numpy(), cmap=cmap, interpolation="nearest")
            ax.axis("off")
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.suptitle(f"{level}: last block's patch features ({Path(weights).name})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_figure(log_csv: str | Path, path: Path) -> Path:
    """A pretraining run's curves from its log.csv: the two losses, the teacher's entropies against log K, its
    batch mutual information (collapse: -> 0) and KL(teacher || student), per head."""
    import matplotlib.pyplot as plt

    log = pd.read_csv(log_csv)
    meta = json.loads((Path(log_csv).parent / "config.json").read_text())["dino"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    panels = [("loss", ["dino", "ibot"]), ("teacher entropy (nats)", ["teacher_entropy", "teacher_entropy_patch"]),
              ("teacher batch mutual information (nats)", ["teacher_mi", "teacher_mi_patch"]),
              ("KL(teacher || student) (nats)", ["kl", "kl_patch"])]
    for ax, (title, columns) in zip(axes, panels):
        for column, label in zip(columns, ["CLS (DINO)", "patch (iBOT)"]):
            ax.plot(log["step"], log[column], label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    for k, style in ((meta["out_dim"], "--"), (meta["patch_out_dim"], ":")):
        axes[1].axhline(math.log(k), color="grey", linestyle=style, linewidth=0.8)
    axes[1].text(0.02, 0.02, f"grey: log K = {math.log(meta['out_dim']):.2f} (uniform)", transform=axes[1].transAxes,
                 fontsize=7)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _markdown(table: pd.DataFrame) -> str:
    head = ["features", *table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(name), *(f"{v:.3f}" for v in row)]) + " |" for name, row in table.iterrows()]
    return "\n".join(lines)


def feature_table_command(args, argv: list[str]) -> str:
    """``python -m ssync_lib features``: the table, its files and the figures; returns the markdown table."""
    out = resolve_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = feature_table(args.levels, args.profile, args.weights, args.max_videos, progress=not args.no_progress)
    rows.to_csv(out / "features.csv", index=False)
    table = summary(rows)
    table.to_csv(out / "table.csv")
    counts = rows.groupby("level")["video"].nunique().to_dict()
    md = (f"k-means video FG-ARI (K = objects + 1, {args.profile}'s patch grid), mean over the first "
          f"{args.max_videos} validation videos per level ({', '.join(f'{k}: {v}' for k, v in counts.items())})\n\n"
          + _markdown(table))
    (out / "table.md").write_text(md + "\n")
    (out / "command.txt").write_text("python -m ssync_lib " + " ".join(argv) + "\n")
    if args.weights and not args.no_figures:
        for level, data in level_datasets(args.levels, random_encoder(args.profile).input_size, 4).items():
            attention_figure(args.weights, data, level, out / f"attention-{level}.png")
            pca_figure(args.weights, data, level, out / f"pca-{level}.png")
    return md
