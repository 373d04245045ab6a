"""DIGAN: Generating Videos with Dynamics-aware Implicit Generative Adversarial Networks.

Yu, Tack, Mo, Kim, Kim, Ha, Shin (ICLR 2022), arXiv:2202.10571, github:sihyun-yu/digan (built on
INR-GAN and StyleGAN2-ADA). Covers sec. 3.1 (the INR generator over (x, y, t): content mapping,
Fourier coordinate features whose phase is shifted by a motion code times t, per-pixel FMM layers,
skip ToRGB), sec. 3.2 (motion discriminator on a frame pair and its time gap, image
discriminator) and the project page's uses of a continuous video: any times, long videos in
chunks, space up-sampling, zoom-out, diverse motion, single frames.

Speed: everything that does not depend on t (mapping, modulated weights, Fourier frequencies,
the motion code) is computed once per video in `prepare`, and `render` only does the per-frame
work. Time only rotates each (sin, cos) Fourier pair, so `render` computes the features once per
call and rotates the (small) weights of the layer they feed per frame instead; gains and biases
are applied in place and upsampled maps are added by broadcasting. What is left per frame is the
1x1 layers' matrix products (about 15 GFLOP per 128 px frame at the paper's widths). Frames never
interact, so chunked generation equals one-shot generation exactly (in fp32; bf16 kernels may round
a frame differently with the number of frames per GEMM).

Inference (no autograd) keeps the maps pixel-major, `[B, T, H*W, C]` (`_render_pixels`): each
1x1 layer is then one oneDNN linear on T*H*W rows with its bias and lrelu fused into the GEMM's
output pass, and the upsampled skips are added along contiguous channels. Frames go in groups
that keep each map near `PIXEL_GROUP` pixels (the 32 px blocks take 16 frames per GEMM, the
128 px ones one). digan-paper-128 in bf16 on a 2-core AMX Xeon: 21 -> 67-78 frames/s, 47-54% of
the machine's bf16 GEMM peak (benchmarks/README.md). Training and traces keep the layout above.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import ConfigError, VidganError
from vidgan.heap import raise_mmap_threshold
from vidgan.models.base import Latents, VideoGenerator, check_shape, expand_times
from vidgan.models.registry import ModelSpec, register_model
from vidgan.nn.equalized import SQRT2, EqualLinear
from vidgan.nn.inr import (
    CoordGrid,
    FMMLinear,
    ModulatedToRGB,
    TemporalFourierFeatures,
    add_upsampled_,
    pixel_add_upsampled_,
    pixel_features,
    pixel_frames_layer,
    pixel_layer,
)
from vidgan.nn.stylegan2 import minibatch_stddev
from vidgan.nn.upfirdn import make_kernel, upfirdn2d


@dataclass(frozen=True)
class DIGANConfig:
    """DIGAN hyper-parameters; defaults = the official 128 px run (configs/digan.yml, train.py)."""

    resolution: int = 128  # train.py hard-codes img_resolution = 128 for every dataset
    z_dim: int = 512  # Generator(z_dim=512): content code
    w_dim: int = 512  # Generator(w_dim=512)
    motion_dim: int = 512  # Generator.forward draws z_motion = randn(B, 512)
    num_classes: int = 0  # c_dim: 0 = unconditional; >0 embeds the label into the mapping
    mapping_layers: int = 2  # mapping_kwargs.num_layers = 2 (train.py)
    mapping_lr_mult: float = 0.01  # MappingNetwork lr_multiplier default
    w_avg_beta: float = 0.995  # MappingNetwork w_avg_beta default (truncation centre)
    input_resolution: int = 32  # digan.yml input.resolution: blocks b4..b32 all work at 32 px
    channel_base: int = 32768  # synthesis_kwargs.channel_base: C(res) = min(base // res, max)
    channel_max: int = 512  # synthesis_kwargs.channel_max
    fmm_rank: int = 10  # digan.yml fmm.rank
    emb_size_low: int = 128  # coords.low_res_cfg.predictable_emb_size (fusers below emb_high_from)
    emb_size_high: int = 128  # coords.medium_res_cfg.predictable_emb_size
    emb_high_from: int = 128  # coords.res_configs: 128 and 256 use medium_res_cfg
    fourier_scale: float = math.sqrt(10)  # CoordFuser fourier_scale default sqrt(10)
    motion_sigma: float = 0.25  # coords.motion_sigma
    num_extra_convs: int = 1  # digan.yml num_extra_convs {"128": 1, "256": 1}
    extra_convs_from: int = 128  # ... i.e. blocks working at >= 128 px get them
    n_frames: int = 16  # frames per training clip; frame k is at t = k / (n_frames - 1)
    d_channel_base: int = 32768  # D channel_base (train.py)
    d_channel_max: int = 512  # D channel_max
    d_mbstd_group: int = 4  # epilogue mbstd_group_size (cfg auto: min(batch_per_gpu, 4))
    d_mbstd_channels: int = 1  # MinibatchStdLayer num_channels default
    d_conv_clamp: float | None = 256.0  # D conv_clamp = 256
    d_mapping_layers: int = 8  # conditional D's label MappingNetwork num_layers default
    d_cmap_dim: int | None = None  # conditional D projection size, None = channels at 4x4

    def __post_init__(self) -> None:
        for name in ("resolution", "input_resolution"):
            v = getattr(self, name)
            if v < 4 or v & (v - 1):
                raise ConfigError(f"DIGANConfig.{name} must be a power of two >= 4, got {v}.")
        if self.input_resolution > self.resolution:
            raise ConfigError("DIGANConfig.input_resolution must not exceed resolution.")
        if min(self.emb_size_low, self.emb_size_high, self.fmm_rank) < 1:
            raise ConfigError("DIGANConfig emb_size_low/high and fmm_rank must be >= 1.")
        if self.n_frames < 2:
            raise ConfigError(f"DIGANConfig.n_frames must be >= 2, got {self.n_frames}.")

    def channels(self, res: int) -> int:
        """Generator width of block `b{res}`."""
        return min(self.channel_base // res, self.channel_max)

    def d_channels(self, res: int) -> int:
        """Discriminator width at resolution `res`."""
        return min(self.d_channel_base // res, self.d_channel_max)

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(2, int(math.log2(self.resolution)) + 1))


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) + eps) per row (StyleGAN's PixelNorm on latent vectors)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def one_hot_labels(labels: Tensor | None, num_classes: int, batch: int) -> Tensor | None:
    """Class ids `[B]` (or one-hot `[B, K]`) -> float one-hot `[B, K]`; None if unconditional."""
    if num_classes == 0:
        return None
    if labels is None:
        raise VidganError(f"this model is class-conditional ({num_classes} classes): pass labels.")
    if labels.ndim == 1:
        if labels.shape[0] != batch or labels.min() < 0 or labels.max() >= num_classes:
            raise VidganError(f"labels must be {batch} class ids in [0, {num_classes}).")
        return F.one_hot(labels.long(), num_classes).float()
    check_shape(labels, (batch, num_classes), "labels")
    return labels.float()


# --- content mapping ------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """w = MLP([PixelNorm(z); PixelNorm(E c)]) (StyleGAN2-ADA mapping; DIGAN sec. 3.1 content)."""

    def __init__(
        self,
        *,
        z_dim: int,
        w_dim: int,
        num_classes: int = 0,
        num_layers: int = 2,
        lr_mul: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        """z_dim 0 = labels only (the conditional D's label map); w_avg_beta None = no w_avg."""
        super().__init__()
        self.z_dim, self.num_classes, self.num_layers = z_dim, num_classes, num_layers
        self.w_avg_beta = w_avg_beta
        embed = w_dim if num_classes > 0 else 0
        if num_classes > 0:
            self.embed = EqualLinear(num_classes, embed)
        dims = [z_dim + embed] + [w_dim] * num_layers
        for i in range(num_layers):
            layer = EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation="lrelu")
            setattr(self, f"fc{i}", layer)
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self, z: Tensor | None, labels: Tensor | None = None, truncation_psi: float = 1.0
    ) -> Tensor:
        """`[B, z_dim]` (+ labels: ids `[B]` or one-hot `[B, K]`) -> w `[B, w_dim]`.

        truncation_psi < 1 pulls w towards the tracked average w_avg (StyleGAN truncation).
        """
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.float()))
        if self.num_classes > 0:
            batch = z.shape[0] if z is not None else labels.shape[0]
            c = one_hot_labels(labels, self.num_classes, batch)
            parts.append(normalize_2nd_moment(self.embed(c)))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.w_avg_beta is not None and self.training:
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            x = self.w_avg.to(x.dtype).lerp(x, truncation_psi)
        return x


