"""G3AN: Disentangling Appearance and Motion for Video Generation (Wang et al., CVPR 2020).

Paper: arXiv:1912.05523. Official code: github:wyhsirius/g3an-project (model/networks.py,
model/ops.py at 74764fd). This file covers the paper's method section: the generator (G3
modules with appearance, motion and main streams; factorized spatio-temporal self-attention,
F-SA) and the two discriminators (image D_I, (2+1)D video D_V). Training math (BCE,
non-saturating G, one random frame for D_I) lives in the training recipe, not here.

Unconditional models (`num_classes = 0`) are exactly the official architecture: same layers,
same order, same weight initialisation, same legacy spectral norm (stored power-iteration vectors
`weight_u`, `weight_v`; eval mode uses them without iterating), so `vidgan.convert.g3an` can load
the released `g3an.pth` and reproduce its outputs. One deliberate difference at init: u, v are
power-iterated on the initial weights (the release leaves them random, so a fresh model in eval
mode explodes); loaded checkpoints overwrite them.

Attention layout (`G3ANConfig.attention_layout`):

* ``"release"``: the official F-SA turns its attention result, laid out ``((b h w), t, c)`` in the
  temporal and ``((b t), (h w), c)`` in the spatial branch, back into a video by reinterpreting the
  memory as ``(b, h, w, c, t)``. That scrambles positions and channels, and the released weights
  were trained with it, so converted checkpoints use this layout.
* ``"intended"``: the correct inverse rearrangement (``(b h w) t c -> b c t h w`` and
  ``(b t) (h w) c -> b c t h w``): each pixel attends over its own time steps, each frame over its
  own positions. This is the default for new training runs.

Both layouts compute the attention itself as plain GEMMs on the narrow q, k (`_attend`; scale 1:
the release has no 1/sqrt(d)), in chunks, with gamma folded into v and, in the intended layout,
the residual added by the second GEMM. This beat the fused SDPA kernels, which need q, k
zero-padded to the width of v (8x the score work). In fp32 the q, k, v projections are one GEMM
and `_FusedAttention` writes every chunk into preallocated outputs and gradients. Equal to the
definition within fp32 rounding (tests/models/test_models_g3an_speed.py).

Other layout work, same sums: the 3-channel output conv is one GEMM plus shifted adds with its
own backward (`_frame_conv_few_outputs`); large fp32 spatial up-convolutions run in
channels_last_3d with contiguous inputs and outputs (`_ChannelsLastConvTranspose3d`).

Class-conditional generation (our extension; the authors promised it but never released it):

* Generator: a learned label embedding ``e_y`` (`class_embed_dim` numbers) is concatenated to the
  appearance code ``z_a`` and to every time step of the motion code ``z_m``. All three streams
  therefore see the class: appearance (``[z_a, e_y]``), motion (``[z_m, e_y]``) and the main
  stream (their concatenation, as in the paper). Actions (UCF-101) are about motion, so the motion
  stream must see the label; concatenation keeps every block of the official architecture intact
  apart from the width of the first block's inputs.
* Discriminators: projection discriminator (Miyato & Koyama, ICLR 2018):
  ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``, where ``phi(x)`` are the features entering the
  official last conv (summed over channels against the spectrally normalised class embedding,
  averaged over positions) and ``psi`` is that last conv. With ``num_classes = 0`` no embedding
  exists and the output is the official one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import ConfigError, VidganError
from vidgan.models.base import Latents, VideoGenerator, check_shape, expand_times
from vidgan.models.registry import ModelSpec, register_model
from vidgan.precision import conv3d, conv_transpose3d, emulated_lowp, slow_lowp_dtype

Mode = Literal["1p2d", "2p1d", "3d"]
Layout = Literal["release", "intended"]

SN_EPS = 1e-12  # torch.nn.utils.spectral_norm default, used by the release
SN_INIT_ITERS = 15  # power iterations at init (torch.nn.utils.parametrizations.spectral_norm)
N_BLOCKS = 5
# Geometry of the five G3 blocks as ((k, s, p) spatial, (k, s, p) temporal), networks.py
# Generator.__init__: 1x1 -> 4 -> 8 -> 16 -> 32 -> 64 pixels; T0 -> T0+3 -> x2 -> x2 -> same.
BLOCK_GEOMETRY: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((4, 1, 0), (4, 1, 0)),
    ((4, 2, 1), (4, 2, 1)),
    ((4, 2, 1), (4, 2, 1)),
    ((4, 2, 1), (1, 1, 0)),
    ((4, 2, 1), (1, 1, 0)),
)
RESOLUTION = 64  # fixed by BLOCK_GEOMETRY
MIN_T0, MAX_T0 = 1, 9  # demo_multilength.py: zm with 1..9 steps -> 16..48 frames


def n_frames_for(t0: int) -> int:
    """Output length for a motion code of `t0` steps: T = 4 * T0 + 12 (T0+3, then x2 twice)."""
    return 4 * t0 + 12


SUPPORTED_LENGTHS = tuple(n_frames_for(t0) for t0 in range(MIN_T0, MAX_T0 + 1))


@dataclass(frozen=True)
class G3ANConfig:
    """G3AN hyper-parameters; defaults are the paper / official release (cfg.py, networks.py)."""

    c_a: int = 128  # appearance code size z_a (cfg.py --d_za, Generator c_a)
    c_m: int = 10  # motion code size per step z_m (cfg.py --d_zm, Generator c_m)
    ch: int = 64  # generator width multiplier (cfg.py --ch_g, Generator ch)
    channel_mults: tuple[int, ...] = (8, 8, 4, 2, 1)  # out widths / ch of blocks 1..5 (networks.py)
    mode: Mode = "1p2d"  # main-stream factorisation (cfg.py --g_mode; paper's best)
    use_attention: bool = True  # F-SA; released weights and demos use it (train.py default False)
    attention_after: int = 4  # F-SA sits after this G3 block, 1-based (networks.py forward)
    attention_reduction: int = 8  # query/key width = C // 8 (ops.py TSA/SSA q_conv, k_conv)
    attention_layout: Layout = "intended"  # "release" = official scrambled reshape (see above)
    video_d_ch: int = 64  # video discriminator width (cfg.py --ch_d)
    image_d_ch: int = 64  # image discriminator width (cfg.py --ch_d)
    d_channel_mults: tuple[int, ...] = (1, 2, 4, 8)  # D widths / d_ch per stage (networks.py)
    num_classes: int = 0  # ours: 0 = unconditional (official); > 0 = class-conditional
    class_embed_dim: int = 32  # ours: size of the generator's label embedding e_y

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ConfigError(f"G3ANConfig: {msg}")

        if self.mode not in ("1p2d", "2p1d", "3d"):
            bad(f"mode must be '1p2d', '2p1d' or '3d', got {self.mode!r}.")
        if self.attention_layout not in ("release", "intended"):
            bad(f"attention_layout must be 'release' or 'intended', got {self.attention_layout!r}.")
        if len(self.channel_mults) != N_BLOCKS:
            bad(f"channel_mults needs {N_BLOCKS} values (one per G3 block).")
        if len(self.d_channel_mults) != 4:
            bad("d_channel_mults needs 4 values (one per discriminator stage).")
        for name in ("c_a", "c_m", "ch", "video_d_ch", "image_d_ch", "attention_reduction"):
            if getattr(self, name) < 1:
                bad(f"{name} must be at least 1, got {getattr(self, name)}.")
        if min(self.channel_mults) < 1 or min(self.d_channel_mults) < 1:
            bad("channel multipliers must be at least 1.")
        if not 1 <= self.attention_after <= N_BLOCKS:
            bad(f"attention_after must be a block index 1..{N_BLOCKS}, got {self.attention_after}.")
        if self.use_attention and self.attention_channels // self.attention_reduction < 1:
            bad(
                f"attention on {self.attention_channels} channels with reduction "
                f"{self.attention_reduction} leaves no query/key channels; lower the reduction."
            )
        if self.num_classes < 0 or (self.num_classes > 0 and self.class_embed_dim < 1):
            bad("num_classes must be >= 0 and class_embed_dim >= 1 for conditional models.")

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels of each G3 block's streams (the main stream outputs twice this)."""
        return tuple(self.ch * m for m in self.channel_mults)

    @property
    def attention_channels(self) -> int:
        """Channels F-SA works on: the main output [h_s, h_v] of block `attention_after`."""
        return 2 * self.widths[self.attention_after - 1]


