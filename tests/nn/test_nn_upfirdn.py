"""upfirdn2d against a naive loop and known FIR properties."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidgan.nn.upfirdn import (
    Blur,
    Downsample,
    Upsample,
    downsample2d,
    make_kernel,
    upfirdn2d,
    upfirdn2d_reference,
    upsample2d,
)


@pytest.mark.parametrize(
    ("up", "down", "pad", "ksize"),
    [
        (1, 1, (0, 0), 3),
        (2, 1, (2, 1), 4),
        (1, 2, (1, 1), 4),
        (2, 2, (1, 2, 0, 3), 3),
        (1, 1, (-1, 2, 1, -2), 3),
        (3, 1, (1, 1), 2),
    ],
)
def test_upfirdn2d_matches_naive_loop(up, down, pad, ksize):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    k = torch.randn(ksize, ksize, generator=g, dtype=torch.float64)  # asymmetric: checks the flip
    want = upfirdn2d_reference(x, k, up=up, down=down, pad=pad)
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_delta_kernel_is_identity_and_shift():
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    delta = torch.zeros(3, 3, dtype=torch.float64)
    delta[1, 1] = 1
    torch.testing.assert_close(upfirdn2d(x, delta, pad=(1, 1)), x)
    # off-centre delta in a true convolution shifts the image by +1 along x
    shift = torch.zeros(3, 3, dtype=torch.float64)
    shift[1, 2] = 1
    y = upfirdn2d(x, shift, pad=(1, 1))
    torch.testing.assert_close(y[..., 2:], x[..., 1:-1])


def test_box_filter_up_then_down_round_trip():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    box = make_kernel([1, 1]).double()
    up = upsample2d(x, box, factor=2)  # nearest-neighbour upsampling for a box filter
    torch.testing.assert_close(up, x.repeat_interleave(2, 2).repeat_interleave(2, 3))
    down = downsample2d(up, box, factor=2)  # 2x2 averaging undoes it
    torch.testing.assert_close(down, x)
    torch.testing.assert_close(downsample2d(up, box), F.avg_pool2d(up, 2))


def test_make_kernel_and_modules():
    k = make_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4) and abs(float(k.sum()) - 1) < 1e-7
    torch.testing.assert_close(
        k, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64
    )
    x = torch.ones(1, 1, 8, 8)
    # a normalised blur of a constant image is the constant away from the border
    y = Blur((1, 3, 3, 1), pad=(2, 1))(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.ones(1, 1, 4, 4))
    up = Upsample((1, 3, 3, 1))(x)
    assert up.shape == (1, 1, 16, 16)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    down = Downsample((1, 3, 3, 1))(x)
    assert down.shape == (1, 1, 4, 4)
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))
    assert "kernel" in Blur().state_dict()


def test_upfirdn2d_gradient_and_bf16():
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    k = make_kernel([1, 3, 3, 1])
    upfirdn2d(x, k, up=2, pad=(2, 1)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    yb = upfirdn2d(x.detach().bfloat16(), k, down=2, pad=(1, 1))
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(
        yb.float(), upfirdn2d(x.detach(), k, down=2, pad=(1, 1)), atol=3e-2, rtol=3e-2
    )
