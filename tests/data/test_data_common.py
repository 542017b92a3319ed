"""Shared pieces: normalisation, resizing, chunk choice, denormalize."""
import numpy as np
import pytest
import torch

from ssync_lib.config import IMAGENET_MEAN, IMAGENET_STD
from ssync_lib.data import denormalize
from ssync_lib.data.common import chunk_start, preprocess_video, resize_masks


def test_preprocess_normalises_each_channel():
    frames = np.random.default_rng(0).integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    video = preprocess_video(frames, 5)
    assert video.dtype == torch.float32 and video.shape == (3, 3, 5, 5)
    for c in range(3):
        expected = (frames[..., c] / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        np.testing.assert_allclose(video[:, c].numpy(), expected, atol=1e-6)


def test_preprocess_resizes_bilinear():
    frames = np.full((2, 4, 6, 3), 77, np.uint8)
    frames[:, :, 3:] = 200  # left half 77, right half 200
    video = denormalize(preprocess_video(frames, 8)).numpy() * 255  # 2 8 8 3
    assert video.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(video[:, :, 0], 77, atol=1e-3)  # far from the edge: unchanged
    np.testing.assert_allclose(video[:, :, -1], 200, atol=1e-3)
    # column 3 of 8 samples x = (3 + 0.5) * 6 / 8 - 0.5 = 2.125: between source columns 2 (77) and 3 (200)
    np.testing.assert_allclose(video[:, :, 3], 77 + 0.125 * (200 - 77), atol=1e-3)
    rows = np.unique(video.reshape(2, 8, -1), axis=1)
    assert rows.shape[1] == 1  # every row the same: no mixing across rows of a constant column


def test_resize_masks_nearest_against_index_formula():
    masks = np.random.default_rng(1).integers(0, 9, (2, 7, 5))
    for size in (3, 5, 11):
        out = resize_masks(masks, size)
        assert out.dtype == torch.int64 and out.shape == (2, size, size)
        rows = np.minimum(np.floor((np.arange(size) + 0.5) * 7 / size).astype(int), 6)
        cols = np.minimum(np.floor((np.arange(size) + 0.5) * 5 / size).astype(int), 4)
        np.testing.assert_array_equal(out.numpy(), masks[:, rows][:, :, cols])


def test_chunk_start_is_aligned_deterministic_and_covers_all_chunks():
    starts = {chunk_start(0, e, 3, num_frames=13, chunk_len=4) for e in range(60)}
    assert starts == {0, 4, 8}  # the last 1 frame never starts a chunk
    assert chunk_start(5, 2, 7, 24, 4) == chunk_start(5, 2, 7, 24, 4)
    assert len({chunk_start(5, 2, i, 24, 4) for i in range(50)}) > 1


def test_denormalize_layouts_and_types():
    frames = np.random.default_rng(2).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    video = preprocess_video(frames, 6)  # T 3 H W
    out = denormalize(video)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 6, 6, 3)
    np.testing.assert_allclose(out.numpy(), frames / 255.0, atol=1e-6)
    batch = denormalize(torch.stack([video, video]).numpy())  # B T 3 H W, numpy in -> numpy out
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 4, 6, 6, 3)
    assert batch.min() >= 0 and batch.max() <= 1
    assert denormalize(torch.full((1, 3, 2, 2), 100.0)).max() == 1  # clamped
    with pytest.raises(ValueError, match=r"\(T,3,H,W\) or \(B,T,3,H,W\), got shape \(4, 6, 6, 3\)"):
        denormalize(torch.zeros(4, 6, 6, 3))


# ----------------------------------------------------------------------------- the published preprocessing (issue 32)