# --- spectral normalisation (Miyato et al., ICLR 2018) -----------------------------------------


class _SpectralNorm:
    """Mixin: W_SN = W / sigma(W), sigma ~ u^T W v with one power iteration per training call.

    Same maths and state as the legacy `torch.nn.utils.spectral_norm` the release used
    (parameter `weight_orig`, buffers `weight_u`, `weight_v`, eps 1e-12): in eval mode the
    stored u, v are used as they are, which the released outputs depend on.
    """

    sn_dim: int = 0
    weight_orig: nn.Parameter
    weight_u: Tensor
    weight_v: Tensor

    def _init_spectral_norm(self, sn_dim: int) -> None:
        module: nn.Module = self  # type: ignore[assignment]
        weight = module._parameters.pop("weight")
        self.sn_dim = sn_dim
        module.register_parameter("weight_orig", weight)
        rows, cols = self._weight_matrix(weight.detach()).shape
        u = F.normalize(weight.new_empty(rows).normal_(0, 1), dim=0, eps=SN_EPS)
        v = F.normalize(weight.new_empty(cols).normal_(0, 1), dim=0, eps=SN_EPS)
        module.register_buffer("weight_u", u)
        module.register_buffer("weight_v", v)

    @torch.no_grad()
    def converge_spectral_norm(self, n_iter: int = SN_INIT_ITERS) -> None:
        """Power-iterate u, v on the current weight (after (re-)initialising it).

        The release starts from random u, v (legacy spectral_norm), so a freshly built model in
        eval mode divides by a tiny sigma and explodes; like torch's newer
        `parametrizations.spectral_norm` we iterate at init. Loaded checkpoints overwrite u, v.
        """
        if self.weight_orig.is_meta:
            return
        mat = self._weight_matrix(self.weight_orig)
        for _ in range(n_iter):
            self.weight_v.copy_(F.normalize(mat.t().mv(self.weight_u), dim=0, eps=SN_EPS))
            self.weight_u.copy_(F.normalize(mat.mv(self.weight_v), dim=0, eps=SN_EPS))

    def _weight_matrix(self, weight: Tensor) -> Tensor:
        """The SN dimension first, the rest flattened: (rows, cols)."""
        if self.sn_dim != 0:
            weight = weight.movedim(self.sn_dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def normalized_weight(self) -> Tensor:
        """W_SN = W / sigma(W), sigma = u^T W v, after a power iteration in training mode.

        Inference fast path: in eval mode, when no gradient can flow to the weight, W_SN is
        computed once and reused until W, u or v change (their version counters, storage,
        dtype or device), so generating does no spectral-norm work per call (the release
        re-divides the whole weight on every forward). The result is the same tensor.
        """
        weight = self.weight_orig
        u, v = self.weight_u, self.weight_v
        cacheable = not self.training and not (  # type: ignore[attr-defined]
            torch.is_grad_enabled() and weight.requires_grad
        )
        if cacheable and not torch.is_inference_mode_enabled():
            key = (weight._version, u._version, v._version, weight.data_ptr(), weight.dtype)
            cached = self.__dict__.get("_sn_cache")
            if cached is not None and cached[0] == key:
                return cached[1]
            with torch.no_grad():
                mat = self._weight_matrix(weight)
                w_sn = weight / torch.dot(u, mat.mv(v))
            self.__dict__["_sn_cache"] = (key, w_sn)
            return w_sn
        mat = self._weight_matrix(weight)
        if self.training:  # type: ignore[attr-defined]
            with torch.no_grad():
                v.copy_(F.normalize(mat.t().mv(u), dim=0, eps=SN_EPS))
                u.copy_(F.normalize(mat.mv(v), dim=0, eps=SN_EPS))
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, mat.mv(v))
        return weight / sigma


