"""The polyphase stride-2 transposed conv equals F.conv_transpose2d and serves ModulatedConv2d."""

import pytest
import torch
import torch.nn.functional as F

from vidgan.nn import stylegan2
from vidgan.nn.polyphase import conv_transpose2d_stride2_polyphase


@pytest.mark.parametrize(
    ("n", "cin", "cout", "h", "w", "channels_last"),
    [(1, 3, 5, 4, 4, False), (3, 7, 4, 5, 9, False), (2, 8, 6, 7, 6, True), (2, 16, 8, 1, 3, True)],
)
def test_polyphase_matches_conv_transpose(n, cin, cout, h, w, channels_last):
    g = torch.Generator().manual_seed(n * 100 + h * 10 + w)
    x = torch.randn(n, cin, h, w, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cin, cout, 3, 3, generator=g)
    ref = F.conv_transpose2d(x, weight, stride=2)
    got = conv_transpose2d_stride2_polyphase(x, weight)
    assert got.shape == ref.shape == (n, cout, 2 * h + 1, 2 * w + 1)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


def test_polyphase_rejects_other_kernels():
    with pytest.raises(ValueError, match="3x3"):
        conv_transpose2d_stride2_polyphase(torch.zeros(1, 2, 4, 4), torch.zeros(2, 2, 4, 4))


def test_modulated_upsample_same_with_and_without_polyphase(monkeypatch):
    torch.manual_seed(0)
    conv = stylegan2.ModulatedConv2d(6, 4, 3, 8, upsample=True).eval()
    x, style = torch.randn(2, 6, 8, 8), torch.randn(2, 8)
    with torch.no_grad():
        monkeypatch.setattr(stylegan2, "POLYPHASE_MIN_PIXELS", 10**9)
        ref = conv(x, style)
        monkeypatch.setattr(stylegan2, "POLYPHASE_MIN_PIXELS", 1)
        calls = []
        orig = stylegan2.conv_transpose2d_stride2_polyphase
        monkeypatch.setattr(
            stylegan2,
            "conv_transpose2d_stride2_polyphase",
            lambda *a: calls.append(1) or orig(*a),
        )
        got = conv(x, style)
    assert calls == [1]
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
