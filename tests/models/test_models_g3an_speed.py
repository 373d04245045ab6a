"""G3AN fast paths change no output: each is compared with a plain reference computation.

* F-SA attention (`g3an._attend` and `SelfAttention`): chunked GEMMs on the narrow q, k with
  gamma folded into v and the residual inside the second GEMM, against gamma * softmax(QK^T) V
  rearranged + x written out from the definition (both layouts, both axes), values and
  gradients, fp32 within 1e-5 of the output scale.
* G3 block fusion at inference (sum and concatenation written into one output) against the
  autograd path of the same block: bit-identical.
* The 3-channel output conv (one GEMM + shifted sums, its own backward) against `F.conv3d`:
  values and gradients of input, weight and bias (float64 gradcheck; fp32 within 1e-5; bf16
  autocast within bf16 rounding). The temporal (k, 1, 1) SN convs of the video D (2-D conv on
  a view) against `F.conv3d`, fp32 within 1e-5.
* Spatial up-convolutions on large fp32 inputs run in channels_last_3d with contiguous inputs
  and outputs (`_ChannelsLastConvTranspose3d`): values and gradients against
  `F.conv_transpose3d` (float64 gradcheck; fp32 within 1e-5).
* `train.reuse_fakes` (off by default for G3AN): the D step reuses the G step's fakes (one
  render per step, as the release), so BatchNorm statistics update once per step; off: two.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import vidgan.precision as prec
from vidgan.models import g3an
from vidgan.models.g3an import G3ANConfig, G3ANGenerator, G3Block, SelfAttention, SNConv3d
from vidgan.recipes.g3an import G3ANRecipe
from vidgan.train.config import resolve_run_config


def reference_attention(att: SelfAttention, x: Tensor) -> Tensor:
    """gamma * softmax(Q K^T) V, laid back as the layout says, + x (the module's definition)."""
    b, c, t, h, w = x.shape
    if att.axis == "time":
        tok = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)  # (b h w) t c
    else:
        tok = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)  # (b t) (h w) c
    q, k, v = (
        F.linear(tok, conv.normalized_weight().flatten(1), conv.bias)
        for conv in (att.query, att.key, att.value)
    )
    out = torch.softmax(q @ k.transpose(1, 2), -1) @ v
    if att.layout == "release":
        out = out.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)
    elif att.axis == "time":
        out = out.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2)
    else:
        out = out.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)
    return att.gamma * out + x


def close(a: Tensor, b: Tensor, tol: float = 1e-5) -> bool:
    """max |a - b| within `tol` of the scale of b (fp32 rounding of reordered sums)."""
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


def _params(att: SelfAttention) -> list[Tensor]:
    return [att.gamma, att.value.weight_orig, att.value.bias, att.query.weight_orig, att.key.bias]


@pytest.mark.parametrize("layout", ["intended", "release"])
@pytest.mark.parametrize("axis", ["time", "space"])
def test_attention_equals_definition_values_and_gradients(monkeypatch, layout, axis):
    monkeypatch.setattr(g3an, "ATTENTION_CHUNK", 40)  # several chunks, a ragged last one
    torch.manual_seed(0)
    att = SelfAttention(channels=16, reduction=4, axis=axis, layout=layout).train()
    att.gamma.data.fill_(0.7)
    x = torch.randn(2, 16, 5, 3, 4)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    twin = copy.deepcopy(att)  # the same spectral-norm power iteration for the reference
    out = att(xa)
    ref = reference_attention(twin, xb)
    assert close(out, ref)
    assert (out - x).abs().max() > 0.1  # attention did change the input
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [xa, *_params(att)], g)
    grads_ref = torch.autograd.grad(ref, [xb, *_params(twin)], g)
    for a, r in zip(grads, grads_ref):
        assert close(a, r)


def test_attention_eval_matches_definition_and_skips_sdpa():
    """At inference too; and no (padded) fused SDPA kernel runs, only the GEMMs."""
    torch.manual_seed(1)
    att = SelfAttention(channels=16, reduction=8, axis="space", layout="intended").eval()
    att.gamma.data.fill_(-1.3)
    x = torch.randn(1, 16, 2, 8, 8)
    with torch.no_grad(), torch.profiler.profile() as prof:
        out = att(x)
    names = {e.key for e in prof.key_averages()}
    assert "aten::baddbmm" in names and not any("attention" in n for n in names), names
    with torch.no_grad():
        assert close(out, reference_attention(att, x))


def test_g3_block_inference_fusion_is_exact():
    torch.manual_seed(0)
    block = G3Block(
        in_app=6, in_main=8, in_mot=4, out_ch=5, mode="1p2d", spatial=(4, 2, 1), temporal=(4, 2, 1)
    ).eval()
    h_s, h_v, h_t = (
        torch.randn(2, 6, 1, 4, 4),
        torch.randn(2, 8, 3, 4, 4),
        torch.randn(2, 4, 3, 1, 1),
    )
    with torch.no_grad():
        fast = block(h_s, h_v, h_t)
    slow = block(h_s, h_v.requires_grad_(True), h_t)  # autograd: sum, then concatenation
    for a, b in zip(fast, slow):
        assert torch.equal(a, b.detach())
    assert torch.equal(fast[1][:, :5], fast[0].expand(-1, -1, 6, -1, -1))


