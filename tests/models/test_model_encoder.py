"""Frozen timm ViT encoder (docs/method.md §1.1): grids, feature choice, weight loading, clear errors."""
import os
import subprocess
import sys

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ssync_lib.models.encoder import FrozenViT

DINO = "vit_small_patch16_224.dino"  # one CLS token, position embedding covers the CLS token
NARROW = dict(embed_dim=48, num_heads=2)  # a narrow ViT keeps the loading tests fast


def images(size, n=1, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size, grid", [(336, (24, 24)), (518, (37, 37))])
def test_dinov2_grid_follows_input_size(size, grid):
    enc = FrozenViT("vit_small_patch14_dinov2", "random", input_size=size, depth=1)
    assert enc.grid == grid and enc.feature_dim == 384
    assert enc(images(size)).shape == (1, grid[0] * grid[1], 384)


def test_last_block_matches_timm_intermediates_and_drops_registers():
    torch.manual_seed(0)
    enc = FrozenViT("vit_small_patch14_reg4_dinov2", "random", input_size=56, depth=2)
    assert enc.vit.num_prefix_tokens == 5  # CLS + 4 registers
    x = images(56, n=2)
    reference = enc.vit.forward_intermediates(x, indices=1, output_fmt="NLC", intermediates_only=True)[0]
    features = enc(x)
    assert features.shape == (2, 16, 384)
    torch.testing.assert_close(features, reference)  # last block, before the final norm, prefix dropped


def test_block_index_and_keys_match_timm():
    torch.manual_seed(0)
    enc = FrozenViT(DINO, "random", feature_layer="0", input_size=64, use_keys=True, depth=3, **NARROW)
    assert len(enc.vit.blocks) == 1  # later blocks are never run and are freed
    ref = timm.create_model(DINO, num_classes=0, img_size=64, depth=3, **NARROW)
    ref.load_state_dict(enc.vit.state_dict(), strict=False)
    ref.eval()
    captured = {}
    ref.blocks[0].attn.qkv.register_forward_hook(lambda m, i, o: captured.setdefault("qkv", o))
    x = images(64)
    reference = ref.forward_intermediates(x, indices=[0], output_fmt="NLC", intermediates_only=True)[0]
    features, keys = enc(x)
    torch.testing.assert_close(features, reference)
    _, k, _ = captured["qkv"][:, 1:].chunk(3, dim=-1)  # CLS dropped; timm's layout is (3, heads, head_dim)
    torch.testing.assert_close(keys, k)


def test_patch_embed_is_patch_projection_plus_position_embedding():
    torch.manual_seed(0)
    enc = FrozenViT(DINO, "random", feature_layer="patch_embed", input_size=32, depth=1)
    assert len(enc.vit.blocks) == 0 and enc.grid == (2, 2)
    x = images(32)
    proj = enc.vit.patch_embed.proj
    patches = F.conv2d(x, proj.weight, proj.bias, stride=16).flatten(2).transpose(1, 2)  # 1 N D
    torch.testing.assert_close(enc(x), patches + enc.vit.pos_embed[:, 1:])  # pos_embed[:, 0] is the CLS's


def test_frozen_in_train_mode_and_without_grad():
    enc = FrozenViT(DINO, "random", input_size=32, depth=1)
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())
    x = images(32).requires_grad_()
    assert not enc(x).requires_grad


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_random_vit_saved_to_disk_loads_back_with_identical_features(tmp_path, suffix):
    torch.manual_seed(1)
    original = FrozenViT(DINO, "random", input_size=64, depth=2, **NARROW)
    path = tmp_path / f"vit{suffix}"
    state = {k: v.contiguous() for k, v in original.vit.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "epoch": 3}, path)  # a training-checkpoint wrapper
    torch.manual_seed(2)  # a different random init, overwritten by the file
    loaded = FrozenViT(DINO, str(path), input_size=64, depth=2, **NARROW)
    other = FrozenViT(DINO, "random", input_size=64, depth=2, **NARROW)
    x = images(64)
    assert torch.equal(loaded(x), original(x))
    assert not torch.allclose(other(x), original(x))