class SNConv2d(_SpectralNorm, nn.Conv2d):
    """Spectrally normalised Conv2d (SN dim 0)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_spectral_norm(0)

    def forward(self, x: Tensor) -> Tensor:
        return emulated_lowp(self._conv_forward, x, self.normalized_weight(), self.bias)


class SNConv3d(_SpectralNorm, nn.Conv3d):
    """Spectrally normalised Conv3d (SN dim 0)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("SNConv3d takes numeric zero padding only")
        self._init_spectral_norm(0)
        # a purely temporal (k, 1, 1) kernel runs as a 2-D (k, 1) conv on [B, C, T, H*W] (a
        # free view): at one thread PyTorch sends (k, 1, 1) kernels to its slow reference 3-D
        # kernel, and oneDNN's 2-D one is up to 2x faster (forward + backward); same sums
        k, st, pad = self.kernel_size, self.stride, self.padding
        self._temporal_2d = (
            k[1:] == (1, 1)
            and st[1:] == (1, 1)
            and pad[1:] == (0, 0)  # type: ignore[index]
            and self.dilation == (1, 1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
        )

    def forward(self, x: Tensor) -> Tensor:
        weight = self.normalized_weight()
        if self._temporal_2d and x.dim() == 5:
            stride, pad = (self.stride[0], 1), (self.padding[0], 0)
            y = emulated_lowp(F.conv2d, x.flatten(3), weight[..., 0], self.bias, stride, pad)
            return y.unflatten(3, x.shape[3:])  # (B, O, T', H*W) -> (B, O, T', H, W)
        return conv3d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class SNConvTranspose3d(_SpectralNorm, nn.ConvTranspose3d):
    """Spectrally normalised ConvTranspose3d (SN dim 1 = output channels, as torch's default)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_spectral_norm(1)

    def forward(self, x: Tensor) -> Tensor:
        args = (self.stride, self.padding, self.output_padding, self.groups, self.dilation)
        weight = self.normalized_weight()
        if self.kernel_size[0] == 1 and self.kernel_size[1] > 1 and _channels_last_pays(x, weight):
            return _ChannelsLastConvTranspose3d.apply(x, weight, self.bias, args)
        return conv_transpose3d(x, weight, self.bias, *args)


CL_MIN_ELEMENTS = 1 << 20  # inputs from here on take the channels-last transposed conv


def _plain_fp32_cpu(x: Tensor) -> bool:
    """x is fp32 on the CPU and no autocast applies: where the fp32 layout fast paths pay."""
    dev = x.device.type
    return dev == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled(dev)


def _channels_last_pays(x: Tensor, weight: Tensor) -> bool:
    """fp32 CPU spatial up-convolutions on large contiguous inputs (`_ChannelsLastConvTranspose3d`;
    temporal kernels are faster contiguous)."""
    return (
        _plain_fp32_cpu(x)
        and weight.dtype == torch.float32
        and x.dim() == 5
        and x.is_contiguous()
        and x.numel() >= CL_MIN_ELEMENTS
    )


def _to_channels_last(x: Tensor) -> Tensor:
    """Contiguous (B, C, T, H, W) -> the same values in channels_last_3d (`_transpose_copy`)."""
    b, c, t, h, w = x.shape
    return _transpose_copy(x.view(b, c, t * h * w)).view(b, t, h, w, c).permute(0, 4, 1, 2, 3)


def _from_channels_last(x: Tensor) -> Tensor:
    """channels_last_3d (B, C, T, H, W) -> contiguous (`_transpose_copy`)."""
    b, c, t, h, w = x.shape
    return _transpose_copy(x.permute(0, 2, 3, 4, 1).reshape(b, t * h * w, c)).view(b, c, t, h, w)


class _ChannelsLastConvTranspose3d(torch.autograd.Function):
    """conv_transpose3d run by oneDNN in channels_last_3d, contiguous in and out.

    Why: on contiguous tensors oneDNN's CPU transposed conv reorders its output element by
    element (the G3AN paper step's spatial up-convolution [8, 64, 16, 32, 32] -> 64x64: 0.53 s
    forward, 0.44 s backward at fp32, 1 thread); in channels_last_3d the same sums take 0.17 s
    and 0.27 s, and moving the layout with blocked 2-D transposes costs far less than that.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, args: tuple) -> Tensor:
        xc = _to_channels_last(x)
        ctx.save_for_backward(xc, weight)
        ctx.args, ctx.has_bias = args, bias is not None
        return _from_channels_last(F.conv_transpose3d(xc, weight, bias, *args))

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:
        xc, weight = ctx.saved_tensors
        stride, padding, output_padding, groups, dilation = ctx.args
        gy = gy.contiguous()
        mask = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], False)
        gx, gw, _ = torch.ops.aten.convolution_backward(
            _to_channels_last(gy),
            xc,
            weight,
            None,
            stride,
            padding,
            dilation,
            True,
            output_padding,
            groups,
            mask,
        )
        gx = _from_channels_last(gx) if gx is not None else None
        # the bias gradient from oneDNN in channels_last_3d is slow (0.60 s where this is 0.02)
        gb = gy.sum((0, 2, 3, 4)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


class SNEmbedding(_SpectralNorm, nn.Embedding):
    """Spectrally normalised class embedding for the projection discriminators (ours)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_spectral_norm(0)

    def forward(self, labels: Tensor) -> Tensor:
        return F.embedding(labels, self.normalized_weight())


# --- generator --------------------------------------------------------------------------------


class UpConv(nn.Module):
    """One stream layer of a G3 block: SN ConvTranspose3d -> BatchNorm3d -> ReLU."""

    def __init__(
        self,
        *,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int],
        padding: tuple[int, int, int],
    ) -> None:
        super().__init__()
        self.conv = SNConvTranspose3d(in_ch, out_ch, kernel, stride, padding)
        self.bn = nn.BatchNorm3d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _spatial(k: int, s: int, p: int) -> dict[str, tuple[int, int, int]]:
    return {"kernel": (1, k, k), "stride": (1, s, s), "padding": (0, p, p)}


def _temporal(k: int, s: int, p: int) -> dict[str, tuple[int, int, int]]:
    return {"kernel": (k, 1, 1), "stride": (s, 1, 1), "padding": (p, 0, 0)}


class G3Block(nn.Module):
    """G3 module: appearance G_S, motion G_T and main G_V streams, fused.

    h_V <- G_V(h_V) + G_T(h_T) (repeated over H, W);  h_V <- [G_S(h_S) repeated over T, h_V].
    """

    def __init__(
        self,
        *,
        in_app: int,  # channels of h_S (appearance stream input)
        in_main: int,  # channels of h_V (main stream input)
        in_mot: int,  # channels of h_T (motion stream input)
        out_ch: int,  # output channels of every stream (h_V leaves with 2 * out_ch)
        mode: Mode,  # main-stream factorisation: '1p2d' temporal then spatial, '2p1d', '3d'
        spatial: tuple[int, int, int],  # (kernel, stride, padding) of spatial up-convolutions
        temporal: tuple[int, int, int],  # (kernel, stride, padding) of temporal up-convolutions
    ) -> None:
        super().__init__()
        sp, tp = _spatial(*spatial), _temporal(*temporal)
        if mode == "1p2d":
            main = [
                UpConv(in_ch=in_main, out_ch=out_ch, **tp),
                UpConv(in_ch=out_ch, out_ch=out_ch, **sp),
            ]
        elif mode == "2p1d":
            main = [
                UpConv(in_ch=in_main, out_ch=out_ch, **sp),
                UpConv(in_ch=out_ch, out_ch=out_ch, **tp),
            ]
        else:  # '3d': one (k_t, k, k) up-convolution
            both = {key: (tp[key][0], *sp[key][1:]) for key in sp}
            main = [UpConv(in_ch=in_main, out_ch=out_ch, **both)]
        self.main = nn.Sequential(*main)
        self.appearance = UpConv(in_ch=in_app, out_ch=out_ch, **sp)
        self.motion = UpConv(in_ch=in_mot, out_ch=out_ch, **tp)

    def forward(self, h_s: Tensor, h_v: Tensor, h_t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h_v = self.main(h_v)  # (B, C, T, H, W)
        h_s = self.appearance(h_s)  # (B, C, 1, H, W)
        h_t = self.motion(h_t)  # (B, C, T, 1, 1)
        b, c, t, h, w = h_v.shape
        if not _needs_grad(h_s, h_v, h_t) and h_s.dtype == h_v.dtype == h_t.dtype:
            # inference: both fusions written straight into the output (no h_v + h_t temporary)
            out = h_v.new_empty(b, 2 * c, t, h, w)
            out[:, :c].copy_(h_s.expand(-1, -1, t, -1, -1))
            torch.add(h_v, h_t, out=out[:, c:])
            return h_s, out, h_t
        h_v = h_v + h_t  # fusion: motion added at every pixel (broadcast over H, W)
        h_v = torch.cat(
            [h_s.expand(-1, -1, t, -1, -1), h_v], dim=1
        )  # fusion: appearance first, (B, 2C, T, H, W)
        return h_s, h_v, h_t


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(x.requires_grad for x in tensors)


ATTENTION_CHUNK = 1 << 21  # score elements per GEMM chunk (8 MB in fp32): cache-sized


def _chunk_rows(seq: int) -> int:
    """Sequences per attention chunk: `ATTENTION_CHUNK` scores, at least one sequence."""
    return max(1, ATTENTION_CHUNK // (seq * seq))


def _transpose_copy(x: Tensor) -> Tensor:
    x = x.contiguous()
    if x.shape[1] <= x.shape[2] and torch.get_num_threads() > 1:
        # few long rows: PyTorch's strided copy runs on every thread and beats the one-thread
        # blocked copy there ([8, 64, 65536]: 43 vs 83 ms at 2 threads; reversed, 154 vs 95)
        return x.transpose(1, 2).contiguous()
    out = x.new_empty(x.shape[0], x.shape[2], x.shape[1])
    for i in range(x.shape[0]):  # a 2-D transposed source takes PyTorch's blocked copy
        out[i].copy_(x[i].t())
    return out


class _SwapLast2(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return _transpose_copy(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return _transpose_copy(grad)


def swap_last2(x: Tensor) -> Tensor:
    """(B, P, Q) -> contiguous (B, Q, P), forward and backward.

    Why: PyTorch copies a transposed 2-D matrix in cache blocks but a transposed batch element by
    element, and F-SA moves the channels of [8, 256, 16, 32, 32] activations to the end and back
    (forward and backward): 205 -> 83 ms per copy as one 2-D copy per batch item (fp32, 1 thread).
    """
    return _SwapLast2.apply(x)


def _attend(q: Tensor, k: Tensor, v: Tensor, residual: Tensor | None) -> Tensor:
    """softmax(Q K^T) V (+ residual) over `(N, L, *)` sequences, unscaled as the release.

    Plain GEMMs on the narrow q, k (C/8 channels) instead of a fused SDPA kernel: the fused
    CPU kernels need one head size, and zero-padding q, k to the width of v multiplies the
    score work by 8 (measured 1.5-2x slower on the 16 x 1024 spatial scores of the paper
    configuration). Sequences are processed in chunks of at most `ATTENTION_CHUNK` scores so
    the score matrices stay small (the release materialises all of them at once); the residual
    is added by the second GEMM (baddbmm).
    """
    seq = q.shape[1]
    step = _chunk_rows(seq)
    # split, not slicing: the backward of a slice fills a whole zero tensor per chunk
    parts = [x.split(step) for x in (q, k, v)]
    res = residual.split(step) if residual is not None else [None] * len(parts[0])
    outs = []
    for q_i, k_i, v_i, r_i in zip(*parts, res):
        probs = emulated_lowp(torch.bmm, q_i, k_i.transpose(1, 2)).softmax(-1)  # (n, L, L)
        if r_i is None:
            outs.append(emulated_lowp(torch.bmm, probs, v_i))
        else:
            outs.append(emulated_lowp(torch.baddbmm, r_i, probs, v_i))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


class _FusedAttention(torch.autograd.Function):
    """softmax(Q K^T) V (+ residual) on one fused projection `qkv = [q, k, v]` (N, L, 2d + C).

    Why (fp32, where the step is GEMM-bound): the chunked autograd version pays a concatenation
    of the chunk outputs forward, of the chunk gradients backward (split), and three projection
    GEMMs with K = 32 for the narrow q, k. Here every chunk writes into preallocated outputs,
    the gradient comes back as one (N, L, 2d + C) tensor, and the projection's backward is one
    GEMM each for the input and the weight. The probabilities are kept for backward, as
    autograd keeps them.
    """

    @staticmethod
    def forward(ctx: Any, qkv: Tensor, residual: Tensor | None, d: int) -> Tensor:
        n, seq, _ = qkv.shape
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        out = v.new_empty(v.shape)
        keep = any(ctx.needs_input_grad)  # probabilities for backward
        probs = qkv.new_empty(n, seq, seq) if keep else None
        step = _chunk_rows(seq)
        for i in range(0, n, step):
            j = min(n, i + step)
            scores = torch.bmm(q[i:j], k[i:j].transpose(1, 2))
            p = torch.softmax(scores, -1, out=probs[i:j]) if keep else scores.softmax(-1)
            if residual is None:
                torch.bmm(p, v[i:j], out=out[i:j])
            else:
                torch.baddbmm(residual[i:j], p, v[i:j], out=out[i:j])
        if keep:
            ctx.save_for_backward(qkv, probs)
        ctx.d, ctx.has_residual = d, residual is not None
        return out

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        qkv, probs = ctx.saved_tensors
        d = ctx.d
        g = g.contiguous()
        n, seq, _ = qkv.shape
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        g_qkv = torch.empty_like(qkv)
        gq, gk, gv = g_qkv[..., :d], g_qkv[..., d : 2 * d], g_qkv[..., 2 * d :]
        step = _chunk_rows(seq)
        for i in range(0, n, step):
            j = min(n, i + step)
            p = probs[i:j]
            gv[i:j] = torch.bmm(p.transpose(1, 2), g[i:j])
            gp = torch.bmm(g[i:j], v[i:j].transpose(1, 2))
            gs = torch._softmax_backward_data(gp, p, -1, p.dtype)
            gq[i:j] = torch.bmm(gs, k[i:j])
            gk[i:j] = torch.bmm(gs.transpose(1, 2), q[i:j])
        return g_qkv, g if ctx.has_residual else None, None


class SelfAttention(nn.Module):
    """Self-attention along one axis of a video (SAGAN-style): out = gamma * softmax(Q K^T) V + x.

    `axis="time"` is the temporal branch (each pixel over its T steps, official TSA),
    `axis="space"` the spatial branch (each frame over its H*W positions, official SSA).
    """

    def __init__(
        self, *, channels: int, reduction: int, axis: Literal["time", "space"], layout: Layout
    ) -> None:
        super().__init__()
        self.axis = axis
        self.layout = layout
        self.query = SNConv3d(channels, channels // reduction, 1)
        self.key = SNConv3d(channels, channels // reduction, 1)
        self.value = SNConv3d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))  # starts as identity (SAGAN)

    def _tokens(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> sequences of tokens along the attention axis."""
        b, c, t, h, w = x.shape
        if x.is_contiguous():  # channels to the end by blocked 2-D transposes (see swap_last2)
            x = swap_last2(x.view(b, c, t * h * w)).view(b, t, h * w, c)
            if self.axis == "space":
                return x.view(b * t, h * w, c)
            return x.transpose(1, 2).reshape(b * h * w, t, c)  # copies whole C-rows
        if self.axis == "time":
            x = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)  # (b h w) t c
        else:
            x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)  # (b t) (h w) c
        return x.contiguous()

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        tokens = self._tokens(x)  # (N, L, C)
        # the 1x1x1 convolutions q, k, v as linear maps on the tokens (same weights); gamma is
        # folded into v: gamma * softmax(QK^T) V = softmax(QK^T) (gamma V)
        w_q, w_k, w_v = (
            m.normalized_weight().flatten(1) for m in (self.query, self.key, self.value)
        )
        b_v = None if self.value.bias is None else self.value.bias * self.gamma
        residual = tokens if self.layout == "intended" else None  # added inside the GEMM
        if _plain_fp32_cpu(tokens):  # bf16 and other devices keep `_attend`
            biases = [(self.query.bias, w_q), (self.key.bias, w_k), (b_v, w_v)]
            bias = torch.cat([w.new_zeros(w.shape[0]) if b is None else b for b, w in biases])
            qkv = F.linear(tokens, torch.cat([w_q, w_k, w_v * self.gamma]), bias)
            out = _FusedAttention.apply(qkv, residual, w_q.shape[0])  # (N, L, C)
        else:
            q, k = (
                emulated_lowp(F.linear, tokens, w, m.bias)
                for w, m in ((w_q, self.query), (w_k, self.key))
            )
            v = emulated_lowp(F.linear, tokens, w_v * self.gamma, b_v)
            out = _attend(q, k, v, residual)  # (N, L, C)
        if self.layout == "release":
            # the release's raw view(b, h, w, C, t) of this memory, then permute to (B,C,T,H,W)
            return out.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2) + x
        if self.axis == "time":
            return out.view(b, h, w, t, c).permute(0, 4, 3, 1, 2)  # (b h w) t c -> b c t h w
        # (b t) (h w) c -> b c t h w, one copy here; left strided, every later layer pays for it
        return swap_last2(out.view(b, t * h * w, c)).view(b, c, t, h, w)


