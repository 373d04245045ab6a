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


def test_differentiated_3d_convs_use_fp32_kernels_even_with_native_bf16():
    """Native bf16 3-D conv weight gradients can be NaN (PyTorch 2.13, AMX Xeon, 1 thread): with
    native kernels present, a differentiated 3-D conv at one thread still takes the emulated
    path (its exact numbers), while 2-D convs, inference and more threads keep the native
    kernels."""
    prec._NATIVE[BF16] = True
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 6, 6, requires_grad=True)
    w = (torch.randn(3, 4, 3, 3, 3) * 0.2).requires_grad_(True)
    r = lambda t: t.detach().to(BF16).float()  # noqa: E731
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.autocast("cpu", dtype=BF16):
            y = emulated_lowp(F.conv3d, x, w, None, padding=1)
            assert prec.unreliable_native_backward((x, w)) == BF16
            assert prec.unreliable_native_backward((x.flatten(3), w[..., 0])) is None  # 2-D
            with torch.no_grad():
                assert prec.unreliable_native_backward((x, w)) is None  # inference
            torch.set_num_threads(2)
            assert prec.unreliable_native_backward((x, w)) is None  # more threads
        assert prec.unreliable_native_backward((x, w)) is None  # fp32 outside autocast
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(y, F.conv3d(r(x), r(w), None, padding=1).to(BF16))
    y.float().sum().backward()
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_3d_conv_weight_gradient_is_finite_at_one_thread_in_bf16():
    """The shape that returned NaN weight gradients through the native kernel (G3AN appearance
    stream, 1 thread): finite and within bf16 rounding of fp32 through `emulated_lowp`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 128, 1, 32, 32, generator=g)
        w = torch.randn(128, 64, 1, 4, 4, generator=g) * 0.05
        kw = {"stride": (1, 2, 2), "padding": (0, 1, 1)}
        _, _, gw = _run(F.conv_transpose3d, x, w, False, **kw)  # native kernels where present
        wf = w.clone().requires_grad_(True)
        yf = F.conv_transpose3d(x, wf, None, **kw)
        (yf * torch.linspace(-1, 1, yf.numel()).view_as(yf)).sum().backward()
    finally:
        torch.set_num_threads(threads)
    assert torch.isfinite(gw).all()
    _close(gw, wf.grad)