def test_checkpoint_at_another_resolution_is_resampled_on_load(tmp_path):
    """A checkpoint saved at timm's default 224 px loads at 64 px (timm's position-embedding resampling)."""
    vit224 = timm.create_model(DINO, num_classes=0, depth=1, **NARROW)
    save_file(vit224.state_dict(), str(tmp_path / "vit224.safetensors"))
    enc = FrozenViT(DINO, str(tmp_path / "vit224.safetensors"), input_size=64, depth=1, **NARROW)
    assert enc.grid == (4, 4)
    torch.testing.assert_close(enc.vit.patch_embed.proj.weight, vit224.patch_embed.proj.weight)


def test_bad_checkpoint_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FrozenViT(DINO, str(tmp_path / "missing.safetensors"), input_size=32, depth=1)
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported checkpoint type '.npz'"):
        FrozenViT(DINO, str(tmp_path / "weights.npz"), input_size=32, depth=1)
    save_file({"foo": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(RuntimeError, match="does not fit"):
        FrozenViT(DINO, str(tmp_path / "other.safetensors"), input_size=32, depth=1)
    save_file(timm.create_model(DINO, num_classes=0, depth=1, **NARROW).state_dict(), str(tmp_path / "narrow.safetensors"))
    with pytest.raises(RuntimeError, match="(?s)narrow.safetensors does not fit .*size mismatch"):
        FrozenViT(DINO, str(tmp_path / "narrow.safetensors"), input_size=32, depth=1, embed_dim=64, num_heads=2)


def test_absent_timm_weights_offline_give_clear_error(tmp_path):
    """HF_HUB_OFFLINE=1 and an empty cache (HF_HOME=tmp_path): run in a fresh interpreter, since
    huggingface_hub reads these variables when it is imported."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path), TORCH_HOME=str(tmp_path / "torch"))
    code = ("from ssync_lib.models.encoder import FrozenViT\n"
            "FrozenViT('vit_small_patch14_dinov2', 'timm', input_size=336, depth=1)\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode != 0
    message = next(line for line in result.stderr.splitlines() if "Error: model.weights='timm'" in line)
    assert message.startswith("ssync_lib.errors.MissingInputError: model.weights='timm'")  # a FileNotFoundError
    assert "vit_small_patch14_dinov2" in message and "timm/vit_small_patch14_dinov2.lvd142m" in message
    assert str(tmp_path / "hub") in message  # where it looked
    assert "HF_HUB_OFFLINE is set and they are not cached" in message  # no download tried (issue 32)
    assert "fix: " in result.stderr and "model.weights=/path/to/file" in result.stderr  # how to provide the file


def test_unknown_name_lists_close_timm_names():
    with pytest.raises(ValueError, match="unknown timm model 'vit_small_patch14_dinov'") as err:
        FrozenViT("vit_small_patch14_dinov", "random", input_size=28)
    assert "'vit_small_patch14_dinov2'" in str(err.value)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="feature_layer: 'middle'"):
        FrozenViT(DINO, "random", feature_layer="middle", input_size=32, depth=1)
    with pytest.raises(ValueError, match="block 5 out of range for 2 blocks"):
        FrozenViT(DINO, "random", feature_layer=5, input_size=32, depth=2)
    with pytest.raises(ValueError, match="use_keys needs a transformer block"):
        FrozenViT(DINO, "random", feature_layer="patch_embed", input_size=32, use_keys=True, depth=1)
    with pytest.raises(ValueError, match="img_size"):
        FrozenViT(DINO, "random", input_size=32, img_size=64)
    enc = FrozenViT(DINO, "random", input_size=32, depth=1)
    with pytest.raises(ValueError, match="expected images of 32x32"):
        enc(images(48))