# --- INR synthesis ----------------------------------------------------------------------------


class SynthesisBlock(nn.Module):
    """One scale of the INR synthesis: [nearest x2] + fresh Fourier coordinates, FMM layers, ToRGB.

    The first block starts from coordinates alone (`in_channels` = 0); blocks above the input
    resolution upsample the features and the RGB skip (nearest) and concatenate new Fourier
    features of the finer grid (features first, coordinates after).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        up: bool,
        emb_size: int | None,
        num_extra_convs: int,
        cfg: DIGANConfig,
    ) -> None:
        """emb_size: Fourier frequencies of this block's coordinate fuser, None = no fuser."""
        super().__init__()
        self.in_channels, self.up = in_channels, up
        lin = dict(w_dim=cfg.w_dim, rank=cfg.fmm_rank)
        fuse = 0
        if emb_size:
            self.coord_fuser = TemporalFourierFeatures(
                w_dim=cfg.w_dim,
                motion_dim=cfg.motion_dim,
                emb_size=emb_size,
                fourier_scale=cfg.fourier_scale,
                motion_sigma=cfg.motion_sigma,
            )
            fuse = self.coord_fuser.out_channels
        else:
            self.coord_fuser = None
        if in_channels > 0:
            self.conv0 = FMMLinear(in_channels + fuse, out_channels, **lin)
            self.conv1 = FMMLinear(out_channels, out_channels, **lin)
        else:
            self.conv0 = None
            self.conv1 = FMMLinear(fuse, out_channels, **lin)
        self.extra_convs = nn.ModuleList(
            FMMLinear(out_channels, out_channels, **lin) for _ in range(num_extra_convs)
        )
        self.torgb = ModulatedToRGB(out_channels, w_dim=cfg.w_dim)

    def convs(self) -> list[FMMLinear]:
        return [c for c in (self.conv0, self.conv1, *self.extra_convs) if c is not None]

    @property
    def num_conv(self) -> int:
        return len(self.convs())


