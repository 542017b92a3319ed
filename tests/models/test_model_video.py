"""The video slot model end to end (docs/method.md §1): shapes, gradients, frozen encoder, determinism."""
import pytest
import torch

from ssync_lib.config import ModelConfig
from ssync_lib.models import ModelOutput, VideoSlotModel, create_model

SIZE = 64  # 4x4 grid with patch 16; a narrow one-block ViT (D=48) keeps the tests fast


def tiny_cfg(**overrides) -> ModelConfig:
    cfg = ModelConfig(backbone="vit_small_patch16_224.dino", weights="random", feature_layer="last",
                      backbone_kwargs=dict(depth=1, embed_dim=48, num_heads=2), num_slots=3, slot_dim=16, decoder_hidden=32, decoder_layers=2)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def build(seed=0, **overrides) -> VideoSlotModel:
    torch.manual_seed(seed)
    return create_model(tiny_cfg(**overrides), SIZE)


def video(b=2, t=3, seed=0):
    return torch.randn(b, t, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_output_fields_and_shapes():
    model = build(use_keys=True)
    assert model.grid == (4, 4) and model.feature_dim == 48
    out = model(video())
    assert isinstance(out, ModelOutput) and out.grid == (4, 4)
    b, t, s, n, d, D = 2, 3, 3, 16, 16, 48
    assert out.slots.shape == (b, t, s, d)
    for name in ("attn", "attn_logits", "alpha", "masks"):
        assert getattr(out, name).shape == (b, t, s, n), name
    assert out.recon.shape == out.features.shape == out.keys.shape == (b, t, n, D)
    assert out.projected.shape == (b, t, n, d)
    torch.testing.assert_close(out.attn, out.attn_logits.softmax(dim=2))  # softmax over slots
    torch.testing.assert_close(out.masks, out.alpha.softmax(dim=2))
    torch.testing.assert_close(out.features, model.encode(video()))
    assert not out.features.requires_grad and build()(video()).keys is None


@pytest.mark.parametrize("pos", [{}, {"input_pos_embed": "linear", "decoder_pos_embed": "linear"}])
def test_one_step_reaches_slot_modules_and_never_the_encoder(pos):
    model = build(**pos)
    model.train()
    assert not model.encoder.training  # frozen: eval mode even in a training model
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    out = model(video())
    loss = (out.recon - out.features).square().mean()  # §1.7 reconstruction
    loss.backward()
    for name, p in model.named_parameters():
        if name.startswith("encoder."):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    opt.step()
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder_before.items())
    assert model(video()).recon.ne(out.recon).any()  # the step changed the trainable part


def test_iterations_and_predictor_calls_per_frame(monkeypatch):
    model = build()
    calls = {"step": 0, "predictor": 0}
    step, predict = model.slot_attention.step, model.predictor.forward

    def counting_step(*args):
        calls["step"] += 1
        return step(*args)

    def counting_predict(*args):
        calls["predictor"] += 1
        return predict(*args)

    monkeypatch.setattr(model.slot_attention, "step", counting_step)
    monkeypatch.setattr(model.predictor, "forward", counting_predict)
    model(video(b=1, t=4))
    assert calls == {"step": 3 + 2 + 2 + 2, "predictor": 3}  # 3 iterations on frame 0, 2 later (§1.4)


@pytest.mark.parametrize("slot_init", ["learned", "gaussian"])
def test_deterministic_with_a_seed(slot_init):
    outs = []
    for _ in range(2):
        model = build(seed=3, slot_init=slot_init)
        torch.manual_seed(7)
        outs.append(model(video()))
    for name in ("slots", "attn_logits", "alpha", "recon"):
        assert torch.equal(getattr(outs[0], name), getattr(outs[1], name)), name


def test_precomputed_features_and_chunks_give_the_same_output():
    model = build(slot_init="learned")
    model.eval()
    x = video(b=2, t=5)
    with torch.no_grad():
        full = model(x)
        from_features = model.forward_from_features(model.encode(x))
        model.chunk_frames = 3  # encoder and decoder 3 frames at a time (long validation videos)
        chunked = model(x)
    for name in ("slots", "attn", "attn_logits", "alpha", "masks", "recon", "features"):
        torch.testing.assert_close(getattr(from_features, name), getattr(full, name), rtol=0, atol=0)
        torch.testing.assert_close(getattr(chunked, name), getattr(full, name), rtol=1e-5, atol=1e-6)


def test_shape_errors_are_clear():
    model = build()
    with pytest.raises(ValueError, match=r"expected a video \(B, T, 3, H, W\)"):
        model(torch.randn(2, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="do not match the encoder"):
        model.forward_from_features(torch.randn(1, 2, 9, 48))


def test_input_position_embedding_is_added_before_the_projection():
    model = build(input_pos_embed="linear")
    out = model(video())
    expected = model.projection(out.features + model.input_pos())  # B T N d
    torch.testing.assert_close(out.projected, expected)
    assert model.input_pos().shape == (1, 16, 48)
    with pytest.raises(ValueError, match="model.input_pos_embed"):
        build(input_pos_embed="sine")


def test_attention_iterations_end_in_the_encoder_attention():
    from ssync_lib.config import get_config
    from ssync_lib.models import create_model
    from ssync_lib.lab.notebook import attention_iterations, run_on_clip

    cfg = get_config("smoke")
    model = create_model(cfg.model, cfg.data.input_size).eval()
    video = torch.randn(3, 3, cfg.data.input_size, cfg.data.input_size)
    iters = attention_iterations(model, video, seed=1)
    out = run_on_clip(model, video, seed=1)
    h, w = model.grid
    assert len(iters) == 3 and iters[0].shape == (cfg.model.iters_first, cfg.model.num_slots, h, w)
    assert iters[1].shape[0] == cfg.model.iters
    for t in range(3):
        torch.testing.assert_close(iters[t][-1], out.attn[0, t].unflatten(-1, (h, w)))