class FactorizedSpatioTemporalAttention(nn.Module):
    """F-SA: temporal self-attention followed by spatial self-attention."""

    def __init__(self, *, channels: int, reduction: int, layout: Layout) -> None:
        super().__init__()
        self.temporal = SelfAttention(
            channels=channels, reduction=reduction, axis="time", layout=layout
        )
        self.spatial = SelfAttention(
            channels=channels, reduction=reduction, axis="space", layout=layout
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.temporal(x))


class G3ANGenerator(VideoGenerator):
    """G3AN generator: five G3 blocks, F-SA, a Conv3d to RGB and tanh.

    `z_content` is the appearance code z_a `[B, c_a]`, `z_motion` the motion code z_m
    `[B, c_m, T0]`; the video has T = 4 * T0 + 12 frames of 64x64 (T0 = 1 gives 16 frames).
    """

    continuous_time = False
    supported_lengths = SUPPORTED_LENGTHS

    def __init__(self, cfg: G3ANConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or G3ANConfig()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        e = cfg.class_embed_dim if cfg.num_classes else 0
        self.label_embed = nn.Embedding(cfg.num_classes, e) if cfg.num_classes else None

        in_app, in_main, in_mot = cfg.c_a + e, cfg.c_a + cfg.c_m + 2 * e, cfg.c_m + e
        blocks = []
        for width, (spatial, temporal) in zip(cfg.widths, BLOCK_GEOMETRY):
            blocks.append(
                G3Block(
                    in_app=in_app,
                    in_main=in_main,
                    in_mot=in_mot,
                    out_ch=width,
                    mode=cfg.mode,
                    spatial=spatial,
                    temporal=temporal,
                )
            )
            in_app, in_main, in_mot = width, 2 * width, width
        self.blocks = nn.ModuleList(blocks)
        self.fsa = (
            FactorizedSpatioTemporalAttention(
                channels=cfg.attention_channels,
                reduction=cfg.attention_reduction,
                layout=cfg.attention_layout,
            )
            if cfg.use_attention
            else None
        )
        self.to_rgb = nn.Conv3d(in_main, 3, (1, 3, 3), 1, (0, 1, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init (networks.py init_weights): Conv3d N(0, 0.02), BN gain N(1, 0.02), bias 0.

        Transposed convolutions keep PyTorch's default init, as in the release.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                w = m.weight_orig if isinstance(m, _SpectralNorm) else m.weight
                nn.init.normal_(w, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        _converge_all(self)

    # --- contract ---------------------------------------------------------------------------
    def sample_latents(
        self,
        batch: int,
        *,
        n_frames: int = 16,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Latents:
        """z_a ~ N(0, I) `[B, c_a]`, then z_m ~ N(0, I) `[B, c_m, T0]` (trainer.py, demos)."""
        self.check_length(n_frames)
        t0 = (n_frames - 12) // 4
        dev = self.device
        z_app = torch.randn(batch, self.cfg.c_a, generator=generator, device=dev)
        z_mot = torch.randn(batch, self.cfg.c_m, t0, generator=generator, device=dev)
        if self.num_classes:
            if labels is None:
                labels = torch.randint(self.num_classes, (batch,), generator=generator, device=dev)
            labels = self._check_labels(labels, batch)
        elif labels is not None:
            raise VidganError("labels were given, but this G3AN model is unconditional.")
        return Latents(content=z_app, motion=z_mot, labels=labels)

    def frame_times(self, n_frames: int) -> Tensor:
        """Frame indices 0..T-1 as float: G3AN renders the integer grid only."""
        self.check_length(n_frames)
        return torch.arange(n_frames, dtype=torch.float32, device=self.device)

    def forward(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        noise: list[Tensor] | None = None,
    ) -> Tensor:
        """Videos `[B, 3, 4*T0+12, 64, 64]` in (-1, 1) from z_a `[B, c_a]`, z_m `[B, c_m, T0]`."""
        cfg = self.cfg
        check_shape(z_content, (None, cfg.c_a), "z_content")
        b = z_content.shape[0]
        check_shape(z_motion, (b, cfg.c_m, None), "z_motion")
        if noise is not None:
            raise VidganError("G3AN takes no noise inputs; pass noise=None.")
        t0 = z_motion.shape[2]
        n_frames = n_frames_for(t0)
        times = expand_times(t, b)
        if times.shape[1] != n_frames:
            raise VidganError(
                f"G3AN makes {n_frames} frames from a motion code of {t0} steps "
                f"(T = 4*T0 + 12), but {times.shape[1]} timestamps were given."
            )
        grid = torch.arange(n_frames, device=times.device, dtype=times.dtype)
        if not torch.equal(times, grid.expand_as(times)):
            raise VidganError("G3AN renders frames 0..T-1 only; pass t = G.frame_times(T).")
        return self.synthesize(z_content, z_motion, labels=labels)

    def synthesize(self, z_app: Tensor, z_mot: Tensor, *, labels: Tensor | None = None) -> Tensor:
        """The official forward G(z_a, z_m) on `[B, c_a]` and `[B, c_m, T0]` codes."""
        z_app = z_app[:, :, None, None, None]  # (B, c_a, 1, 1, 1)
        z_mot = z_mot[:, :, :, None, None]  # (B, c_m, T0, 1, 1)
        if self.label_embed is not None:
            e = self.label_embed(self._check_labels(labels, z_app.shape[0]))  # (B, E)
            e = e[:, :, None, None, None].to(z_app.dtype)
            z_app = torch.cat([z_app, e], 1)  # (B, c_a+E, 1, 1, 1)
            z_mot = torch.cat([z_mot, e.expand(-1, -1, z_mot.shape[2], -1, -1)], 1)
        elif labels is not None:
            raise VidganError("labels were given, but this G3AN model is unconditional.")
        h_v = torch.cat(
            [z_app.expand(-1, -1, z_mot.shape[2], -1, -1), z_mot], 1
        )  # (B,Ca+Cm,T0,1,1)
        h_s, h_t = z_app, z_mot
        for i, block in enumerate(self.blocks, start=1):
            h_s, h_v, h_t = block(h_s, h_v, h_t)
            if self.fsa is not None and i == self.cfg.attention_after:
                h_v = self.fsa(h_v)
        return torch.tanh(_frame_conv_few_outputs(h_v, self.to_rgb))

    def _check_labels(self, labels: Tensor | None, batch: int) -> Tensor:
        if labels is None:
            raise VidganError(
                f"this G3AN model is conditional on {self.num_classes} classes; pass labels."
            )
        return _check_labels(labels, batch, self.num_classes)


def _tap_offsets(kh: int, kw: int, ph: int, pw: int) -> list[tuple[int, int, int]]:
    """(tap index, dy, dx) of a (kh, kw) kernel with padding (ph, pw): tap (i, j) reads x[p + d]."""
    return [(i * kw + j, i - ph, j - pw) for i in range(kh) for j in range(kw)]


def _rows(n: int, d: int) -> tuple[slice, slice]:
    """Output positions p with 0 <= p + d < n, and the positions p + d they read."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n + min(0, d))


def _mm_into(out: Tensor, a: Tensor, b: Tensor) -> None:
    """out = a @ b, written in place where the dtype has native kernels."""
    if slow_lowp_dtype(a) is None:
        torch.mm(a, b, out=out)
    else:
        out.copy_(emulated_lowp(torch.mm, a, b))


class _FewOutputFrameConv(torch.autograd.Function):
    """Same-size frame conv with few output channels as one GEMM plus shifted adds (see
    `_frame_conv_few_outputs`); its backward is two GEMMs on the shifted output gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, taps: Tensor, bias: Tensor | None, geom: tuple) -> Tensor:
        kh, kw, ph, pw = geom
        b, c, t, h, w = x.shape
        o = taps.shape[0] // (kh * kw)
        dev = x.device.type
        dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        with torch.autocast(dev, enabled=False):
            xd, td = x.to(dt), taps.to(dt)
            xs = xd.view(b, c, t * h * w)
            z = x.new_empty(b, kh * kw * o, t * h * w, dtype=dt)
            for i in range(b):  # matmul on a batch would transpose-copy x
                _mm_into(z[i], td, xs[i])
            z = z.view(b, kh * kw, o, t, h, w)
            y = z[:, ph * kw + pw].clone()  # the centre tap reads every position
            for k, dy, dx in _tap_offsets(kh, kw, ph, pw):
                if dy or dx:
                    (oy, iy), (ox, ix) = _rows(h, dy), _rows(w, dx)
                    y[..., oy, ox] += z[:, k, ..., iy, ix]
            if bias is not None:
                y += bias.to(dt).view(1, o, 1, 1, 1)
        ctx.save_for_backward(xd, td)
        ctx.geom, ctx.dtypes, ctx.has_bias = geom, (x.dtype, taps.dtype), bias is not None
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:
        xd, td = ctx.saved_tensors
        kh, kw, ph, pw = ctx.geom
        b, c, t, h, w = xd.shape
        o = gy.shape[1]
        with torch.autocast(gy.device.type, enabled=False):
            g = gy.to(td.dtype)
            gz = g.new_zeros(b, kh * kw, o, t, h, w)  # d loss / d (tap products)
            for k, dy, dx in _tap_offsets(kh, kw, ph, pw):
                (oy, iy), (ox, ix) = _rows(h, dy), _rows(w, dx)
                gz[:, k, ..., iy, ix] = g[..., oy, ox]
            gz = gz.view(b, kh * kw * o, t * h * w)
            gx = gt = None
            if ctx.needs_input_grad[0]:
                gx = xd.new_empty(b, c, t * h * w)
                for i in range(b):
                    _mm_into(gx[i], td.t(), gz[i])
                gx = gx.view(b, c, t, h, w).to(ctx.dtypes[0])
            if ctx.needs_input_grad[1]:
                xs = xd.view(b, c, t * h * w)
                gt = sum(emulated_lowp(torch.mm, gz[i], xs[i].t()).float() for i in range(b))
                gt = gt.to(ctx.dtypes[1])
            gb = g.float().sum((0, 2, 3, 4)) if ctx.has_bias else None
        return gx, gt, gb, None


def _frame_conv_few_outputs(x: Tensor, conv: nn.Conv3d) -> Tensor:
    """`conv` (kernel (1, kh, kw), stride 1, same size) on `[B, C, T, H, W]`: a GEMM and shifts.

    Why: for the 3-channel output conv the library kernels run far below the GEMM rate (3 output
    channels; fp32, 1 thread, paper configuration at batch 8: 0.23 s forward, 0.58 s backward).
    Here every tap's product W_ij x is one GEMM with kh*kw*O rows and the shifted taps are
    summed; the backward shifts the output gradient into the kh*kw taps and runs two GEMMs.
    Equal to the convolution up to the order of the sums, forward and backward, in training
    and inference, under autocast in its dtype.
    """
    w = conv.weight  # (O, C, 1, kh, kw)
    o, c, _, kh, kw = w.shape
    ph, pw = conv.padding[1], conv.padding[2]  # type: ignore[misc]
    same = 2 * ph == kh - 1 and 2 * pw == kw - 1 and conv.padding[0] == 0  # type: ignore[misc]
    if not (same and w.shape[2] == 1 and conv.stride == (1, 1, 1) and conv.groups == 1):
        return conv(x)  # the shifted sums assume as many output positions as input positions
    taps = w[:, :, 0].permute(2, 3, 0, 1).reshape(kh * kw * o, c)  # (i j o) c
    return _FewOutputFrameConv.apply(x.contiguous(), taps, conv.bias, (kh, kw, ph, pw))


def _check_labels(labels: Tensor, batch: int, num_classes: int) -> Tensor:
    check_shape(labels, (batch,), "labels")
    if labels.is_floating_point() or labels.is_complex():
        raise VidganError("labels must be integer class ids.")
    if batch and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise VidganError(f"labels must lie in 0..{num_classes - 1}.")
    return labels.long()


# --- discriminators -----------------------------------------------------------------------------


def _converge_all(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, _SpectralNorm):
            m.converge_spectral_norm()


def _init_disc(module: nn.Module) -> None:
    """Official D init (networks.py): conv weights N(0, 0.02), PyTorch default biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.normal_(m.weight_orig, 0.0, 0.02)
    _converge_all(module)


class _Projection(nn.Module):
    """Projection term <embed(y), phi(x)> (Miyato & Koyama 2018), averaged over positions."""

    def __init__(self, *, num_classes: int, channels: int) -> None:
        super().__init__()
        self.embed = SNEmbedding(num_classes, channels)
        nn.init.normal_(self.embed.weight_orig, 0.0, 0.02)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        e = self.embed(labels).to(features.dtype)  # (B, C)
        proj = torch.einsum("bc,bc...->b...", e, features)  # (B, *positions)
        return proj.flatten(1).mean(1)


class _ConditionalD(nn.Module):
    num_classes: int
    projection: _Projection | None

    def _projection(self, features: Tensor, labels: Tensor | None) -> Tensor | None:
        if self.projection is None:
            if labels is not None:
                raise VidganError(
                    "labels were given, but this G3AN discriminator is unconditional."
                )
            return None
        if labels is None:
            raise VidganError(
                f"this discriminator is conditional on {self.num_classes} classes; pass labels."
            )
        return self.projection(features, _check_labels(labels, features.shape[0], self.num_classes))


class VideoDiscriminator(_ConditionalD):
    """(2+1)D video discriminator D_V: 4 x [SN conv (1,4,4)/2, SN conv (4,1,1)], head.

    Works on [B, 3, T, 64, 64] with T >= 16; for T = 16 the logit is the official one, longer
    clips average the head's logit map over time (ours).
    """

    def __init__(
        self, *, ch: int = 64, mults: Sequence[int] = (1, 2, 4, 8), num_classes: int = 0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = [ch * m for m in mults]
        stages: list[nn.Module] = []
        in_ch = 3
        for w in widths:
            stages.append(SNConv3d(in_ch, w, (1, 4, 4), (1, 2, 2), (0, 1, 1)))  # space: H/2
            stages.append(SNConv3d(w, w, (4, 1, 1), 1, 0))  # time: T-3
            in_ch = w
        self.stages = nn.ModuleList(stages)
        self.final_spatial = SNConv3d(in_ch, in_ch, (1, 4, 4), 1, 0)  # 4x4 -> 1x1
        self.logit = SNConv3d(in_ch, 1, (4, 1, 1), 1, 0)  # 4 steps -> 1
        self.projection = (
            _Projection(num_classes=num_classes, channels=in_ch) if num_classes else None
        )
        _init_disc(self)

    def forward(self, video: Tensor, labels: Tensor | None = None) -> Tensor:
        """Logits `[B]` for videos `[B, 3, T, H, W]`."""
        check_shape(video, (None, 3, None, None, None), "video")
        if video.shape[2] < 16 or min(video.shape[3:]) < RESOLUTION:
            raise VidganError(
                f"the G3AN video discriminator needs at least 16 frames of {RESOLUTION}x"
                f"{RESOLUTION}, got {video.shape[2]} of {video.shape[3]}x{video.shape[4]}."
            )
        h = video
        for conv in self.stages:
            h = F.leaky_relu(conv(h), 0.2)
        h = F.leaky_relu(self.final_spatial(h), 0.2)  # phi(x): (B, C, T', 1, 1)
        out = self.logit(h).flatten(1).mean(1)  # (B,)
        proj = self._projection(h, labels)
        return out if proj is None else out + proj


class ImageDiscriminator(_ConditionalD):
    """Image discriminator D_I: 4 SN conv 4/2/1 with LeakyReLU 0.2, SN conv 4/1/0."""

    def __init__(
        self, *, ch: int = 64, mults: Sequence[int] = (1, 2, 4, 8), num_classes: int = 0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        stages: list[nn.Module] = []
        in_ch = 3
        for m in mults:
            stages.append(SNConv2d(in_ch, ch * m, 4, 2, 1))
            in_ch = ch * m
        self.stages = nn.ModuleList(stages)
        self.logit = SNConv2d(in_ch, 1, 4, 1, 0)
        self.projection = (
            _Projection(num_classes=num_classes, channels=in_ch) if num_classes else None
        )
        _init_disc(self)

    def forward(self, image: Tensor, labels: Tensor | None = None) -> Tensor:
        """Logits `[B]` for frames `[B, 3, H, W]`."""
        check_shape(image, (None, 3, None, None), "image")
        if min(image.shape[2:]) < RESOLUTION:
            raise VidganError(
                f"the G3AN image discriminator needs {RESOLUTION}x{RESOLUTION} frames, "
                f"got {image.shape[2]}x{image.shape[3]}."
            )
        h = image
        for conv in self.stages:
            h = F.leaky_relu(conv(h), 0.2)  # phi(x) after the last one: (B, C, 4, 4)
        out = self.logit(h).flatten(1).mean(1)  # (B,)
        proj = self._projection(h, labels)
        return out if proj is None else out + proj


def build_generator(cfg: G3ANConfig) -> G3ANGenerator:
    return G3ANGenerator(cfg)


def build_discriminators(cfg: G3ANConfig) -> dict[str, nn.Module]:
    """{"image": D_I, "video": D_V} for `cfg` (conditional when cfg.num_classes > 0)."""
    return {
        "image": ImageDiscriminator(
            ch=cfg.image_d_ch, mults=cfg.d_channel_mults, num_classes=cfg.num_classes
        ),
        "video": VideoDiscriminator(
            ch=cfg.video_d_ch, mults=cfg.d_channel_mults, num_classes=cfg.num_classes
        ),
    }


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (spectral-norm u, v and BN statistics are buffers)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


register_model(
    ModelSpec(
        name="g3an",
        config_cls=G3ANConfig,
        build_generator=build_generator,
        build_discriminators=build_discriminators,
        recipe=None,
        description="G3AN (CVPR 2020): three-stream G3 generator with F-SA, 64x64, 16-48 frames.",
    )
)

__all__ = [
    "SUPPORTED_LENGTHS",
    "FactorizedSpatioTemporalAttention",
    "G3ANConfig",
    "G3ANGenerator",
    "G3Block",
    "ImageDiscriminator",
    "SNConv2d",
    "SNConv3d",
    "SNConvTranspose3d",
    "SNEmbedding",
    "SelfAttention",
    "UpConv",
    "VideoDiscriminator",
    "build_discriminators",
    "build_generator",
    "count_parameters",
    "n_frames_for",
]
