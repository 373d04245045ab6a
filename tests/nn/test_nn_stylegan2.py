"""StyleGAN2 parts: modulated conv against the per-sample-weight formulation, minibatch stddev."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidgan.nn.fourier import LearnedFourierFeatures
from vidgan.nn.stylegan2 import (
    ModulatedConv2d,
    PixelNorm,
    ResBlock,
    StyledConv,
    channel_table,
    minibatch_stddev,
    stddev_group_size,
)
from vidgan.nn.upfirdn import upfirdn2d


def _grouped_reference(conv: ModulatedConv2d, x, style):
    """Eq. 1-3 literally: one modulated (demodulated) weight per sample, grouped conv."""
    b, cin, h, w = x.shape
    k, cout = conv.kernel_size, conv.out_channels
    s = conv.modulation(style).view(b, 1, cin, 1, 1)
    weight = conv.scale * conv.weight * s  # (B, Cout, Cin, k, k)
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, cout, 1, 1, 1)
    if conv.upsample:
        wt = weight.transpose(1, 2).reshape(b * cin, cout, k, k)
        out = F.conv_transpose2d(x.reshape(1, b * cin, h, w), wt, stride=2, groups=b)
        out = out.view(b, cout, *out.shape[-2:])
        return upfirdn2d(out, conv.blur.kernel, pad=conv.blur.pad)
    wflat = weight.reshape(b * cout, cin, k, k)
    if conv.downsample:
        xb = upfirdn2d(x, conv.blur.kernel, pad=conv.blur.pad)
        out = F.conv2d(xb.reshape(1, b * cin, *xb.shape[-2:]), wflat, stride=2, groups=b)
    else:
        out = F.conv2d(x.reshape(1, b * cin, h, w), wflat, padding=conv.padding, groups=b)
    return out.view(b, cout, *out.shape[-2:])


@pytest.mark.parametrize(
    ("kernel", "demod", "up", "down"),
    [
        (3, True, False, False),
        (3, True, True, False),
        (3, True, False, True),
        (1, False, False, False),
    ],
)
def test_modulated_conv_matches_per_sample_weights(kernel, demod, up, down):
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 6, kernel, 7, demodulate=demod, upsample=up, downsample=down).double()
    conv.modulation.bias.data.normal_()
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64)
    style = torch.randn(3, 7, dtype=torch.float64)
    got = conv(x, style)
    want = _grouped_reference(conv, x, style)
    assert got.shape == want.shape == (3, 6, *((16, 16) if up else (4, 4) if down else (8, 8)))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    if demod:  # demodulated outputs are invariant to rescaling the style (Eq. 3)
        conv.modulation.bias.data.zero_()
        torch.testing.assert_close(conv(x, 3.0 * style), conv(x, style), rtol=1e-8, atol=1e-8)
    assert set(conv.state_dict()) >= {"weight", "modulation.weight", "modulation.bias"}


def test_minibatch_stddev_strided_groups_and_any_batch():
    x = torch.randn(8, 4, 3, 3, dtype=torch.float64)
    y = minibatch_stddev(x, 4)
    assert y.shape == (8, 5, 3, 3)
    torch.testing.assert_close(y[:, :4], x)
    for m in range(2):  # samples m, m+2, m+4, m+6 share one statistic
        members = x[m::2]
        want = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean()
        torch.testing.assert_close(y[m::2, 4], want.expand(4, 3, 3))
    assert [stddev_group_size(b) for b in (1, 2, 3, 4, 5, 6, 8, 12)] == [1, 2, 3, 4, 1, 3, 4, 4]
    for b in (1, 3, 5, 6):
        assert minibatch_stddev(torch.randn(b, 4, 2, 2, 2), 4).shape == (b, 5, 2, 2, 2)


def test_channel_table_pixel_norm_and_resblock():
    t = channel_table(2)
    assert (t[4], t[32], t[64], t[128], t[256], t[1024]) == (512, 512, 512, 256, 128, 32)
    assert channel_table(1, {"32": 16})[32] == 16 and channel_table(1)[64] == 256
    z = torch.randn(5, 9) * 7
    torch.testing.assert_close(PixelNorm()(z).pow(2).mean(1), torch.ones(5), rtol=1e-5, atol=1e-5)
    blk = ResBlock(4, 6)
    x = torch.randn(2, 4, 8, 8)
    out = blk(x)
    assert out.shape == (2, 6, 4, 4)
    want = (blk.conv2(blk.conv1(x)) + blk.skip(x)) / math.sqrt(2)
    torch.testing.assert_close(out, want)


def test_learned_fourier_features_init_and_bands():
    torch.manual_seed(0)
    lff = LearnedFourierFeatures(1, 64, freq_range=(3.0, 7.0))
    w = lff.frequencies.detach()
    assert ((w[:32] >= 3) & (w[:32] <= 7)).all() and ((w[32:] >= -7) & (w[32:] <= -3)).all()
    assert (lff.phases.abs() <= 1).all()
    t = torch.tensor([[0.25]])
    torch.testing.assert_close(lff(t)[0], torch.sin(w * 0.25 + lff.phases.detach()))
    masks = lff.band_masks((5.0,))
    assert masks.shape == (2, 64)
    assert torch.equal(masks[0], w.abs() < 5) and torch.equal(masks[1], w.abs() >= 5)
    assert torch.equal(lff.band_masks((0.5,), ratio=True)[0], w.abs() < 0.5 * w.abs().max())


def test_styled_conv_keeps_bf16_activations_under_autocast():
    """The fp32 noise strength must not promote a bf16 layer to fp32 under autocast (that cost
    two casts and twice the memory traffic per 256 px layer); in fp32 the sum is unchanged."""
    torch.manual_seed(0)
    layer = StyledConv(4, 4, 3, 8)
    layer.noise.weight.data.fill_(0.5)
    x, style, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 8), torch.randn(2, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x, style, noise=noise)
    assert y.dtype == torch.bfloat16
    base = torch.randn(2, 4, 8, 8)
    assert torch.equal(layer.noise(base, noise), base + 0.5 * noise)


@pytest.mark.parametrize("upsample", [False, True])
def test_inference_weights_are_cached_until_the_parameter_changes(upsample):
    """Without autograd the scaled, cast weight and its squares are reused across calls, and an
    in-place update of the parameter (an optimizer or EMA step) invalidates them."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, 4, upsample=upsample)
    x, style = torch.randn(2, 6, 8, 8), torch.randn(2, 4)

    def fresh():  # the same layer computed without any cache (autograd on)
        w = conv.weight.detach().clone().requires_grad_(True)
        twin = ModulatedConv2d(6, 5, 3, 4, upsample=upsample)
        twin.load_state_dict(conv.state_dict())
        twin.weight = torch.nn.Parameter(w)
        return twin(x, style).detach()

    with torch.no_grad():
        a = conv(x, style)
        cached = lambda: next(iter(conv.__dict__["_weights_cache"].values()))[1][0]  # noqa: E731
        first = cached()
        b = conv(x, style)
        assert cached() is first  # reused, not recomputed
        torch.testing.assert_close(a, fresh())
        assert torch.equal(a, b)
        conv.weight.mul_(0.5).add_(0.1)  # an optimizer-like in-place step
        c = conv(x, style)
    assert cached() is not first
    torch.testing.assert_close(c, fresh())
    assert not torch.allclose(c, a)


