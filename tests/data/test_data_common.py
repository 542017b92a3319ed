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