@dataclass
class VideoContent:
    """Time-independent per-video state: per block fuser terms, modulated conv and RGB weights."""

    fusers: list[tuple[Tensor, Tensor, Tensor] | None]  # (freqs [B,E,2], phase [B,E], code [B,E])
    convs: list[list[Tensor]]  # per block, [B, C_out, C_in] per FMM layer
    torgb: list[Tensor]  # per block, [B, 3, C]
    batch: int = field(default=0)


class DIGANSynthesis(nn.Module):
    """INR generator body: blocks b4..b{resolution}; those up to `input_resolution` share a grid."""

    def __init__(self, cfg: DIGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.block_names: list[str] = []
        in_ch = 0
        w_idx = 0
        self.w_index: list[tuple[int, list[int], int]] = []  # (fuser w, conv ws, torgb w)
        for res in cfg.block_resolutions:
            out_ch = cfg.channels(res)
            up = res > cfg.input_resolution
            emb = cfg.emb_size_high if res >= cfg.emb_high_from else cfg.emb_size_low
            working = max(res, cfg.input_resolution)  # the release keys extra convs by this
            extra = cfg.num_extra_convs if working >= cfg.extra_convs_from else 0
            block = SynthesisBlock(
                in_channels=in_ch,
                out_channels=out_ch,
                up=up,
                emb_size=emb if (in_ch == 0 or up) else None,
                num_extra_convs=extra,
                cfg=cfg,
            )
            name = f"b{res}"
            setattr(self, name, block)
            self.block_names.append(name)
            n = block.num_conv
            self.w_index.append((w_idx, list(range(w_idx, w_idx + n)), w_idx + n))
            w_idx += n
            in_ch = out_ch
        self.num_ws = w_idx + 1  # StyleGAN2 bookkeeping: each ToRGB shares w with the next conv
        self.num_up = sum(b.up for b in self.blocks())

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, n) for n in self.block_names]

    def prepare(self, ws: Tensor, z_motion: Tensor) -> VideoContent:
        """Everything time-independent for videos with styles `ws` `[B, num_ws, W]`."""
        fusers, convs, torgb = [], [], []
        for block, (wf, wc, wr) in zip(self.blocks(), self.w_index):
            if block.coord_fuser is not None:
                f = block.coord_fuser
                freqs, phase = f.content(ws[:, wf])
                fusers.append((freqs, phase, f.motion_code(ws[:, wf], z_motion)))
            else:
                fusers.append(None)
            convs.append([c.modulate(ws[:, i]) for c, i in zip(block.convs(), wc)])
            torgb.append(block.torgb.modulate(ws[:, wr]))
        return VideoContent(fusers=fusers, convs=convs, torgb=torgb, batch=ws.shape[0])

    def stage_sizes(self, size: int) -> list[int]:
        """Pixels per side of every block for an output of `size` pixels."""
        step = 2**self.num_up
        if size % step or size < step:
            raise VidganError(
                f"render size {size} must be a positive multiple of {step} "
                f"(this generator upsamples {self.num_up} times)."
            )
        n = size // step
        out = []
        for block in self.blocks():
            n = n * 2 if block.up else n
            out.append(n)
        return out

    def render(
        self,
        content: VideoContent,
        t: Tensor,
        coords: CoordGrid,
        trace: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Frames `[B, T, 3, size, size]` at times `t` `[B, T]` on the coordinate view `coords`.

        trace: if a dict, receives `{block}.fourier` `[B, T, 2E, n*n]` and `{block}.img`
        `[B, T, 3, n*n]` (the running RGB skip sum) for inspection and parity tests.

        Without autograd (and without a trace) the frames come from `_render_pixels`, the same
        sums in a layout that fuses and vectorises better.
        """
        if trace is None and not self._needs_grad(content, t):
            return self._render_pixels(content, t, coords)
        b, n_t = t.shape
        x = img = None
        prev = None
        for name, n, fuser, conv_w, rgb_w in zip(
            self.block_names, self.stage_sizes(coords.size), content.fusers, content.convs,
            content.torgb,
        ):  # fmt: skip
            block = getattr(self, name)
            convs = list(zip(block.convs(), conv_w))
            if fuser is not None:  # fresh Fourier features of this stage's grid
                f = block.coord_fuser
                freqs, phase, code = fuser
                grid = coords.stage(n).to(freqs.device)
                spatial = f.spatial_phase(freqs, grid)  # (B, E, n*n)
                shift = f.phase_shift(code, t.to(code.dtype))  # (B, T, E)
                if trace is not None:
                    trace[f"{name}.fourier"] = f.features(spatial, phase, shift)
                # t only rotates the (sin, cos) pairs: features once per video, the rotation
                # goes into the weights of the layer they feed (TemporalFourierFeatures docs)
                base = f.content_features(spatial, phase)  # (B, 2E, n*n)
                (conv0, w0), *convs = convs
                if block.up:  # conv0 on [up2(x); feats], its x part at the coarse size
                    cx = x.shape[2]
                    w_rot = f.rotate_weight(w0[:, :, cx:], shift)  # (B, T, C, 2E)
                    x = conv0.project_upsampled(w0, x, prev, base, w_rot)
                elif x is None:  # the input block: coordinates alone
                    w_rot = f.rotate_weight(w0 * SQRT2, shift)  # (B, T, C, 2E)
                    x = conv0.activate(conv0.project_frames(w_rot, base))
                else:
                    feats = f.features(spatial, phase, shift).to(x.dtype)
                    x = conv0.project(w0, torch.cat([x, feats], dim=2))
            elif block.up:
                raise VidganError(f"{name} upsamples but has no coordinate fuser.")
            for conv, weight in convs:
                x = conv.project(weight, x)
            rgb = block.torgb.project(rgb_w, x)  # (B, T, 3, n*n), a fresh tensor
            if img is None:
                img = rgb
            elif block.up:
                img = add_upsampled_(rgb, img, prev)
            else:
                img = rgb.add_(img)
            if trace is not None:
                trace[f"{name}.img"] = img
            prev = n
        return img.reshape(b, n_t, img.shape[2], prev, prev)  # (B, T, 3, H, W)

    def _needs_grad(self, content: VideoContent, t: Tensor) -> bool:
        """Whether a render must record autograd (content, times or parameters need grad)."""
        if not torch.is_grad_enabled():
            return False
        tensors = [t, *content.torgb, *(w for ws in content.convs for w in ws)]
        tensors += [x for fuser in content.fusers if fuser is not None for x in fuser]
        return any(x.requires_grad for x in tensors) or any(
            p.requires_grad for p in self.parameters()
        )

    #: pixels (frames x height x width) one inference pass renders at once: bounds the working
    #: set, so activations come from glibc's heap instead of fresh page-faulted mappings
    PIXEL_GROUP = 1 << 14

    def _render_pixels(self, content: VideoContent, t: Tensor, coords: CoordGrid) -> Tensor:
        """`render` for inference, with maps kept as `[B, T, P, C]` (vidgan.nn.inr, pixel-major
        inference): every 1x1 layer is one GEMM with its bias and lrelu fused on CPUs, and the
        upsampled skips are added along contiguous channels. Same sums as `render`, in the
        autocast dtype if autocast is on (the small per-video work stays in fp32).

        Frames go in groups of about `PIXEL_GROUP` pixels per map: the blocks before the first
        upsampling one take many frames at once (their maps are small; larger GEMMs), the later
        ones fewer. Weights are scaled and cast once per call.
        """
        dev = t.device.type
        auto = torch.is_autocast_enabled(dev)
        dt = torch.get_autocast_dtype(dev) if auto else content.convs[0][0].dtype
        if dev == "cpu":
            raise_mmap_threshold()  # reuse same-sized activations instead of faulting them in
        with torch.autocast(dev, enabled=False):
            plan = self._pixel_plan(content, coords, dt)
            split = next((i for i, p in enumerate(plan) if p.up), len(plan))
            low = max(1, self.PIXEL_GROUP // plan[max(split - 1, 0)].n ** 2)
            high = max(1, self.PIXEL_GROUP // plan[-1].n ** 2)
            parts = []
            for i in range(0, t.shape[1], low):
                tl = t[:, i : i + low]
                rot = [self._frame_weights(p, tl) for p in plan]
                x, img = self._run_pixel_blocks(plan[:split], rot[:split], None, None, 0)
                prev = plan[split - 1].n if split else 0
                for j in range(0, tl.shape[1], high):
                    sl = slice(j, j + high)
                    rj = [None if r is None else r[:, sl] for r in rot[split:]]
                    xj = None if x is None else x[:, sl]
                    imgj = None if img is None else img[:, sl]
                    _, out = self._run_pixel_blocks(plan[split:], rj, xj, imgj, prev)
                    n = plan[-1].n
                    parts.append(out.view(*out.shape[:2], n, n, -1).permute(0, 1, 4, 2, 3))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, T, 3, H, W)

    def _pixel_plan(
        self, content: VideoContent, coords: CoordGrid, dt: torch.dtype
    ) -> list[_PixelBlock]:
        """The time-free inputs of `_run_pixel_blocks`, per block."""
        plan = []
        for name, n, fuser, conv_w, rgb_w in zip(
            self.block_names, self.stage_sizes(coords.size), content.fusers, content.convs,
            content.torgb,
        ):  # fmt: skip
            block = getattr(self, name)
            convs = [(w * SQRT2, c.bias * SQRT2) for c, w in zip(block.convs(), conv_w)]
            if (fuser is not None) != (block.up or not plan):  # what DIGANSynthesis builds
                raise VidganError(
                    f"{name}: only the first and the upsampling blocks take features."
                )
            p = _PixelBlock(n=n, up=block.up, rgb=(rgb_w.to(dt), block.torgb.bias.to(dt)))
            if fuser is not None:
                f = block.coord_fuser
                freqs, phase, code = (v.float() for v in fuser)
                grid = coords.stage(n).to(freqs.device)
                p.fourier = (f, code, pixel_features(freqs, phase, grid, dt))
                (w0, b0), *convs = convs
                cx = w0.shape[2] - f.out_channels  # channels of the previous block's output
                p.first = (w0[:, :, :cx].to(dt).contiguous(), w0[:, :, cx:], b0.to(dt))
            p.layers = [(w.to(dt), b.to(dt)) for w, b in convs]
            plan.append(p)
        return plan

    @staticmethod
    def _frame_weights(p: _PixelBlock, t: Tensor) -> Tensor | None:
        """The per-frame weights `[B, T, C, 2E]` of a block's features (`rotate_weight`)."""
        if p.fourier is None or p.first is None:
            return None
        f, code, _ = p.fourier
        return f.rotate_weight(p.first[1], _frame_shifts(f, code, t))

    @staticmethod
    def _run_pixel_blocks(
        plan: list[_PixelBlock],
        rot: list[Tensor | None],
        x: Tensor | None,
        img: Tensor | None,
        prev: int,
    ) -> tuple[Tensor | None, Tensor | None]:
        """Blocks `plan` on maps `x` / RGB skip `img` (`[B, T, n*n, C]`, None before the first
        block), `rot` their per-frame feature weights (`_frame_weights`); `prev` = pixels per
        side of the incoming maps."""
        for p, w_rot in zip(plan, rot):
            if p.fourier is not None and p.first is not None and w_rot is not None:
                base = p.fourier[2]
                w_x, _, bias = p.first
                if p.up:  # the x part at the coarse size, bias included, then the new features
                    coarse = pixel_layer(x, w_x, bias, lrelu=False)
                    x = F.leaky_relu_(pixel_frames_layer(base, w_rot, coarse, prev), 0.2)
                else:  # the input block: coordinates alone
                    x = F.leaky_relu_(pixel_frames_layer(base, w_rot).add_(bias), 0.2)
            for weight, bias in p.layers:
                x = pixel_layer(x, weight, bias, lrelu=True)
            rgb = pixel_layer(x, *p.rgb, lrelu=False)  # (B, T, n*n, 3)
            if img is None:
                img = rgb
            elif p.up:
                img = pixel_add_upsampled_(rgb, img, prev)
            else:
                img = rgb.add_(img)
            prev = p.n
        return x, img


def _frame_shifts(f: TemporalFourierFeatures, code: Tensor, t: Tensor) -> Tensor:
    """`f.phase_shift(code, t)` `[B, T, E]` one frame at a time: the MLP's products then have
    the same shapes however the frames are grouped, so chunked renders equal one-shot ones bit
    for bit (a GEMM's rounding may depend on its number of rows)."""
    return torch.cat([f.phase_shift(code, t[:, k : k + 1].float()) for k in range(t.shape[1])], 1)


@dataclass
class _PixelBlock:
    """One block's time-free inputs to `DIGANSynthesis._run_pixel_blocks`."""

    n: int  # pixels per side
    up: bool
    rgb: tuple[Tensor, Tensor]  # ToRGB weight [B, 3, C] and bias
    # fuser, motion code [B, E], time-free features [B, n*n, 2E]
    fourier: tuple[TemporalFourierFeatures, Tensor, Tensor] | None = None
    first: tuple[Tensor, Tensor, Tensor] | None = None  # first layer: W_x, W_features, bias
    layers: list[tuple[Tensor, Tensor]] = field(default_factory=list)  # (weight, bias), scaled


class DIGANGenerator(VideoGenerator):
    """DIGAN's generator: content mapping, explicit motion code, INR synthesis at any (x, y, t)."""

    continuous_time = True
    supported_lengths = None

    def __init__(self, cfg: DIGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.synthesis = DIGANSynthesis(cfg)
        self.mapping = MappingNetwork(
            z_dim=cfg.z_dim,
            w_dim=cfg.w_dim,
            num_classes=cfg.num_classes,
            num_layers=cfg.mapping_layers,
            lr_mul=cfg.mapping_lr_mult,
            w_avg_beta=cfg.w_avg_beta,
        )

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    # --- contract -------------------------------------------------------------------------
    def sample_latents(
        self,
        batch: int,
        *,
        n_frames: int = 16,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Latents:
        """z `[B, z_dim]` and z_m `[B, motion_dim]` ~ N(0, I); random labels if conditional."""
        dev = self.device
        z = torch.randn(batch, self.cfg.z_dim, generator=generator, device=dev)
        z_m = torch.randn(batch, self.cfg.motion_dim, generator=generator, device=dev)
        if self.num_classes and labels is None:
            labels = torch.randint(self.num_classes, (batch,), generator=generator, device=dev)
        return Latents(content=z, motion=z_m, labels=labels)

    def frame_times(self, n_frames: int) -> Tensor:
        """t_k = k / (n_frames_train - 1): a training clip spans [0, 1]; longer ones extrapolate."""
        return torch.arange(n_frames, dtype=torch.float32, device=self.device) / (
            self.cfg.n_frames - 1
        )

    def forward(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        noise: list[Tensor] | None = None,
        coords: CoordGrid | None = None,
    ) -> Tensor:
        """Videos `[B, 3, T, H, W]` (no tanh: the release leaves outputs unbounded)."""
        return self.synthesize(self.mapping_for(z_content, labels), z_motion, t, coords=coords)

    # --- the paper's parts as methods ------------------------------------------------------
    def mapping_for(
        self, z_content: Tensor, labels: Tensor | None = None, truncation_psi: float = 1.0
    ) -> Tensor:
        """`mapping` with shape checks: z `[B, z_dim]` (+ labels) -> w `[B, w_dim]`."""
        check_shape(z_content, (None, self.cfg.z_dim), "z_content")
        return self.mapping(z_content, labels, truncation_psi=truncation_psi)

    def prepare(self, w: Tensor, z_motion: Tensor) -> VideoContent:
        """Time-independent work for videos with w `[B, W]` or per-layer ws `[B, num_ws, W]`."""
        if w.ndim == 2:
            w = w[:, None].expand(-1, self.num_ws, -1)
        check_shape(w, (None, self.num_ws, self.cfg.w_dim), "w")
        check_shape(z_motion, (w.shape[0], self.cfg.motion_dim), "z_motion")
        # fp32 even under autocast: casting the style affines' large weights to bf16 every
        # call costs more than their few-row products, and the styles keep full precision
        dev = w.device.type
        with torch.autocast(dev, enabled=False):
            return self.synthesis.prepare(w.float(), z_motion.float())

    def render(
        self,
        content: VideoContent,
        t: Tensor,
        *,
        coords: CoordGrid | None = None,
        trace: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Frames of prepared videos at times `t` (`[T]` or `[B, T]`) -> `[B, 3, T, H, W]`."""
        t = expand_times(t.to(self.device, torch.float32), content.batch)
        coords = coords or CoordGrid(self.cfg.resolution)
        frames = self.synthesis.render(content, t, coords, trace)  # (B, T, 3, H, W)
        return frames.permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)

    def synthesize(
        self, w: Tensor, z_motion: Tensor, t: Tensor, *, coords: CoordGrid | None = None
    ) -> Tensor:
        """Videos from styles: `prepare` then `render`."""
        return self.render(self.prepare(w, z_motion), t, coords=coords)

    # --- project-page capabilities --------------------------------------------------------
    def iter_chunks(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        chunk: int = 16,
        coords: CoordGrid | None = None,
        truncation_psi: float = 1.0,
    ) -> Iterator[Tensor]:
        """Yield `[B, 3, <=chunk, H, W]` pieces of a long video; memory stays flat in its length."""
        content = self.prepare(self.mapping_for(z_content, labels, truncation_psi), z_motion)
        t = expand_times(t.to(self.device, torch.float32), content.batch)
        for start in range(0, t.shape[1], chunk):
            yield self.render(content, t[:, start : start + chunk], coords=coords)

    def generate_chunked(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        chunk: int = 16,
        coords: CoordGrid | None = None,
        truncation_psi: float = 1.0,
    ) -> Tensor:
        """A long video `[B, 3, T, H, W]` made `chunk` frames at a time (equal to one shot)."""
        pieces = self.iter_chunks(
            z_content, z_motion, t, labels=labels, chunk=chunk, coords=coords,
            truncation_psi=truncation_psi,
        )  # fmt: skip
        return torch.cat(list(pieces), dim=2)

    def frame(
        self, z_content: Tensor, z_motion: Tensor, t: float, *, labels: Tensor | None = None
    ) -> Tensor:
        """One frame `[B, 3, H, W]` at time `t`, computed without any other frame."""
        return self(z_content, z_motion, torch.tensor([float(t)]), labels=labels)[:, :, 0]

    def upsampled(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        factor: int,
        *,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Space up-sampling: the same view on a `factor`x denser coordinate grid at every stage.

        With U upsampling stages, pixel (s i + s - 1, s j) of the s-x render equals pixel (i, j)
        of the normal one whenever i = -1 and j = 0 (mod 2^U): there every stage sees the same
        coordinates; elsewhere the coarse stages are sampled more finely.
        """
        coords = CoordGrid(self.cfg.resolution * int(factor))
        return self(z_content, z_motion, t, labels=labels, coords=coords)

    def zoomed_out(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        factor: float = 1.5,
        *,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Space extrapolation: a `factor`x wider view at the training pixel density.

        The centre `resolution` pixels equal the normal render when (factor - 1) * input_resolution
        / 2 is a whole number of pixels (e.g. 1.5 at 32 px): the grids coincide there.
        """
        size = round(self.cfg.resolution * factor)
        return self(z_content, z_motion, t, labels=labels, coords=CoordGrid(size, fov=factor))

    def diverse_motion(
        self,
        z_content: Tensor,
        z_motions: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
    ) -> Tensor:
        """One content `[1, z_dim]` with K motion codes `[K, M]` -> K videos `[K, 3, T, H, W]`."""
        check_shape(z_content, (1, self.cfg.z_dim), "z_content")
        w = self.mapping_for(z_content, labels)  # mapped once
        return self.synthesize(w.expand(z_motions.shape[0], -1), z_motions, t)


# --- discriminators (StyleGAN2-ADA ResNet D) ---------------------------------------------------


class DConv(nn.Module):
    """StyleGAN2-ADA Conv2dLayer: equalised conv [FIR-downsampled], bias, lrelu*gain, clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: str | None = "lrelu",
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", make_kernel((1, 3, 3, 1)), persistent=False)
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.kernel_size = kernel_size

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        k = self.kernel_size
        if self.down == 1:
            x = F.conv2d(x, w, padding=k // 2)
        elif k == 1:  # blur + decimate, then 1x1
            x = F.conv2d(upfirdn2d(x, self.resample_filter, down=2, pad=1), w)
        else:  # FIR blur padded by (filter - 2) + (k - 1) in total, then a stride-2 conv
            p = (self.resample_filter.shape[0] - 2) + (k - 1)
            x = upfirdn2d(x, self.resample_filter, pad=((p + 1) // 2, p // 2))
            x = F.conv2d(x, w, stride=2)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype)[None, :, None, None]
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2)
            gain = gain * SQRT2
        x = x * gain
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain)
        return x


class DiscriminatorBlock(nn.Module):
    """Residual downsampling block: x' = (skip(x) + conv1(conv0(x))) * sqrt(0.5) (ADA 'resnet')."""

    def __init__(
        self, in_channels: int, tmp_channels: int, out_channels: int, *, img_channels: int,
        conv_clamp: float | None,
    ) -> None:  # fmt: skip
        super().__init__()
        if in_channels == 0:
            self.fromrgb = DConv(img_channels, tmp_channels, 1, conv_clamp=conv_clamp)
        else:
            self.fromrgb = None
        self.conv0 = DConv(tmp_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = DConv(tmp_channels, out_channels, 3, down=2, conv_clamp=conv_clamp)
        self.skip = DConv(tmp_channels, out_channels, 1, bias=False, activation=None, down=2)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch std, 3x3 conv, fc, out [· label projection] (ADA DiscriminatorEpilogue).

    The minibatch std is `vidgan.nn.stylegan2.minibatch_stddev`: the same strided groups of
    min(group, N) as StyleGAN2-ADA's MinibatchStdLayer (and a divisor fallback where ADA crashes).
    """

    def __init__(
        self, channels: int, *, cmap_dim: int, mbstd_group: int, mbstd_channels: int,
        conv_clamp: float | None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.mbstd_group, self.mbstd_channels, self.cmap_dim = mbstd_group, mbstd_channels, cmap_dim
        self.conv = DConv(channels + mbstd_channels, channels, 3, conv_clamp=conv_clamp)
        self.fc = EqualLinear(channels * 16, channels, activation="lrelu")
        self.out = EqualLinear(channels, cmap_dim or 1)

    def forward(self, x: Tensor, cmap: Tensor | None) -> Tensor:
        if self.mbstd_group > 0:
            x = minibatch_stddev(x, self.mbstd_group, self.mbstd_channels)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))  # NCHW flatten order
        if cmap is not None:
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class ImageDiscriminator(nn.Module):
    """DIGAN's image discriminator: the StyleGAN2-ADA ResNet D on single frames `[N, 3, H, W]`."""

    def __init__(self, cfg: DIGANConfig, *, in_channels: int = 3) -> None:
        super().__init__()
        self.cfg, self.in_channels = cfg, in_channels
        res_list = [2**i for i in range(int(math.log2(cfg.resolution)), 2, -1)]
        self.block_names = [f"b{r}" for r in res_list]
        for r in res_list:
            block = DiscriminatorBlock(
                cfg.d_channels(r) if r < cfg.resolution else 0,
                cfg.d_channels(r),
                cfg.d_channels(r // 2),
                img_channels=in_channels,
                conv_clamp=cfg.d_conv_clamp,
            )
            setattr(self, f"b{r}", block)
        cmap_dim = 0
        if cfg.num_classes > 0:
            cmap_dim = cfg.d_cmap_dim or cfg.d_channels(4)
            self.mapping = MappingNetwork(
                z_dim=0,
                w_dim=cmap_dim,
                num_classes=cfg.num_classes,
                num_layers=cfg.d_mapping_layers,
                w_avg_beta=None,
            )
        self.b4 = DiscriminatorEpilogue(
            cfg.d_channels(4),
            cmap_dim=cmap_dim,
            mbstd_group=cfg.d_mbstd_group,
            mbstd_channels=cfg.d_mbstd_channels,
            conv_clamp=cfg.d_conv_clamp,
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Logits `[N, 1]` for images `[N, C_in, H, W]` (labels: class ids `[N]` if conditional)."""
        r = self.cfg.resolution
        check_shape(x, (None, self.in_channels, r, r), type(self).__name__ + " input")
        h = None
        for name in self.block_names:
            h = getattr(self, name)(h, x)
        cmap = None
        if self.cfg.num_classes > 0:
            cmap = self.mapping(None, one_hot_labels(labels, self.cfg.num_classes, x.shape[0]))
        return self.b4(h, cmap)


class MotionDiscriminator(ImageDiscriminator):
    """DIGAN's motion discriminator (sec. 3.2): ResNet D on [frame t1; frame t2; dt map] (7 ch).

    Time enters only through the constant dt plane; the two frames must be sorted (t1 <= t2).
    """

    def __init__(self, cfg: DIGANConfig) -> None:
        super().__init__(cfg, in_channels=7)

    @staticmethod
    def pair_input(frame1: Tensor, frame2: Tensor, dt: Tensor) -> Tensor:
        """`[B, 3, H, W]` x2 and dt `[B]` -> `[B, 7, H, W]` (dt broadcast as a constant plane)."""
        plane = dt.reshape(-1, 1, 1, 1).to(frame1.dtype).expand(-1, 1, *frame1.shape[2:])
        return torch.cat([frame1, frame2, plane], dim=1)

    @staticmethod
    def from_video(video: Tensor, dt: Tensor) -> Tensor:
        """A 2-frame video `[B, 3, 2, H, W]` (t1 < t2) and dt `[B]` -> `[B, 7, H, W]`."""
        return MotionDiscriminator.pair_input(video[:, :, 0], video[:, :, 1], dt)


def build_generator(cfg: DIGANConfig) -> DIGANGenerator:
    return DIGANGenerator(cfg)


def build_discriminators(cfg: DIGANConfig) -> dict[str, nn.Module]:
    """{"video": motion D on frame pairs + dt, "image": image D on single frames}."""
    return {"video": MotionDiscriminator(cfg), "image": ImageDiscriminator(cfg)}


register_model(
    ModelSpec(
        name="digan",
        config_cls=DIGANConfig,
        build_generator=build_generator,
        build_discriminators=build_discriminators,
        recipe=None,
        description="DIGAN (ICLR 2022): implicit video generator over (x, y, t) with a "
        "frame-pair motion discriminator",
    )
)