@pytest.mark.parametrize("autocast", [False, True])
def test_style_folded_into_the_weight_for_one_large_map_matches_the_plain_layer(autocast):
    """Inference on one sample whose map is much larger than the weight folds style,
    demodulation and gain into the weight (`StyledConv._folded`): the same layer output as the
    autograd path's modulate / conv / demodulate / noise / bias / lrelu, in fp32 and bf16."""
    torch.manual_seed(3)
    layer = StyledConv(4, 6, 3, 5)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, style, noise = torch.randn(1, 4, 16, 16), torch.randn(1, 5), torch.randn(1, 1, 16, 16)
    assert layer._folds_style(x) is False  # autograd on: the plain path
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        want = layer(x, style, noise).detach()
        with torch.no_grad():
            from vidgan.precision import slow_lowp_dtype

            # folded in fp32, and in bf16 where the CPU has native bf16 kernels
            assert layer._folds_style(x) == (slow_lowp_dtype(x) is None)
            got = layer(x.clone(), style, noise)
            assert not layer._folds_style(torch.randn(2, 4, 16, 16))  # one sample only
            assert not layer._folds_style(torch.randn(1, 4, 4, 4))  # map smaller than 36 Cin
    tol = 2e-2 if autocast else 1e-5
    scale = want.float().abs().max()
    assert scale > 0.5 and (want < 0).any()
    assert (got.float() - want.float()).abs().max() <= tol * scale


def test_bf16_up_convs_take_the_polyphase_form_from_16_px_on(monkeypatch):
    """With native bf16 kernels the stride-2 up-conv runs as four regular convs from 16 x 16
    inputs on (fp32 only from 128 x 128); the output stays within bf16 rounding of fp32."""
    import vidgan.nn.stylegan2 as sg
    from vidgan.precision import slow_lowp_dtype

    calls = []
    inner = sg._polyphase
    monkeypatch.setattr(sg, "_polyphase", lambda *a, **k: calls.append(1) or inner(*a, **k))
    torch.manual_seed(2)
    conv = ModulatedConv2d(8, 6, 3, 4, upsample=True)
    x, style = torch.randn(1, 8, 16, 16), torch.randn(1, 4)
    with torch.no_grad():
        ref = conv(x, style)  # fp32: the plain transposed conv at 16 px
        assert calls == []
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = conv(x, style)
            native = slow_lowp_dtype(x) is None
    assert calls == ([1] if native else [])
    assert (got.float() - ref).abs().max() <= 2e-2 * ref.abs().max()
