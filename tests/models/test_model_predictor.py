"""Slot predictor: one pre-norm transformer block over the slots (docs/method.md §1.5)."""
import torch
import torch.nn.functional as F

from ssync_lib.models.predictor import SlotPredictor


def reference(pred: SlotPredictor, slots, heads=4):
    """x + MHA(LN1 x), then + FFN(LN2 x), written out with the block's weights."""
    blk = pred.block
    b, s, d = slots.shape
    x = F.layer_norm(slots, (d,), blk.norm1.weight, blk.norm1.bias)
    q, k, v = (x @ blk.self_attn.in_proj_weight.T + blk.self_attn.in_proj_bias).chunk(3, dim=-1)
    split = lambda t: t.view(b, s, heads, d // heads).transpose(1, 2)  # B h S d/h
    attn = (split(q) @ split(k).transpose(-1, -2) / (d // heads) ** 0.5).softmax(-1)
    mixed = (attn @ split(v)).transpose(1, 2).reshape(b, s, d)
    x = slots + mixed @ blk.self_attn.out_proj.weight.T + blk.self_attn.out_proj.bias
    h = F.layer_norm(x, (d,), blk.norm2.weight, blk.norm2.bias)
    return x + blk.linear2(torch.relu(blk.linear1(h)))


def test_predictor_is_one_prenorm_block_with_4_heads_and_ffn_4d():
    torch.manual_seed(0)
    pred = SlotPredictor(slot_dim=16, num_heads=4)
    assert pred.block.linear1.out_features == 64 and pred.block.self_attn.num_heads == 4
    slots = torch.randn(2, 5, 16)
    out = pred(slots)
    assert out.shape == (2, 5, 16)
    torch.testing.assert_close(out, reference(pred, slots), rtol=1e-5, atol=1e-5)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pred.parameters())
    pred.eval()
    with torch.no_grad():  # PyTorch's inference fast path computes the same block
        torch.testing.assert_close(pred(slots), reference(pred, slots), rtol=1e-5, atol=1e-5)
