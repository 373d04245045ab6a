"""DiffAugment (vidgan.nn.augment): one parameter set per clip, exact op semantics."""

import pytest
import torch

from vidgan.errors import ConfigError
from vidgan.nn.augment import AugmentParams, DiffAugment


def _video(b=3, t=4, h=8, w=8, seed=0):
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_video_equals_each_frame_augmented_as_an_image():
    pipe = DiffAugment(policy="color,translation,cutout,flip")
    x = _video()
    params = pipe.draw(3, (8, 8), generator=torch.Generator().manual_seed(1))
    out = pipe(x, params)
    for k in range(x.shape[2]):
        assert torch.allclose(out[:, :, k], pipe(x[:, :, k], params), atol=1e-6)


def test_pair_frames_share_parameters():
    pipe = DiffAugment(policy="translation,cutout,flip")
    frame = _video(t=1)
    pair = torch.cat([frame, frame], dim=2)  # identical frames stay identical
    out = pipe(pair, pipe.draw(3, (8, 8), generator=torch.Generator().manual_seed(2)))
    assert torch.equal(out[:, :, 0], out[:, :, 1])
    assert not torch.equal(out, pair)


def test_translation_moves_a_dot_by_the_drawn_shift_and_fills_zero():
    x = torch.zeros(2, 3, 1, 8, 8)
    x[:, :, :, 4, 4] = 1.0
    x[:, :, :, 0, 0] = 0.5
    params = AugmentParams(shift=torch.tensor([[1, -2], [-1, 1]]))
    out = DiffAugment(policy="translation")(x, params)
    assert out[0, 0, 0, 5, 2] == 1.0 and out[1, 0, 0, 3, 5] == 1.0
    assert out[1, 0, 0, 0, 0] == 0.0  # out (0, 0) reads in (1, -1): outside, zero fill
    # the corner dots leave the frame ((0,0) -> (1,-2) and (-1,1)); nothing wraps around
    assert out.sum() == pytest.approx(3 * 2 * 1.0)


def test_shift_and_cutout_ranges():
    pipe = DiffAugment(policy="translation,cutout")
    p = pipe.draw(4000, (16, 16), generator=torch.Generator().manual_seed(0))
    assert p.shift.min() == -2 and p.shift.max() == 2  # round(16 / 8)
    assert p.cutout.min() == 0 and p.cutout.max() == 16
    out = pipe(torch.ones(1, 3, 2, 16, 16), AugmentParams(cutout=torch.tensor([[8, 8]])))
    assert (out == 0).sum() == 3 * 2 * 8 * 8  # an 8x8 square in every channel and frame
    assert torch.all(out[..., 4:12, 4:12] == 0)


def test_color_ops_match_their_formulas():
    x = _video(b=1, t=2)
    one = torch.ones(1)
    bright = DiffAugment(policy="color")(
        x, AugmentParams(brightness=0.25 * one, saturation=one, contrast=one)
    )
    assert torch.allclose(bright, x + 0.25, atol=1e-6)
    gray = DiffAugment(policy="color")(
        x, AugmentParams(brightness=0 * one, saturation=0 * one, contrast=one)
    )
    assert torch.allclose(gray, x.mean(1, keepdim=True).expand_as(x), atol=1e-6)
    flat = DiffAugment(policy="color")(
        x, AugmentParams(brightness=0 * one, saturation=one, contrast=0 * one)
    )
    assert torch.allclose(flat, x.mean(dim=(1, 3, 4), keepdim=True).expand_as(x), atol=1e-6)


def test_augment_is_differentiable_and_unknown_ops_fail():
    x = _video(b=2).requires_grad_(True)
    pipe = DiffAugment(policy="color,translation,cutout")
    out = pipe(x, pipe.draw(2, (8, 8), generator=torch.Generator().manual_seed(3)))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="unknown DiffAugment op 'colour'"):
        DiffAugment(policy="colour")
