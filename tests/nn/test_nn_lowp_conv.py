"""`emulated_lowp`: bf16 convs emulated in fp32 on CPUs without native bf16 change no output.

The emulation rounds inputs and weights to bf16, accumulates in fp32 and rounds the output to
bf16, i.e. what native bf16 conv kernels compute. It is compared with the plain autocast conv
(oneDNN's native kernels where they exist, the reference loops elsewhere), outputs and
gradients within 1% of the largest value (bf16 has 8 bits of mantissa, 0.4% per rounding,
and the two sides may round the accumulator differently), and with fp32 to the same bound.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vidgan.precision as prec
from vidgan.nn.equalized import EqualConv2d, EqualConv3d
from vidgan.precision import emulated_lowp

BF16 = torch.bfloat16


def _close(a, b, rel=1e-2):
    scale = b.float().abs().max()
    assert scale > 0.1
    assert (a.float() - b.float()).abs().max() <= rel * scale


def _run(conv, x, w, emulate, **kw):
    prec._NATIVE[BF16] = not emulate  # True: the plain autocast conv
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=BF16):
        y = emulated_lowp(conv, x, w, None, **kw)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return y, x.grad, w.grad


@pytest.fixture(autouse=True)
def _restore_native():
    saved = dict(prec._NATIVE)
    yield
    prec._NATIVE.clear()
    prec._NATIVE.update(saved)


@pytest.mark.parametrize(
    ("conv", "xs", "ws", "kw"),
    [
        (F.conv2d, (2, 6, 9, 9), (5, 6, 3, 3), {"padding": 1}),
        (F.conv2d, (2, 6, 10, 10), (5, 6, 3, 3), {"stride": 2}),
        (F.conv_transpose2d, (2, 6, 5, 5), (6, 5, 3, 3), {"stride": 2}),
        (F.conv3d, (2, 4, 5, 6, 6), (3, 4, 3, 3, 3), {"stride": (1, 2, 2)}),
    ],
)
def test_emulated_bf16_conv_matches_autocast_and_fp32(conv, xs, ws, kw):
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(xs, generator=g), torch.randn(ws, generator=g) * 0.2
    fast = _run(conv, x, w, True, **kw)
    plain = _run(conv, x, w, False, **kw)
    assert fast[0].dtype == plain[0].dtype == BF16  # autocast's output dtype is kept
    for a, b in zip(fast, plain, strict=True):
        _close(a, b)
    ref = conv(x, w, None, **kw)
    _close(fast[0], ref)


def test_only_low_precision_cpu_convs_are_rerouted():
    x = torch.randn(1, 2, 4, 4)
    prec._NATIVE[BF16] = False
    assert prec.slow_lowp_dtype(x) is None  # fp32 outside autocast: untouched
    with torch.autocast("cpu", dtype=BF16):
        assert prec.slow_lowp_dtype(x) == BF16
    assert prec.slow_lowp_dtype(x.to(BF16)) == BF16
    prec._NATIVE[BF16] = True  # a CPU with native bf16 kernels keeps the plain conv
    assert prec.slow_lowp_dtype(x.to(BF16)) is None


def test_equal_convs_use_the_emulation_exactly():
    torch.manual_seed(0)
    c2, c3 = EqualConv2d(4, 3, 3, padding=1), EqualConv3d(4, 3, 3, padding=1)
    for c in (c2, c3):
        torch.nn.init.normal_(c.bias)
    x2, x3 = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 6, 6)
    prec._NATIVE[BF16] = False
    with torch.autocast("cpu", dtype=BF16):
        y2, y3 = c2(x2), c3(x3)
    r = lambda t: t.to(BF16).float()  # noqa: E731
    e2 = F.conv2d(r(x2), r(c2.weight * c2.scale), r(c2.bias), padding=1).to(BF16)
    e3 = F.conv3d(r(x3), r(c3.weight * c3.scale), r(c3.bias), padding=1).to(BF16)
    assert torch.equal(y2, e2) and torch.equal(y3, e3)


def _lin(y):
    return torch.linspace(-1, 1, y.numel()).view_as(y)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("conv", "xs", "ws", "kw"),
    [
        (prec.conv3d, (2, 4, 3, 6, 6), (3, 4, 3, 3, 3), {"padding": 1}),
        (prec.conv3d, (1, 4, 5, 7, 7), (3, 4, 3, 3, 3), {"stride": 2}),
        (
            prec.conv_transpose3d,
            (2, 4, 2, 5, 5),
            (4, 3, 1, 4, 4),
            {"stride": (1, 2, 2), "padding": (0, 1, 1)},
        ),
        (
            prec.conv_transpose3d,
            (1, 4, 3, 4, 4),
            (4, 3, 3, 3, 3),
            {"stride": 2, "padding": 1, "output_padding": 1},
        ),
    ],
)
def test_native_bf16_3d_conv_takes_its_weight_gradient_from_2d_kernels_per_tap(
    conv, xs, ws, kw, threads
):
    """With native bf16 kernels, a differentiated 3-D conv keeps the native forward and input
    gradient; its weight gradient is one native 2-D weight gradient per temporal tap (native
    bf16 3-D weight gradients are NaN or never finish for some shapes; see `lowp_conv_route`)
    and its bias gradient an fp32 sum. Checked against the plain ops at one and two threads:
    the weight gradient against fp32 on the rounded operands, within the bf16 rounding of its
    output (8 bits), the bias gradient to fp32 accuracy."""
    prec._NATIVE[BF16] = True
    plain = F.conv3d if conv is prec.conv3d else F.conv_transpose3d
    g = torch.Generator().manual_seed(0)
    x = torch.randn(xs, generator=g).requires_grad_(True)
    w = (torch.randn(ws, generator=g) * 0.2).requires_grad_(True)
    b = torch.randn(ws[1] if conv is prec.conv_transpose3d else ws[0], generator=g)
    b.requires_grad_(True)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.autocast("cpu", dtype=BF16):
            assert prec.lowp_conv_route(x, w, b) is not None
            y = conv(x, w, b, **kw)
            ref = plain(x, w, b, **kw)  # autocast's own (native) conv
        y.float().mul(_lin(y)).sum().backward()
    finally:
        torch.set_num_threads(saved)
    assert y.dtype == BF16 and torch.equal(y, ref)
    gy = _lin(y).to(BF16)
    r = lambda t: t.detach().to(BF16)  # noqa: E731
    xr, wr, br = r(x).requires_grad_(True), r(w).requires_grad_(True), r(b)
    plain(xr, wr, br, **kw).backward(gy)  # plain bf16 input gradient
    assert x.grad.dtype == torch.float32 and torch.equal(x.grad, xr.grad.float())
    x32, w32, b32 = (r(t).float().requires_grad_(True) for t in (x, w, b))
    plain(x32, w32, b32, **kw).backward(gy.float())  # fp32 weight and bias gradients
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    assert (w.grad - w32.grad).abs().max() <= 8e-3 * w32.grad.abs().max()
    assert not torch.equal(w.grad, w32.grad)  # bf16 kernels, not the fp32 ones
    torch.testing.assert_close(b.grad, b32.grad, rtol=1e-5, atol=1e-5)


def test_3d_conv_route_only_for_differentiated_low_precision_cpu_convs():
    prec._NATIVE[BF16] = True
    x = torch.randn(1, 2, 3, 4, 4)
    w = torch.randn(3, 2, 1, 1, 1, requires_grad=True)
    assert prec.lowp_conv_route(x, w, None) is None  # fp32 outside autocast
    with torch.autocast("cpu", dtype=BF16):
        assert prec.lowp_conv_route(x, w, None) is not None
        assert prec.lowp_conv_route(x, w.detach(), None) is None  # nothing to differentiate
        with torch.no_grad():
            assert prec.lowp_conv_route(x, w, None) is None  # inference
        y = prec.conv3d(x, w.detach())
        assert y.dtype == BF16 and torch.equal(y, F.conv3d(x, w.detach()))
    prec._NATIVE[BF16] = False  # no native kernels: every bf16 conv is emulated
    assert prec.lowp_conv_route(x.to(BF16), w.detach().to(BF16), None) is not None


def test_only_the_input_gradient_when_weights_are_frozen():
    prec._NATIVE[BF16] = True
    x = torch.randn(1, 2, 3, 5, 5, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, 3)
    with torch.autocast("cpu", dtype=BF16):
        prec.conv3d(x, w, padding=1).float().sum().backward()
    xr = x.detach().to(BF16).requires_grad_(True)
    F.conv3d(xr, w.to(BF16), padding=1).backward(torch.ones(1, 3, 3, 5, 5, dtype=BF16))
    assert torch.equal(x.grad, xr.grad.float())


def test_3d_conv_weight_gradient_is_finite_at_one_thread_in_bf16():
    """The shape whose native bf16 weight gradient is NaN at one thread (G3AN appearance stream):
    finite and within bf16 rounding of fp32 through `conv_transpose3d`."""
    prec._NATIVE[BF16] = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 128, 1, 32, 32, generator=g)
        w = torch.randn(128, 64, 1, 4, 4, generator=g) * 0.05
        kw = {"stride": (1, 2, 2), "padding": (0, 1, 1)}
        _, _, gw = _run(prec.conv_transpose3d, x, w, False, **kw)
        wf = w.clone().requires_grad_(True)
        yf = F.conv_transpose3d(x, wf, None, **kw)
        (yf * torch.linspace(-1, 1, yf.numel()).view_as(yf)).sum().backward()
    finally:
        torch.set_num_threads(threads)
    assert torch.isfinite(gw).all()
    _close(gw, wf.grad)


@pytest.mark.timeout(120)
@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
    reason="needs native bf16 kernels (elsewhere this layer runs on reference loops for minutes)",
)
def test_the_3d_weight_gradient_that_never_finished_natively_is_fast_and_finite():
    """conv3d 512 -> 512, 3x3x3, stride 2 on [1, 512, 6, 65, 65]: PyTorch 2.13's native bf16
    weight gradient did not finish in 5 minutes at 2 threads on an AMX Xeon (NaN at 1 thread).
    Through `conv3d` it takes well under a second, finite and within bf16 rounding of fp32."""
    prec._NATIVE[BF16] = True
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 512, 6, 65, 65, generator=g)
    w = (torch.randn(512, 512, 3, 3, 3, generator=g) * 0.01).requires_grad_(True)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.autocast("cpu", dtype=BF16):
            y = prec.conv3d(x, w, None, 2)
        gy = _lin(y)
        y.float().mul(gy).sum().backward()
    finally:
        torch.set_num_threads(saved)
    r = lambda t: t.detach().to(BF16).float()  # noqa: E731
    w32 = r(w).requires_grad_(True)
    F.conv3d(r(x), w32, None, 2).backward(gy.to(BF16).float())
    assert torch.isfinite(w.grad).all()
    assert (w.grad - w32.grad).abs().max() <= 8e-3 * w32.grad.abs().max()
