"""Parity with the public code (issue 20): the public SSync / SlotContrast models' state dicts, loaded through
``ssync_lib.official``, give the public outputs on the same input; SSync's pseudo-labels and losses equal the
public ones on the same logits. The fixtures were made by running the public code (tests/fixtures/README.md)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssync_lib.config import ModelConfig
from ssync_lib.objectives.ssync import pseudo_labels, ssync_loss
from ssync_lib.official import (KEY_MAP, OfficialCheckpointError, convert_state_dict, load_official,
                                read_official_state)

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-5
# the model of make_parity_fixture.py's configuration, in this library's terms
PARITY_CFG = ModelConfig(backbone="vit_small_patch14_dinov2", weights="random", feature_layer="last",
                         backbone_kwargs={"embed_dim": 48, "depth": 2, "num_heads": 3}, use_keys=True,
                         num_slots=4, slot_dim=32, slot_init="learned", iters_first=3, iters=2, mlp_hidden_factor=4,
                         predictor_heads=4, decoder_hidden=64, decoder_layers=3)
INPUT_SIZE = 56


def _fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as z:
        return {k: z[k] for k in z.files}


def _state(fx: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k[len("state/"):]: torch.from_numpy(v) for k, v in fx.items() if k.startswith("state/")}


@pytest.fixture(scope="module", params=["ssync_parity.npz", "slotcontrast_parity.npz"])
def parity(request, tmp_path_factory):
    """(fixture arrays, converted model, its outputs) for the public SSync and SlotContrast models; the model is
    loaded from a Lightning-style .ckpt written from the fixture's state dict."""
    fx = _fixture(request.param)
    path = tmp_path_factory.mktemp("official") / "public.ckpt"
    torch.save({"state_dict": _state(fx), "global_step": 0, "pytorch-lightning_version": "1.9.5"}, path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, report = load_official(path, PARITY_CFG, INPUT_SIZE)
        with torch.no_grad():
            out = model(torch.from_numpy(fx["video"]))
            predicted = torch.stack([model.predictor(out.slots[:, t]) for t in range(out.slots.shape[1])], 1)
    finally:
        torch.set_num_threads(threads)
    return fx, model, report, out, predicted


# library output attribute -> fixture array of the public model
OUTPUTS = {"features": "backbone_features", "keys": "keys", "projected": "projected", "slots": "slots",
           "attn": "attn", "masks": "masks", "recon": "recon"}


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_outputs_equal_public(parity, name):
    fx, _, _, out, _ = parity
    got, want = getattr(out, name), torch.from_numpy(fx[OUTPUTS[name]])
    assert got.shape == want.shape
    diff = (got - want).abs().max().item()
    assert diff <= TOL, f"{name}: max abs diff {diff:.3g} against the public model"


@pytest.mark.parametrize("name", ["attn_logits", "alpha"])
def test_logits_equal_public_ssync(parity, name):
    fx, _, _, out, _ = parity
    if name not in fx:
        pytest.skip("SlotContrast's model returns no logits (only their softmax, checked above)")
    diff = (getattr(out, name) - torch.from_numpy(fx[name])).abs().max().item()
    assert diff <= TOL, f"{name}: max abs diff {diff:.3g} against the public model"


def test_predictor_equals_public(parity):
    """The public predictor's output per frame (the next frame's initial slots), including the last frame."""
    fx, _, _, _, predicted = parity
    diff = (predicted - torch.from_numpy(fx["slots_predicted"])).abs().max().item()
    assert diff <= TOL, f"predictor: max abs diff {diff:.3g}"


def test_every_public_key_mapped(parity):
    fx, model, report, _, _ = parity
    state = _state(fx)
    assert set(report.mapped) == set(state)  # every key of the public model, nothing dropped
    assert report.kept == ["encoder.vit.norm.weight", "encoder.vit.norm.bias"]  # unused final norm only
    assert "encoder.vit.pos_embed" in report.transformed  # 5x5 -> 4x4, as the public dynamic_img_size does
    meta = json.loads(str(fx["meta"]))
    assert meta["state_keys"] == list(state)


def test_plain_state_dict_and_errors(tmp_path):
    fx = _fixture("ssync_parity.npz")
    state = _state(fx)
    plain = tmp_path / "plain.pth"
    torch.save(state, plain)
    assert read_official_state(plain).keys() == state.keys()
    model, _ = load_official(plain, PARITY_CFG, INPUT_SIZE)

    extra = dict(state, **{"processor.module.predictor.blocks.1.linear1.weight": torch.zeros(128, 32)})
    with pytest.raises(OfficialCheckpointError, match=r"blocks\.1\.linear1\.weight"):
        convert_state_dict(extra, model, source="two_blocks.ckpt")
    wrong = dict(state, **{"initializer.slots": torch.zeros(1, 7, 32)})
    with pytest.raises(OfficialCheckpointError, match=r"(?s)wrong\.ckpt.*initializer\.slots \(1, 7, 32\)"):
        convert_state_dict(wrong, model, source="wrong.ckpt")
    partial = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    with pytest.raises(OfficialCheckpointError, match=r"does not fill: decoder\.pos_emb"):
        convert_state_dict(partial, model, source="partial.ckpt")
    gaussian = {k: v for k, v in state.items() if k != "initializer.slots"}
    gaussian.update({"initializer.mean": torch.zeros(1, 1, 32), "initializer.log_std": torch.zeros(1, 1, 32)})
    with pytest.raises(OfficialCheckpointError, match="model.slot_init=gaussian"):
        convert_state_dict(gaussian, model, source="videosaur.ckpt")
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": state, "hparams": Path("x")}, pickled)
    with pytest.raises(OfficialCheckpointError, match="weights_only"):
        read_official_state(pickled)


def test_image_model_keys_map():
    """The public COCO (image) model has no MapOverTime / ScanOverTime wrapper: keys without ``module.``."""
    import re
    for key in ("encoder.backbone.model.blocks.3.attn.qkv.weight", "processor.corrector.gru.weight_ih",
                "decoder.mlp.layers.6.bias", "decoder.pos_emb", "encoder.output_transform.layers.3.weight"):
        assert any(re.fullmatch(p, key) for p, _, _ in KEY_MAP), key


def test_ssync_labels_and_losses_equal_public():
    """Public SSync labels, losses and gradients on one random batch (its forward pass on given logits)."""
    fx = _fixture("ssync_labels.npz")
    attn_logits = torch.from_numpy(fx["attn_logits"]).requires_grad_()
    alpha = torch.from_numpy(fx["alpha"]).requires_grad_()
    grid = tuple(int(g) for g in fx["grid"])
    labels = pseudo_labels(attn_logits, alpha, grid, merge_iou=float(fx["merge_iou"]))
    for ours, theirs in (("enc_unmerged", "original_grp_labels"), ("dec_unmerged", "original_dec_labels"),
                         ("enc_labels", "merged_grp_labels"), ("dec_labels", "merged_dec_labels"),
                         ("boundary", "is_boundary"), ("interior", "is_not_boundary")):
        want = torch.from_numpy(fx[theirs])
        got = getattr(labels, ours).to(want.dtype)
        assert torch.equal(got, want), f"{ours} differs from the public {theirs} at {(got != want).sum()} patches"
    assert int(labels.boundary.sum()) > 0 and int(labels.interior.sum()) > 0
    assert int((labels.slot_map != torch.arange(labels.slot_map.shape[1])).sum()) > 0  # merging happened
    loss_dec, loss_enc = ssync_loss(attn_logits, alpha, labels)
    assert abs(loss_dec.item() - float(fx["loss_grp2deccls"])) <= TOL
    assert abs(loss_enc.item() - float(fx["loss_dec2grpcls"])) <= TOL
    (loss_dec + loss_enc).backward()
    for ours, theirs in ((alpha.grad, "grad_alpha"), (attn_logits.grad, "grad_attn_logits")):
        want = torch.from_numpy(fx[theirs])  # means over many patches: small, so relative to the largest entry
        assert (ours - want).abs().max().item() <= TOL * want.abs().max().item(), theirs


# The public SSync YAMLs (configs/SSync/*.yaml at the commit in tests/fixtures/README.md), the values our
# published profiles must carry; docs/official-configs.md has the full key-by-key table.
PUBLIC_SSYNC = {
    "movi_c": dict(backbone="vit_small_patch14_dinov2", input_size=336, num_slots=11, slot_dim=64, decoder_hidden=1024,
                   max_steps=100_000, lr=8e-4, merge_iou=0.7),
    "movi_e": dict(backbone="vit_base_patch14_dinov2", input_size=336, num_slots=15, slot_dim=128, decoder_hidden=1024,
                   max_steps=300_000, lr=8e-4, merge_iou=0.65),
    "ytvis": dict(backbone="vit_base_patch14_dinov2", input_size=518, num_slots=7, slot_dim=64, decoder_hidden=1024,
                  max_steps=100_000, lr=8e-4, merge_iou=0.6),
    "coco": dict(backbone="vit_small_patch14_dinov2", input_size=224, num_slots=7, slot_dim=64, decoder_hidden=2048,
                 max_steps=100_000, lr=8e-4, merge_iou=0.9),
}


@pytest.mark.parametrize("profile", list(PUBLIC_SSYNC))
def test_published_profiles_match_public_configs(profile):
    from ssync_lib.config import get_config
    cfg, want = get_config(profile), PUBLIC_SSYNC[profile]
    got = dict(backbone=cfg.model.backbone, input_size=cfg.data.input_size, num_slots=cfg.model.num_slots,
               slot_dim=cfg.model.slot_dim, decoder_hidden=cfg.model.decoder_hidden, max_steps=cfg.train.max_steps,
               lr=cfg.train.lr, merge_iou=cfg.objective.merge_iou)
    assert got == want
    shared = (cfg.train.warmup_steps, cfg.train.grad_clip, cfg.model.iters_first, cfg.model.iters,
              cfg.model.predictor_heads, cfg.model.decoder_layers, cfg.model.slot_init, cfg.objective.w_recon,
              cfg.objective.ssync_warmup_frac, cfg.objective.w_ssync_dec, cfg.objective.w_ssync_enc)
    assert shared == (2500, 0.05, 3, 2, 4, 3, "learned", 1.0, 0.3, 1.0, 1.0)
    assert cfg.objective.w_slot_contrast == (0.0 if profile == "coco" else 0.5)  # 0 at T=1: docs/official-configs.md


def test_evaluate_official_from_the_command_line(tmp_path, capsys):
    """``python -m ssync_lib evaluate --official PATH --profile P``: the converted public model on smoke data."""
    from ssync_lib.__main__ import main
    from ssync_lib.config import get_config
    from ssync_lib.data import synthetic

    data = tmp_path / "data"
    synthetic.generate_from_config(get_config("smoke", {"data.root": str(data)}), workers=1, progress=False)
    ckpt = tmp_path / "public.ckpt"
    torch.save({"state_dict": _state(_fixture("ssync_parity.npz"))}, ckpt)
    like_fixture = ["model.backbone=vit_small_patch14_dinov2", "model.feature_layer=last",
                    'model.backbone_kwargs={"embed_dim": 48, "depth": 2, "num_heads": 3}', "model.slot_dim=32",
                    "model.slot_init=learned", "model.decoder_hidden=64", "model.decoder_layers=3",
                    f"data.input_size={INPUT_SIZE}"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["evaluate", "--official", str(ckpt), "--profile", "smoke", "--max-videos", "2", "--no-progress",
                     "--data-root", str(data), "--set", *like_fixture]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    assert "77 public keys mapped" in out.err
    metrics = json.loads((tmp_path / "metrics-official-public.json").read_text())["metrics"]
    assert metrics["num_videos"] == 2 and 0.0 <= metrics["decoder/video/fg_ari"] <= 1.0
    assert json.loads(out.out)["num_videos"] == 2