def keys_cubic_matrix(src: int, dst: int, a: float = -0.75) -> np.ndarray:
    """(dst, src) matrix of bicubic interpolation with Keys' kernel (a = -0.75, as torch and OpenCV), half-pixel
    centres (align_corners=False) and edge pixels repeated: a plain loop, independent of torch's kernel."""
    def kernel(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a if x < 2 else 0.0

    weights = np.zeros((dst, src))
    for i in range(dst):
        x = (i + 0.5) * src / dst - 0.5
        left = int(np.floor(x))
        for j in range(left - 1, left + 3):
            weights[i, min(max(j, 0), src - 1)] += kernel(x - j)
    return weights


def movi_like_video(size: int = 128, frames: int = 2) -> np.ndarray:
    """A fabricated MOVi-like clip (T,H,W,3) uint8: a smooth background, sharp-edged saturated objects (where
    bicubic overshoots and the clamp acts) and a little noise."""
    rng = np.random.default_rng(32)
    yy, xx = np.mgrid[0:size, 0:size] / size
    video = np.empty((frames, size, size, 3))
    for t in range(frames):
        video[t] = 0.4 + 0.2 * np.stack([np.sin(3 * xx + t), np.cos(2 * yy), xx * yy], -1)
        for _ in range(5):
            cy, cx, r = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.05, 0.15)
            video[t][(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = rng.choice([0.0, 1.0], 3)
        video[t] += rng.normal(0, 0.02, (size, size, 3))
    return (np.clip(video, 0, 1) * 255).round().astype(np.uint8)


def bicubic(frames: np.ndarray, size: int) -> np.ndarray:
    """(T,H,W,3) -> (T,3,size,size) by the Keys matrices, rows then columns (separable), no clamp."""
    rows, cols = keys_cubic_matrix(frames.shape[1], size), keys_cubic_matrix(frames.shape[2], size)
    return rows @ frames.transpose(0, 3, 1, 2) @ cols.T


def public_pipeline(frames: np.ndarray, size: int) -> np.ndarray:
    """The public code's preprocessing, written out: pixels / 255, bicubic resize (Keys matrices), clamp to [0, 1],
    ImageNet normalisation -> (T,3,size,size) float64."""
    x = np.clip(bicubic(frames.astype(np.float64) / 255, size), 0, 1)
    return (x - np.asarray(IMAGENET_MEAN)[:, None, None]) / np.asarray(IMAGENET_STD)[:, None, None]


def test_published_preprocessing_matches_the_public_pipeline_on_a_movi_like_video():
    """128 -> 336 px as for MOVi-C: the bicubic mode (the published profiles') equals the public pipeline written
    out independently, and torchvision's bicubic resize too; the bilinear mode (this project's own profiles)
    differs by up to the issue's 0.72 normalised units, mostly at the objects' edges."""
    from torchvision.transforms.v2 import functional as TF

    from ssync_lib.config import get_config

    frames = movi_like_video()
    reference = public_pipeline(frames, 336)
    ours = preprocess_video(frames, 336, "bicubic").double().numpy()
    assert ours.shape == reference.shape == (2, 3, 336, 336)
    assert np.abs(ours - reference).max() < 1e-4  # float32 rounding (4e-5 here: 1e-5 of a pixel / std)
    tv = TF.resize(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255, [336, 336],
                   interpolation=TF.InterpolationMode.BICUBIC, antialias=False).clamp(0, 1)
    tv = TF.normalize(tv, list(IMAGENET_MEAN), list(IMAGENET_STD))
    assert np.abs(tv.double().numpy() - reference).max() < 1e-4
    # the clamp acts on this video (bicubic overshoots at the sharp edges): without it the inputs would differ
    overshoot = bicubic(frames / 255.0, 336)
    assert overshoot.max() > 1 and overshoot.min() < 0
    old = preprocess_video(frames, 336, "bilinear").double().numpy()
    assert 0.3 < np.abs(old - reference).max() < 1.0  # what the published profiles fed the model before
    for profile in ("movi_c", "movi_e", "ytvis", "coco"):
        assert get_config(profile).data.resize == "bicubic"
    for profile in ("smoke", "cpu"):
        assert get_config(profile).data.resize == "bilinear"  # the shipped models were trained so


def test_bicubic_mode_at_the_input_size_only_normalises():
    frames = movi_like_video(size=16, frames=1)
    np.testing.assert_allclose(preprocess_video(frames, 16, "bicubic").numpy(),
                               preprocess_video(frames, 16, "bilinear").numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"data.resize='nearest': must be one of \['bilinear', 'bicubic'\]"):
        preprocess_video(frames, 16, "nearest")
