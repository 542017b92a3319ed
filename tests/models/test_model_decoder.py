"""MLP broadcast decoder (docs/method.md §1.6)."""
import pytest
import torch
from torch import nn

from ssync_lib.models.decoder import MLPBroadcastDecoder
from ssync_lib.models.position import patch_coordinates


def test_decoder_shapes_masks_and_reconstruction():
    torch.manual_seed(0)
    dec = MLPBroadcastDecoder(slot_dim=8, feature_dim=12, grid=(2, 3), hidden=32, layers=3)
    linears = [m for m in dec.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 32), (32, 32), (32, 32), (32, 13)]
    assert dec.pos_emb.shape == (1, 6, 8)
    slots = torch.randn(2, 3, 8)
    recon, alpha, masks = dec(slots)
    assert recon.shape == (2, 6, 12) and alpha.shape == masks.shape == (2, 3, 6)
    out = dec.mlp(slots[:, :, None] + dec.pos_emb[:, None])  # B S N D+1, the per-slot outputs
    torch.testing.assert_close(alpha, out[..., -1])
    torch.testing.assert_close(masks, alpha.softmax(dim=1))
    torch.testing.assert_close(recon, (masks[..., None] * out[..., :-1]).sum(dim=1))
    recon.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in dec.parameters())


def test_linear_position_embedding_is_a_linear_map_of_patch_coordinates():
    torch.manual_seed(0)
    dec = MLPBroadcastDecoder(slot_dim=8, feature_dim=12, grid=(2, 3), hidden=16, layers=2, pos_embed="linear")
    coords = patch_coordinates((2, 3))
    assert coords.tolist() == [[-1, -1], [-1, 0], [-1, 1], [1, -1], [1, 0], [1, 1]]  # (row, col), row-major
    lin = dec.pos_linear.linear
    slots = torch.randn(2, 3, 8)
    recon, alpha, _ = dec(slots)
    out = dec.mlp(slots[:, :, None] + (coords @ lin.weight.T + lin.bias)[None, None])
    torch.testing.assert_close(alpha, out[..., -1])
    recon.square().mean().backward()
    assert lin.weight.grad.abs().sum() > 0


def test_unknown_position_embedding_names_the_key():
    with pytest.raises(ValueError, match="model.decoder_pos_embed"):
        MLPBroadcastDecoder(slot_dim=8, feature_dim=12, grid=(2, 3), pos_embed="sine")
