"""upfirdn2d's symmetric-padding path (the convolution pads, no padded copy) against the loop."""

from __future__ import annotations

import pytest
import torch

from vidgan.nn.upfirdn import upfirdn2d, upfirdn2d_reference


@pytest.mark.parametrize(
    ("up", "down", "pad", "size"),
    [
        (1, 1, (1, 1), (7, 7)),  # Blur of an up-sampling ModulatedConv2d
        (1, 2, (2, 2), (9, 8)),  # Blur before a 3x3 stride-2 conv (odd size)
        (1, 2, (1, 1), (8, 9)),  # Blur before a 1x1 stride-2 skip
        (2, 1, (1, 1, 2, 2), (5, 6)),  # zero insertion, then per-axis symmetric pads
        (1, 3, (2, 2), (10, 11)),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_symmetric_pad_path_matches_loop(up, down, pad, size, channels_last):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, *size, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)  # asymmetric: checks the flip
    want = upfirdn2d_reference(x, k, up=up, down=down, pad=pad)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("autocast", [False, True])
def test_bf16_on_cpus_without_native_bf16_filters_in_fp32(monkeypatch, autocast):
    import vidgan.nn.upfirdn as U

    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 9, 9, generator=g).to(torch.bfloat16)
    k = torch.rand(4, 4, generator=g)
    want = upfirdn2d(x.float(), k, up=2, pad=(2, 1)).to(torch.bfloat16)  # fp32, rounded once
    monkeypatch.setattr(U, "_NATIVE_BF16", False)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        got = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, want)
    monkeypatch.setattr(U, "_NATIVE_BF16", True)  # the native path: bf16 maths, within rounding
    native = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert native.dtype == torch.bfloat16
    torch.testing.assert_close(native.float(), want.float(), atol=0.05, rtol=0.02)