@pytest.mark.parametrize(
    ("kernel", "padding"), [((1, 3, 3), (0, 1, 1)), ((1, 3, 5), (0, 1, 2)), ((1, 3, 5), (0, 0, 2))]
)
def test_few_output_frame_conv_equals_conv3d(kernel, padding):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(7, 3, kernel, 1, padding)
    x = torch.randn(2, 7, 3, 6, 5)
    with torch.no_grad():  # the last case changes the size: it falls back to the conv
        assert close(g3an._frame_conv_few_outputs(x, conv), conv(x))


def _frame_conv_grads(x: Tensor, conv: torch.nn.Conv3d, fast: bool) -> list[Tensor]:
    y = g3an._frame_conv_few_outputs(x, conv) if fast else conv(x)
    weights = torch.linspace(-1, 1, y.numel()).view_as(y).to(y.dtype)  # a loss with every tap
    return [y.float(), *torch.autograd.grad((y * weights).sum(), [x, conv.weight, conv.bias])]


@pytest.mark.parametrize(("kernel", "padding"), [((1, 3, 3), (0, 1, 1)), ((1, 3, 5), (0, 1, 2))])
def test_few_output_frame_conv_backward_equals_conv3d(kernel, padding):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(5, 3, kernel, 1, padding).double()
    x = torch.randn(2, 5, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    fn = g3an._FewOutputFrameConv.apply
    kh, kw = kernel[1:]
    taps = conv.weight[:, :, 0].permute(2, 3, 0, 1).reshape(kh * kw * 3, 5)
    assert torch.autograd.gradcheck(
        lambda x, t, b: fn(x, t, b, (kh, kw, *padding[1:])), (x, taps, conv.bias)
    )
    conv = conv.float()
    x = torch.randn(3, 5, 4, 7, 6, requires_grad=True)
    for got, want in zip(_frame_conv_grads(x, conv, True), _frame_conv_grads(x, conv, False)):
        assert close(got, want)


def test_few_output_frame_conv_under_bf16_autocast_matches_the_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(32, 3, (1, 3, 3), 1, (0, 1, 1))
    x = torch.randn(2, 32, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _frame_conv_grads(x, conv, True)
        want = _frame_conv_grads(x, conv, False)
    assert g3an._frame_conv_few_outputs(x, conv).dtype == torch.float32  # outside autocast
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        assert close(a.float(), b.float(), 2e-2)  # bf16 rounding of both sides


@pytest.mark.parametrize("threads", [1, 2])
def test_swap_last2_is_a_transpose_forward_and_backward(threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)  # 2: the strided copy for few long rows
    try:
        for shape in [(3, 5, 70), (3, 70, 5)]:  # both copy strategies at 2 threads
            x = torch.randn(*shape, requires_grad=True)
            y = g3an.swap_last2(x)
            assert y.is_contiguous() and torch.equal(y, x.transpose(1, 2))
            g = torch.randn_like(y)
            (gx,) = torch.autograd.grad(y, x, g)
            assert torch.equal(gx, g.transpose(1, 2))
    finally:
        torch.set_num_threads(old)


def test_channels_last_transposed_conv_equals_the_plain_one(monkeypatch):
    torch.manual_seed(0)
    args = ((1, 2, 2), (0, 1, 1), (0, 0, 0), 1, (1, 1, 1))
    x = torch.randn(2, 6, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    fn = g3an._ChannelsLastConvTranspose3d.apply
    assert torch.autograd.gradcheck(lambda x, w, b: fn(x, w, b, args), (x, w, b))
    up = g3an.SNConvTranspose3d(6, 4, (1, 4, 4), (1, 2, 2), (0, 1, 1)).eval()  # fixed u, v
    x = torch.randn(2, 6, 3, 8, 7, requires_grad=True)
    want = _grads(up, x)
    monkeypatch.setattr(g3an, "CL_MIN_ELEMENTS", 0)  # every input counts as large
    y = up(x)
    assert y.is_contiguous() and y.grad_fn.name() == "_ChannelsLastConvTranspose3dBackward"
    for got, ref in zip(_grads(up, x), want):
        assert close(got, ref)


def _grads(m: torch.nn.Module, x: Tensor) -> list[Tensor]:
    y = m(x)
    weights = torch.linspace(-1, 1, y.numel()).view_as(y)
    return [y, *torch.autograd.grad((y * weights).sum(), [x, m.weight_orig, m.bias])]


def test_generator_output_conv_is_the_fast_one_with_and_without_autograd(monkeypatch):
    torch.manual_seed(0)
    G = G3ANGenerator(G3ANConfig(ch=2, c_a=8, c_m=3)).eval()
    G.fsa.spatial.gamma.data.fill_(0.5)
    z = G.sample_latents(2, n_frames=16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fast = G.synthesize(z.content, z.motion)  # fused blocks
    slow = G.synthesize(z.content, z.motion)  # grad enabled: the plain blocks
    assert slow.grad_fn.next_functions[0][0].name() == "_FewOutputFrameConvBackward"
    assert torch.equal(fast, slow.detach())  # the block fusion is exact, the output conv shared
    monkeypatch.setattr(g3an, "_frame_conv_few_outputs", lambda x, conv: conv(x))
    with torch.no_grad():
        plain = G.synthesize(z.content, z.motion)  # the library convolution
    assert close(fast, plain, 1e-6) and not torch.equal(fast, plain)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [((4, 1, 1), 1, 0), ((3, 1, 1), (2, 1, 1), (1, 0, 0))]
)
def test_temporal_sn_conv_as_2d_conv_equals_conv3d(kernel, stride, padding):
    torch.manual_seed(0)
    conv = SNConv3d(5, 6, kernel, stride, padding).eval()
    assert conv._temporal_2d
    x = torch.randn(2, 5, 9, 3, 4, requires_grad=True)
    out = conv(x)
    ref = F.conv3d(x, conv.normalized_weight(), conv.bias, conv.stride, conv.padding)
    assert close(out, ref)
    g = torch.randn_like(out)
    (ga,) = torch.autograd.grad(out, x, g)
    (gr,) = torch.autograd.grad(ref, x, g)
    assert close(ga, gr)
    assert not SNConv3d(5, 6, (1, 4, 4), (1, 2, 2), (0, 1, 1))._temporal_2d


def _trainer(tmp_path, *overrides: str):
    from vidgan.train.loop import Trainer

    run = resolve_run_config(
        "g3an",
        preset="g3an-tiny",
        overrides=[
            "train.batch=2",
            "train.workers=0",
            "train.device=cpu",
            "train.metrics=",
            "train.best_metric=",
            *overrides,
        ],
    )
    data = [{"video": torch.rand(16, 3, 64, 64) * 2 - 1, "label": -1, "index": i} for i in range(4)]
    return Trainer(run, outdir=tmp_path, dataset=data, progress=False)


def test_paper_preset_renders_once_per_step_as_the_release():
    paper = resolve_run_config(None, preset="g3an-paper-64", overrides=[])
    toy = resolve_run_config(None, preset="g3an-toy-64", overrides=[])
    assert paper.train.reuse_fakes is True and toy.train.reuse_fakes is None  # None: recipe's


@pytest.mark.slow
@pytest.mark.parametrize("reuse", [True, False])
def test_recipe_reuse_fakes_renders_once_per_step(tmp_path, monkeypatch, reuse):
    # two micro-batches: one kept clip each
    tr = _trainer(tmp_path, "train.accumulate=2", f"train.reuse_fakes={str(reuse).lower()}")
    assert tr.hp.reuse_fakes is reuse and G3ANRecipe.reuse_fakes is False  # the default
    renders: list[Tensor] = []
    seen: list[Tensor] = []
    generate = tr.G.generate
    monkeypatch.setattr(
        tr.G, "generate", lambda *a, **k: renders.append(generate(*a, **k)) or renders[-1]
    )
    video_d = tr.Ds["video"]
    hook = video_d.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    bn = tr.G.blocks[0].appearance.bn
    tracked = int(bn.num_batches_tracked)
    tr.train_step(next(iter(tr.batches)))
    hook.remove()
    # G step: 2 micro-batches x 1 render; D step: 0 renders (reuse) or 2
    assert len(renders) == (2 if reuse else 4)
    assert int(bn.num_batches_tracked) - tracked == len(renders)
    # D's inputs: G step (2 fakes), then per micro-batch real, fake
    fakes_g, fakes_d = seen[:2], seen[3::2]
    for a, b in zip(fakes_g, fakes_d):
        assert torch.equal(a, b) == reuse


def test_bf16_emulation_matches_bf16_autocast(monkeypatch):
    """Without bf16 kernels, autocast bf16 runs fp32 kernels on bf16-rounded operands."""
    torch.manual_seed(0)
    G = G3ANGenerator(G3ANConfig(ch=2, c_a=8, c_m=3)).eval()
    G.fsa.spatial.gamma.data.fill_(0.5)
    z = G.sample_latents(1, n_frames=16, generator=torch.Generator().manual_seed(3))
    outs = {}
    for native in (True, False):
        monkeypatch.setitem(prec._NATIVE, torch.bfloat16, native)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert (prec.slow_lowp_dtype(z.content) is None) is native
            outs[native] = G.synthesize(z.content, z.motion)
    with torch.no_grad():
        full = G.synthesize(z.content, z.motion)
    assert outs[False].dtype == outs[True].dtype == torch.bfloat16
    emulated, real = outs[False].float(), outs[True].float()
    # as close to the bf16 kernels as those are to fp32 (bf16 rounding, ~3 significant digits)
    assert (emulated - real).abs().max() <= 2 * (real - full).abs().max() + 1e-3
    assert (emulated - full).abs().max() < 0.02
