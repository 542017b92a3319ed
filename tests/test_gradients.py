"""The gradient report (lab/gradients.py): per-term norms and cosines against one backward pass per term, the terms
against the loss functions themselves, and the report of a checkpoint with overrides."""
import math

import numpy as np
import pytest
import torch

from ssync_lib.checkpoint import FORMAT, save_checkpoint
from ssync_lib.config import get_config
from ssync_lib.lab import gradients as G
from ssync_lib.models import create_model
from ssync_lib.objectives import pseudo_labels, reconstruction_loss, slot_contrast_loss, ssync_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def smoke_model(seed=0):
    torch.manual_seed(seed)
    cfg = get_config("smoke", {"model.slot_init": "learned"})
    return create_model(cfg.model, cfg.data.input_size), cfg


def reference_terms(out, cfg):
    """The weighted terms of the baseline and of SSync, SSync on (docs/method.md §1.7, §4.5), from the losses."""
    labels = pseudo_labels(out.attn_logits.detach(), out.alpha.detach(), out.grid, cfg.merge_iou)
    dec, enc = ssync_loss(out.attn_logits, out.alpha, labels)
    return {"recon": cfg.w_recon * reconstruction_loss(out.recon, out.features),
            "slot_contrast": cfg.w_slot_contrast * slot_contrast_loss(out.slots, cfg.slot_contrast_tau),
            "ssync_dec": cfg.w_ssync_dec * dec, "ssync_enc": cfg.w_ssync_enc * enc}


@pytest.mark.parametrize("objective", ["baseline", "ssync"])
def test_gradient_report_matches_per_term_backward(objective):
    model, cfg = smoke_model()
    cfg.objective.name = objective  # the report asks for SSync's terms whatever the model was trained with
    video = torch.randn(2, 3, 3, cfg.data.input_size, cfg.data.input_size)
    report = G.gradient_report(model, cfg.objective, {"video": video})
    assert all(p.grad is None for p in model.parameters())  # .grad left untouched
    out = model(video)
    terms = reference_terms(out, cfg.objective)
    vectors = {}
    for term, loss in terms.items():  # one backward per term into .grad
        model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        for group in ("encoder", "decoder"):
            parts = [p.grad.flatten().double() if p.grad is not None else torch.zeros(p.numel(), dtype=torch.double)
                     for name, p in model.named_parameters()
                     if p.requires_grad and name.startswith("decoder.") == (group == "decoder")]
            vectors[group, term] = torch.cat(parts).numpy()
    assert len(report) == 8 and set(report.group) == {"encoder", "decoder"} and set(report.term) == set(G.TERMS)
    for row in report.itertuples():
        v = vectors[row.group, row.term]
        assert row.norm == pytest.approx(float(np.linalg.norm(v)), rel=1e-6, abs=1e-12)
        assert row.loss == pytest.approx(float(terms[row.term].detach()))
        for other in G.TERMS:
            u = vectors[row.group, other]
            denom = np.linalg.norm(v) * np.linalg.norm(u)
            expected = float(v @ u / denom) if denom > 0 else math.nan
            assert getattr(row, f"cos_{other}") == pytest.approx(expected, rel=1e-6, abs=1e-9, nan_ok=True)
    rows = report.set_index(["group", "term"])
    assert rows.loc[("decoder", "ssync_enc"), "norm"] == 0.0  # the encoder loss never reaches the decoder
    assert rows.loc[("decoder", "slot_contrast"), "norm"] == 0.0
    assert rows.loc[("encoder", "recon"), "cos_recon"] == pytest.approx(1.0)
    assert rows.loc[("encoder", "ssync_dec"), "norm"] > 0 and rows.loc[("decoder", "ssync_dec"), "norm"] > 0


def test_gradient_report_checkpoint(tmp_path):
    from ssync_lib.data.synthetic import generate_from_config

    model, cfg = smoke_model(1)
    cfg.data.root, cfg.data.num_train, cfg.data.num_val = str(tmp_path / "data"), 5, 2
    generate_from_config(cfg, workers=1, progress=False)
    path = save_checkpoint(tmp_path / "last.pt", {"format": FORMAT, "config": cfg.to_dict(),
                                                  "model": model.state_dict(), "step": 7})
    report = G.gradient_report_checkpoint(path, overrides={"objective.w_ssync_dec": 2.0}, num_clips=3)
    assert list(report.columns[:3]) == ["checkpoint", "step", "clips"]
    assert (report.step == 7).all() and (report.clips == 3).all() and (report.checkpoint == str(path)).all()
    doubled = G.gradient_report_checkpoint(tmp_path, num_clips=3)  # the run folder: its last.pt
    ratio = report.set_index(["group", "term"]).norm / doubled.set_index(["group", "term"]).norm
    assert ratio.loc[("encoder", "ssync_dec")] == pytest.approx(2.0)  # the override reached the weights
    assert ratio.loc[("encoder", "recon")] == pytest.approx(1.0)
