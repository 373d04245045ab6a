"""FMR: Frequency-based Motion Representation for Video GANs.

Hyun, Kim and Heo, IEEE TIP 2023 ("Frequency-based Motion Representation for Video Generative
Adversarial Networks"); official code github:hse1032/Frequency-based-Motion-Representation-for-
Video-GANs (rosinality StyleGAN2 based). Covered here: the motion generator (sinusoids of time per
frequency band with learned frequencies and phases, sec. 3.1), motion mapping and the modulated
motion layers (sec. 3.2), w(t) = mapping(z_c) + sum_k m_k(t) fed to a StyleGAN2 renderer, the
frequency-aware weight modulation used for band editing (sec. 4.4), and the image, patch-video
and delta-video discriminators (sec. 3.3). Module and parameter names follow the release, so its
state dicts load with `load_state_dict(strict=True)`.

Differences from the release (all bugs there, none change the maths on its working paths):
noise is drawn per video and repeated to any length T; the 3-D discriminators accept any clip
length (temporal down-sampling pads so the main and skip paths agree); the delta discriminator
takes dt as [B] or [B, 1] at any batch size; minibatch-stddev accepts any batch size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.errors import ConfigError, VidganError
from vidgan.heap import raise_mmap_threshold
from vidgan.models.base import Latents, VideoGenerator, check_shape, expand_times
from vidgan.models.registry import ModelSpec, register_model
from vidgan.nn.equalized import EqualConv3d, EqualLinear, FusedLeakyReLU
from vidgan.nn.fourier import LearnedFourierFeatures
from vidgan.nn.stylegan2 import (
    ConstantInput,
    ConvLayer,
    ModulatedConv2d,
    ResBlock,
    StyledConv,
    ToRGB,
    channel_table,
    mapping_network,
    minibatch_stddev,
)
from vidgan.nn.upfirdn import Blur, upfirdn2d

FREQ_MAX = 1e8  # the release's "no upper edge" band limit (generator.FREQ_MAX)


# --- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FMRConfig:
    """FMR model configuration; defaults are the official run.sh settings (256 px, freq_val 7)."""

    image_size: int = 256  # run.sh --image_size 256 (cfg.py default 64); any power of two >= 4
    dim_z_content: int = 512  # cfg.py --dim_z_content: z_c and w size
    dim_z_motion: int = 512  # cfg.py --dim_z_motion: z_m size, motion style and hidden width
    freq_bands: tuple[float, ...] = (
        7.0,
    )  # cfg.py --freq_val "7"; (3,5,7): bands (0,3),(3,5),(5,7)
    n_sinusoids: int | None = None  # sinusoids per band; None = dim_z_motion (LFF(1, dim_z_motion))
    n_motion_linear: int = 2  # VideoGenerator(n_motion_linear=2): StyledLinear + EqualLinear
    n_mlp: int = 8  # VideoGenerator(n_mlp_c=8): content mapping depth (renderer.style)
    n_mlp_m: int = 2  # VideoGenerator(n_mlp_m=2): motion mapping depth (motion_style)
    lr_mlp: float = 0.01  # Generator(lr_mlp=0.01); motion_style hard-codes the same 0.01
    channel_multiplier: int = 2  # Generator(channel_multiplier=2): min(512, 16384*cm//res)
    channels: dict[int, int] | None = None  # per-resolution renderer widths overriding the table
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)  # Generator(blur_kernel=[1,3,3,1])
    video_length: int = 16  # cfg.py --video_length: frames of a training clip over time_range
    time_range: tuple[float, float] = (-1.0, 1.0)  # sample_grid(grid_range=(-1, 1))
    image_discriminator: Literal["image", "patch_image"] = "image"  # run.sh ImageDiscriminator
    video_discriminator: Literal["patch_video", "video", "delta"] = "patch_video"  # run.sh
    vd_resize_ratio: float = 0.5  # run.sh --VD_resize_ratio 0.5: video D at half resolution
    d_channel_multiplier: int | None = None  # None = release defaults: 2 (2-D Ds), 1 (3-D Ds)
    d_channels: dict[int, int] | None = None  # per-resolution widths of every D (override)
    stddev_group: int = 4  # minibatch-stddev group size (Discriminator.stddev_group)
    num_classes: int = 0  # unconditional (the release has no labels)

    def __post_init__(self) -> None:
        for name in ("image_size",):
            v = getattr(self, name)
            if v < 4 or v & (v - 1):
                raise ConfigError(f"model.{name} must be a power of two >= 4, got {v}.")
        if not self.freq_bands or any(f <= 0 for f in self.freq_bands):
            raise ConfigError(f"model.freq_bands must be positive numbers, got {self.freq_bands}.")
        if self.n_motion_linear < 1:
            raise ConfigError("model.n_motion_linear must be at least 1.")
        if self.num_classes != 0:
            raise ConfigError("model.num_classes must be 0: FMR is unconditional.")
        vsize = self.video_d_size
        if vsize < 4 or vsize & (vsize - 1):
            raise ConfigError(
                f"model.vd_resize_ratio={self.vd_resize_ratio} gives a video D size of {vsize}; "
                "it must be a power of two >= 4."
            )

    @property
    def sinusoids(self) -> int:
        return self.n_sinusoids or self.dim_z_motion

    @property
    def band_ranges(self) -> list[tuple[float, float]]:
        """Initial |frequency| range of each band generator (release: equal edges restart at 0)."""
        ranges, last = [], 0.0
        for f in self.freq_bands:
            if f == last:
                last = 0.0
            ranges.append((float(last), float(f)))
            last = f
        return ranges

    @property
    def video_d_size(self) -> int:
        return round(self.image_size * self.vd_resize_ratio)


# --- generator parts ----------------------------------------------------------------------------
class StyledLinear(nn.Module):
    """Motion layer 0 (Eq. 5): h = lrelu((x * A(s)) W^T + b), modulated without demodulation."""

    def __init__(self, in_features: int, out_features: int, style_dim: int) -> None:
        super().__init__()
        # a 1x1 ModulatedConv2d as in the release, so its keys (conv.weight, conv.modulation) load
        self.conv = ModulatedConv2d(in_features, out_features, 1, style_dim, demodulate=False)
        self.activate = FusedLeakyReLU(out_features)

    def forward(self, x: Tensor, scales: Tensor) -> Tensor:
        """x: [..., in] sinusoids, scales: [..., in] = modulation(style) -> [..., out]."""
        weight = self.conv.weight[0, :, :, 0, 0] * self.conv.scale  # (out, in)
        out = F.linear(x * scales, weight.to(x.dtype))
        return F.leaky_relu(out + self.activate.bias.to(out.dtype), 0.2) * math.sqrt(2)


class Renderer(nn.Module):
    """StyleGAN2 generator (content mapping `style` + synthesis) drawing each frame from w.

    Synthesis runs in channels_last (NHWC) memory layout by default: the same maths, and on the
    2-core CPU 15% (training) to 40% (inference, toy widths) faster than NCHW, because oneDNN
    convolutions then skip their per-call layout reorders (`benchmarks/README.md`, FMR).
    """

    channels_last: bool = True  # set False on an instance for the plain NCHW layout

    def __init__(
        self,
        *,
        size: int,
        style_dim: int,
        n_mlp: int,
        channels: Mapping[int, int],
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
    ) -> None:
        """channels: feature maps per resolution 4..size (see `channel_table`)."""
        super().__init__()
        self.size = size
        self.style_dim = style_dim
        self.style = mapping_network(style_dim, n_mlp, lr_mul=lr_mlp)
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        ch4 = channels[4]
        self.input = ConstantInput(ch4)
        self.conv1 = StyledConv(ch4, ch4, 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch4, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        # the release keeps fixed noise buffers (never used by FMR's sampling; kept for loading)
        self.noises = nn.Module()
        for i, res in enumerate(self.noise_resolutions):
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        in_ch = ch4
        for i in range(3, self.log_size + 1):
            out_ch = channels[2**i]
            self.convs.append(
                StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel)
            )
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, blur_kernel=blur_kernel))
            in_ch = out_ch

    @property
    def noise_resolutions(self) -> list[int]:
        """Side of each noise map: 4, 8, 8, 16, 16, ... (one per synthesis conv)."""
        return [2 ** ((i + 5) // 2) for i in range(self.num_layers)]

    #: activation elements per map in inference: each block takes as many frames at once as
    #: fit, so maps stay under glibc's mmap threshold (reused, not page-faulted in afresh) while
    #: the small early blocks still get large GEMMs
    GROUP_ELEMENTS = 1 << 23

    def forward(self, w: Tensor, noise: Sequence[Tensor | None] | None = None) -> Tensor:
        """w: [N, style_dim] (the same w for every layer), noise: maps [N, 1, r, r] -> [N,3,H,W]."""
        noise = list(noise) if noise is not None else [None] * self.num_layers
        x = self.input(w.shape[0])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.conv1(x, w, noise[0])
        skip = self.to_rgb1(x, w)
        if torch.is_grad_enabled() or w.shape[0] == 1:
            return self._blocks(0, len(self.to_rgbs), x, skip, w, noise)[1]
        if x.device.type == "cpu":
            raise_mmap_threshold()  # so that group-sized maps come from the heap
        return self._grouped(0, x, skip, w, noise)

    def _grouped(
        self, j: int, x: Tensor, skip: Tensor, w: Tensor, noise: list[Tensor | None]
    ) -> Tensor:
        """The RGB output of blocks j.. on these frames (inference): each block takes as many
        frames at once as `GROUP_ELEMENTS` allows for its output maps."""
        if j == len(self.to_rgbs):
            return skip
        side = 2 ** (j + 3)  # this block's output maps are side x side
        per = max(1, self.GROUP_ELEMENTS // (self.convs[2 * j].conv.out_channels * side * side))
        n = x.shape[0]
        if n <= per:
            x, skip = self._blocks(j, j + 1, x, skip, w, noise)
            return self._grouped(j + 1, x, skip, w, noise)
        out = None
        for i in range(0, n, per):
            g = slice(i, i + per)
            gn = [None if m is None else m[g] for m in noise]
            rgb = self._grouped(j, x[g], skip[g], w[g], gn)
            if out is None:
                out = rgb.new_empty(n, *rgb.shape[1:])
            out[g] = rgb
        assert out is not None
        return out

    def _blocks(
        self, j0: int, j1: int, x: Tensor, skip: Tensor, w: Tensor, noise: list[Tensor | None]
    ) -> tuple[Tensor, Tensor]:
        """Upsampling blocks j0..j1-1 (two styled convs and a ToRGB each)."""
        for j in range(j0, j1):
            # each x is read last by the conv it feeds (to_rgb has run), which may scale it in place
            x = self.convs[2 * j](x, w, noise[2 * j + 1], consume=True)
            x = self.convs[2 * j + 1](x, w, noise[2 * j + 2], consume=True)
            skip = self.to_rgbs[j](x, w, skip)
        return x, skip


@dataclass(frozen=True, eq=False)  # holds tensors: compare edits by identity
class FrequencyEdit:
    """Frequency-aware weight modulation (sec. 4.4): which motion code drives which band.

    `edges` split |w| into len(edges)+1 bands: band k holds the sinusoids with
    e_{k-1} <= |w_i| < e_k (e_{-1} = 0, the last band is open-ended); with `ratio` the edges are
    fractions of the largest learned |w| of each band generator. Bands not kept (`keep`, default
    all, minus `remove`; negative indices count from the top band) have their sinusoids zeroed.
    `band_motions[k]` replaces the video's motion code for band k in every band generator (the
    release's `multiple_styles`); `generator_motions[i]` replaces it for all bands of band
    generator i (release: a z_m list passed to `sample_videos_from_zs`). Codes are [B, Dm] or
    [Dm] (shared by the batch).
    """

    edges: tuple[float, ...] = ()
    ratio: bool = False
    keep: tuple[int, ...] | None = None
    remove: tuple[int, ...] = ()
    band_motions: Mapping[int, Tensor] = field(default_factory=dict)
    generator_motions: Mapping[int, Tensor] = field(default_factory=dict)

    @property
    def n_bands(self) -> int:
        return len(self.edges) + 1

    def kept_bands(self) -> list[int]:
        """Sorted indices of the bands whose sinusoids stay on."""
        n = self.n_bands

        def norm(k: int, what: str) -> int:
            if not -n <= k < n:
                raise VidganError(f"frequency edit: {what} band {k} does not exist ({n} bands).")
            return k % n

        keep = set(range(n)) if self.keep is None else {norm(k, "kept") for k in self.keep}
        return sorted(keep - {norm(k, "removed") for k in self.remove})

    def band_code(self, band: int) -> Tensor | None:
        n = self.n_bands
        for k, code in self.band_motions.items():
            if k % n == band:
                return code
        return None


class FMRGenerator(VideoGenerator):
    """Eq. 3-6: w(t) = mapping(z_c) + sum_k M_k(sin(w_k t + p_k), A(z_m)); frame = R(w(t))."""

    continuous_time = True
    supported_lengths = None

    def __init__(self, cfg: FMRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = 0
        n_sin, dm, dc = cfg.sinusoids, cfg.dim_z_motion, cfg.dim_z_content
        # one learned-Fourier-feature layer per band generator (LFF.k.ffm.linear)
        self.LFF = nn.ModuleList(
            LearnedFourierFeatures(1, n_sin, freq_range=r) for r in cfg.band_ranges
        )
        self.motion_style = mapping_network(dm, cfg.n_mlp_m, lr_mul=cfg.lr_mlp)
        self.motion_linear = nn.ModuleList()
        for _ in cfg.freq_bands:
            layers = nn.ModuleList()
            for i in range(cfg.n_motion_linear):
                out = dc if i == cfg.n_motion_linear - 1 else dm
                layers.append(StyledLinear(n_sin, out, dm) if i == 0 else EqualLinear(dm, out))
            self.motion_linear.append(layers)
        self.renderer = Renderer(
            size=cfg.image_size,
            style_dim=dc,
            n_mlp=cfg.n_mlp,
            channels=channel_table(cfg.channel_multiplier, cfg.channels),
            blur_kernel=cfg.blur_kernel,
            lr_mlp=cfg.lr_mlp,
        )

    # --- latents and times ----------------------------------------------------------------------
    def sample_latents(
        self,
        batch: int,
        *,
        n_frames: int = 16,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Latents:
        """z_c, z_m ~ N(0, I) and one noise map per noise layer per video (any n_frames)."""
        dev = self.device
        kw = {"generator": generator, "device": dev}
        content = torch.randn(batch, self.cfg.dim_z_content, **kw)
        motion = torch.randn(batch, self.cfg.dim_z_motion, **kw)
        noise = [torch.randn(batch, 1, r, r, **kw) for r in self.renderer.noise_resolutions]
        return Latents(content=content, motion=motion, noise=noise)

    def time_grid(
        self, n_frames: int, start: float | None = None, stop: float | None = None
    ) -> Tensor:
        """`n_frames` times evenly over [start, stop) (release `sample_grid`, end excluded)."""
        lo, hi = self.cfg.time_range
        lo = lo if start is None else start
        hi = hi if stop is None else stop
        return torch.linspace(lo, hi, n_frames + 1, device=self.device)[:-1]

    def frame_times(self, n_frames: int) -> Tensor:
        """t_k = lo + k (hi - lo) / video_length (training frame rate); T > length extrapolates."""
        lo, hi = self.cfg.time_range
        k = torch.arange(n_frames, dtype=torch.float64)
        t = lo + k * ((hi - lo) / self.cfg.video_length)
        return t.to(torch.float32).to(self.device)

    def sample_training_times(
        self, batch: int, n_frames: int = 2, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Sorted on-grid times [B, n_frames] (release `sample_rand(on_grid=True)` + sort)."""
        grid = self.frame_times(self.cfg.video_length)
        idx = torch.randint(
            self.cfg.video_length, (batch, n_frames), generator=generator, device=self.device
        )
        return grid[idx].sort(dim=1).values

    # --- the motion path --------------------------------------------------------------------
    def mapping(self, z_content: Tensor) -> Tensor:
        """w_c = f(z_c) [B, Dc]: PixelNorm + n_mlp EqualLinear-lrelu (renderer.style)."""
        return self.renderer.style(z_content)

    def motion_styles(self, z_motion: Tensor) -> Tensor:
        """s = A(z_m) [B, Dm]: PixelNorm + n_mlp_m EqualLinear-lrelu (motion_style)."""
        return self.motion_style(z_motion)

    def band_features(self, t: Tensor) -> list[Tensor]:
        """Sinusoids sin(w_i t + p_i) of each band generator, each [B, T, n_sinusoids]."""
        return [lff(t.unsqueeze(-1)) for lff in self.LFF]

    def frequency_spectrum(self) -> list[Tensor]:
        """Learned |w_i| of each band generator (one [n_sinusoids] tensor per generator)."""
        return [lff.frequencies.detach().abs().clone() for lff in self.LFF]

    def band_masks(self, edges: Sequence[float], *, ratio: bool = False) -> list[Tensor]:
        """Per band generator, bool [len(edges)+1, n_sinusoids]: which sinusoid is in which band."""
        return [lff.band_masks(tuple(edges), ratio=ratio) for lff in self.LFF]

    def edit(
        self,
        *,
        edges: Sequence[float] = (),
        ratio: bool = False,
        keep: Sequence[int] | None = None,
        remove: Sequence[int] = (),
        band_motions: Mapping[int, Tensor] | None = None,
        generator_motions: Mapping[int, Tensor] | None = None,
    ) -> FrequencyEdit:
        """Build and check a `FrequencyEdit`; pass it to `w_of_t` or `with_edit`."""
        e = FrequencyEdit(
            edges=tuple(float(x) for x in edges),
            ratio=ratio,
            keep=None if keep is None else tuple(int(k) for k in keep),
            remove=tuple(int(k) for k in remove),
            band_motions=dict(band_motions or {}),
            generator_motions=dict(generator_motions or {}),
        )
        if list(e.edges) != sorted(e.edges) or any(x <= 0 for x in e.edges):
            raise VidganError(f"frequency edit: edges must be positive and increasing: {e.edges}.")
        e.kept_bands()  # validates indices
        for i in e.generator_motions:
            if not 0 <= i < len(self.LFF):
                raise VidganError(
                    f"frequency edit: band generator {i} does not exist ({len(self.LFF)})."
                )
        return e

    def with_edit(self, edit: FrequencyEdit) -> FMREditedGenerator:
        """This generator seen through `edit`: a VideoGenerator that sampling code can use as is."""
        return FMREditedGenerator(self, edit)

    def motion_terms(
        self, z_motion: Tensor, t: Tensor, *, edit: FrequencyEdit | None = None
    ) -> list[Tensor]:
        """m_k(t) of each band generator, [B, T, Dc] (Eq. 5-6 with the optional band edit)."""
        b = z_motion.shape[0]
        t = expand_times(t.to(device=z_motion.device, dtype=z_motion.dtype), b)
        style = self.motion_styles(z_motion)  # (B, Dm)
        cache: dict[int, Tensor] = {}

        def style_of(code: Tensor | None) -> Tensor:
            if code is None:
                return style
            key = id(code)
            if key not in cache:
                c = code.to(z_motion)
                c = c.unsqueeze(0) if c.ndim == 1 else c
                cache[key] = self.motion_styles(c).expand(b, -1)
            return cache[key]

        terms = []
        for i, (lff, layers) in enumerate(zip(self.LFF, self.motion_linear)):
            x = lff(t.unsqueeze(-1))  # (B, T, n)
            first: StyledLinear = layers[0]  # type: ignore[assignment]
            gen_style = style_of(edit.generator_motions.get(i)) if edit else style
            if edit is None:
                scales = first.conv.modulation(gen_style)[:, None, :]  # (B, 1, n)
            else:
                masks = lff.band_masks(edit.edges, ratio=edit.ratio).to(x.dtype)  # (K, n)
                keep = masks[edit.kept_bands()].sum(0)
                if edit.keep is not None or edit.remove:
                    x = x * keep
                scales = torch.zeros_like(x[:, :1])
                for k in range(edit.n_bands):
                    code = edit.band_code(k)
                    s_k = gen_style if code is None else style_of(code)
                    scales = scales + first.conv.modulation(s_k)[:, None, :] * masks[k]
            h = first(x, scales)
            for layer in layers[1:]:
                h = layer(h)
            terms.append(h)
        return terms

    def w_of_t(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        edit: FrequencyEdit | None = None,
    ) -> Tensor:
        """Per-frame styles w(t) = w_c + sum_k m_k(t), [B, T, Dc]."""
        w = self.mapping(z_content)[:, None, :]
        for m in self.motion_terms(z_motion, t, edit=edit):
            w = w + m
        return w

    def render(self, w: Tensor, noise: Sequence[Tensor] | None = None) -> Tensor:
        """Frames from styles w [B, T, Dc] with per-video noise maps [B, 1, r, r] -> [B,3,T,H,W]."""
        b, n_t, d = w.shape
        if noise is None:
            noise = [
                torch.randn(b, 1, r, r, device=w.device, dtype=w.dtype)
                for r in self.renderer.noise_resolutions
            ]
        if len(noise) != self.renderer.num_layers:
            raise VidganError(
                f"FMR needs {self.renderer.num_layers} noise maps per video, got {len(noise)}."
            )
        frames_noise = [n.repeat_interleave(n_t, dim=0) for n in noise]  # (B*T, 1, r, r)
        frames = self.renderer(w.reshape(b * n_t, d), frames_noise)  # (B*T, 3, H, W)
        frames = frames.reshape(b, n_t, *frames.shape[1:])
        return frames.permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)

    def forward(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        noise: list[Tensor] | None = None,
    ) -> Tensor:
        """Videos [B, 3, T, H, W] at times t ([T] or [B, T]); unbounded like the release."""
        check_shape(z_content, (None, self.cfg.dim_z_content), "z_content")
        check_shape(z_motion, (z_content.shape[0], self.cfg.dim_z_motion), "z_motion")
        return self.render(self.w_of_t(z_content, z_motion, t), noise)


class FMREditedGenerator(VideoGenerator):
    """A view of an FMRGenerator whose forward applies a FrequencyEdit (shares its weights)."""

    continuous_time = True

    def __init__(self, base: FMRGenerator, edit: FrequencyEdit) -> None:
        super().__init__()
        self.base = base
        self.edit = edit
        self.cfg = base.cfg

    def sample_latents(self, batch: int, **kwargs) -> Latents:  # type: ignore[override]
        return self.base.sample_latents(batch, **kwargs)

    def frame_times(self, n_frames: int) -> Tensor:
        return self.base.frame_times(n_frames)

    def forward(
        self,
        z_content: Tensor,
        z_motion: Tensor,
        t: Tensor,
        *,
        labels: Tensor | None = None,
        noise: list[Tensor] | None = None,
    ) -> Tensor:
        w = self.base.w_of_t(z_content, z_motion, t, edit=self.edit)
        return self.base.render(w, noise)


# --- discriminators -----------------------------------------------------------------------------
def _resize_to(x: Tensor, size: int, name: str) -> Tensor:
    """Average-pool frames [B, C, T, H, W] down to `size` (run.sh: avg_pool3d(1, 2, 2))."""
    h = x.shape[-1]
    if h == size:
        return x
    if h % size or h < size:
        raise VidganError(f"{name} works at {size} px and cannot take {h}-px videos.")
    f = h // size
    return F.avg_pool3d(x, (1, f, f))


class _ResNetD2d(nn.Module):
    """StyleGAN2 residual trunk: 1x1 from-RGB, res blocks size -> 4 (the `convs` of every 2-D D)."""

    def __init__(
        self, *, size: int, in_channels: int, channels: Mapping[int, int], blur_kernel
    ) -> None:
        super().__init__()
        convs: list[nn.Module] = [ConvLayer(in_channels, channels[size], 1)]
        in_ch = channels[size]
        for i in range(int(math.log2(size)), 2, -1):
            out_ch = channels[2 ** (i - 1)]
            convs.append(ResBlock(in_ch, out_ch, blur_kernel=blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.trunk_channels = in_ch


class ImageDiscriminator(_ResNetD2d):
    """StyleGAN2 residual D on frames [B, 3, H, W] with minibatch-stddev -> logits [B, 1]."""

    def __init__(
        self,
        *,
        size: int,
        channels: Mapping[int, int],
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        stddev_group: int = 4,
        in_channels: int = 3,
        out_dim: int = 1,
    ) -> None:
        super().__init__(
            size=size, in_channels=in_channels, channels=channels, blur_kernel=blur_kernel
        )
        self.size = size
        self.stddev_group = stddev_group
        ch4 = channels[4]
        self.final_conv = ConvLayer(self.trunk_channels + 1, ch4, 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch4 * 4 * 4, ch4, activation="lrelu"), EqualLinear(ch4, out_dim)
        )

    def head(self, features: Tensor) -> Tensor:
        x = minibatch_stddev(features, self.stddev_group)
        x = self.final_conv(x)
        return self.final_linear(x.reshape(x.shape[0], -1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.convs(x))


class PatchImageDiscriminator(_ResNetD2d):
    """Residual trunk + 1-channel 3x3 conv averaged over the 4x4 patches -> [B]."""

    def __init__(
        self,
        *,
        size: int,
        channels: Mapping[int, int],
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__(size=size, in_channels=3, channels=channels, blur_kernel=blur_kernel)
        self.size = size
        self.final_conv = ConvLayer(self.trunk_channels, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.final_conv(self.convs(x)).mean(dim=(1, 2, 3))


class Blur3d(Blur):
    """The 2-D FIR blur applied to every frame of [B, C, T, H, W]."""

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        y = upfirdn2d(x.reshape(b, c * t, h, w), self.kernel, pad=self.pad)
        return y.reshape(b, c, t, *y.shape[-2:])


class _DownConv3d(EqualConv3d):
    """3x3x3 stride-2 conv after the blur: pads time (end only when time is halved), no space.

    When time is halved, the release pads one frame at the end; we pad two for odd lengths so
    the output has ceil(T/2) frames like the 1x1 skip path (any T >= 1 works; T even: as released).
    """

    def __init__(self, in_channels: int, out_channels: int, *, downsample_t: bool, bias: bool):
        super().__init__(
            in_channels,
            out_channels,
            3,
            stride=(2, 2, 2) if downsample_t else (1, 2, 2),
            padding=0,
            bias=bias,
        )
        self.downsample_t = downsample_t

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[2]
        pad_t = (0, 1 + t % 2) if self.downsample_t else (1, 1)
        return super().forward(F.pad(x, (0, 0, 0, 0, *pad_t)))


class Conv3dLayer(nn.Sequential):
    """[Blur3d] -> EqualConv3d -> [bias + lrelu]; down-sampling halves space (and time if asked)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        downsample: bool = False,
        downsample_t: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        conv_bias = bias and not activate
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur3d(blur_kernel, pad=((p + 1) // 2, p // 2)))
            if kernel_size == 3:
                layers.append(
                    _DownConv3d(
                        in_channels, out_channels, downsample_t=downsample_t, bias=conv_bias
                    )
                )
            elif kernel_size == 1:
                stride = (2, 2, 2) if downsample_t else (1, 2, 2)
                layers.append(
                    EqualConv3d(in_channels, out_channels, 1, stride=stride, bias=conv_bias)
                )
            else:
                raise ValueError("down-sampling 3-D layers use kernel 1 or 3")
        else:
            layers.append(
                EqualConv3d(
                    in_channels,
                    out_channels,
                    kernel_size,
                    padding=(kernel_size - 1) // 2,
                    bias=conv_bias,
                )
            )
        if activate:
            layers.append(FusedLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)


class Res3dBlock(nn.Module):
    """3-D residual D block: conv3 in->out, down conv3 out->out, 1x1 down skip; sum / sqrt2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        downsample_t: bool,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.conv1 = Conv3dLayer(in_channels, out_channels, 3)
        self.conv2 = Conv3dLayer(
            out_channels,
            out_channels,
            3,
            downsample=True,
            downsample_t=downsample_t,
            blur_kernel=blur_kernel,
        )
        self.skip = Conv3dLayer(
            in_channels,
            out_channels,
            1,
            downsample=True,
            downsample_t=downsample_t,
            blur_kernel=blur_kernel,
            bias=False,
            activate=False,
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class _ResNetD3d(nn.Module):
    """3-D residual trunk: time halved by the first two blocks (16 -> 8 -> 4), space size -> 4."""

    def __init__(
        self, *, size: int, channels: Mapping[int, int], blur_kernel: Sequence[float]
    ) -> None:
        super().__init__()
        self.size = size
        convs: list[nn.Module] = [Conv3dLayer(3, channels[size], 1)]
        in_ch = channels[size]
        for idx, i in enumerate(range(int(math.log2(size)), 2, -1)):
            out_ch = channels[2 ** (i - 1)]
            convs.append(Res3dBlock(in_ch, out_ch, downsample_t=idx < 2, blur_kernel=blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.trunk_channels = in_ch


class PatchVideoDiscriminator(_ResNetD3d):
    """3-D residual D, final 1-channel 3x3x3 conv averaged over patches -> [B] (any T >= 1).

    Videos larger than `size` are average-pooled per frame first (run.sh: 256 px video, D at 128).
    """

    def __init__(
        self,
        *,
        size: int,
        channels: Mapping[int, int],
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__(size=size, channels=channels, blur_kernel=blur_kernel)
        self.final_conv = Conv3dLayer(self.trunk_channels, 1, 3)

    def forward(self, video: Tensor) -> Tensor:
        x = self.convs(_resize_to(video, self.size, type(self).__name__))
        return self.final_conv(x).mean(dim=(1, 2, 3, 4))


class VideoDiscriminator(_ResNetD3d):
    """3-D residual D with minibatch-stddev and a linear head -> [B, 1] (16-frame clips)."""

    def __init__(
        self,
        *,
        size: int,
        channels: Mapping[int, int],
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        stddev_group: int = 4,
    ) -> None:
        super().__init__(size=size, channels=channels, blur_kernel=blur_kernel)
        self.stddev_group = stddev_group
        ch4 = channels[4]
        self.final_conv = Conv3dLayer(self.trunk_channels + 1, ch4, 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch4 * 4 * 4 * 4, ch4, activation="lrelu"), EqualLinear(ch4, 1)
        )

    def forward(self, video: Tensor) -> Tensor:
        x = self.convs(_resize_to(video, self.size, type(self).__name__))
        if x.shape[2] != 4:
            raise VidganError(
                "VideoDiscriminator needs clips that reduce to 4 frames (16), "
                f"got {video.shape[2]}."
            )
        x = self.final_conv(minibatch_stddev(x, self.stddev_group))
        return self.final_linear(x.reshape(x.shape[0], -1))


class DeltaVideoDiscriminator(ImageDiscriminator):
    """Frame pair stacked to 6 channels, projection-conditioned on LFF features of the gap dt."""

    def __init__(
        self,
        *,
        size: int,
        channels: Mapping[int, int],
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        stddev_group: int = 4,
        num_frames: int = 2,
        cmap_dim: int = 128,
        pe_dim: int = 256,
    ) -> None:
        """cmap_dim, pe_dim: projection and time-embedding widths (release: 128, 256)."""
        super().__init__(
            size=size,
            channels=channels,
            blur_kernel=blur_kernel,
            stddev_group=stddev_group,
            in_channels=3 * num_frames,
            out_dim=cmap_dim,
        )
        self.num_frames = num_frames
        self.cmap_dim = cmap_dim
        self.temporalPE = LearnedFourierFeatures(1, pe_dim, freq_range=(0.0, 3.0))
        self.delta_linear = EqualLinear(pe_dim, cmap_dim)

    def delta_embedding(self, delta: Tensor) -> Tensor:
        """dt [B] or [B, 1] (time units of the generator) -> [B, cmap_dim]."""
        return self.delta_linear(self.temporalPE(delta.reshape(-1, 1)))

    def forward(self, video: Tensor, delta: Tensor) -> Tensor:
        """video [B, 3, 2, H, W], delta [B] or [B, 1] -> logits [B, 1]."""
        video = _resize_to(video, self.size, type(self).__name__)
        b, c, t, h, w = video.shape
        if t != self.num_frames or delta.numel() != b:
            raise VidganError(
                f"DeltaVideoDiscriminator takes [B, 3, {self.num_frames}, H, W] clips and one dt "
                f"per clip; got {list(video.shape)} and dt {list(delta.shape)}."
            )
        x = self.head(self.convs(video.reshape(b, c * t, h, w)))  # channels (c t)
        emb = self.delta_embedding(delta.to(x.dtype))
        return (x * emb).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)


# --- builders and registration ------------------------------------------------------------------
_IMAGE_DS = {"image": ImageDiscriminator, "patch_image": PatchImageDiscriminator}
_VIDEO_DS = {
    "patch_video": PatchVideoDiscriminator,
    "video": VideoDiscriminator,
    "delta": DeltaVideoDiscriminator,
}
# release default channel_multiplier of each discriminator class
_D_MULTIPLIER = {
    ImageDiscriminator: 2,
    PatchImageDiscriminator: 2,
    PatchVideoDiscriminator: 1,
    VideoDiscriminator: 1,
    DeltaVideoDiscriminator: 2,
}


def discriminator_channels(cfg: FMRConfig, cls: type[nn.Module]) -> dict[int, int]:
    cm = cfg.d_channel_multiplier or _D_MULTIPLIER[cls]
    return channel_table(cm, cfg.d_channels)


def build_discriminator(cfg: FMRConfig, cls: type[nn.Module], size: int) -> nn.Module:
    kw = {"size": size, "channels": discriminator_channels(cfg, cls)}
    kw["blur_kernel"] = cfg.blur_kernel
    if cls in (ImageDiscriminator, VideoDiscriminator, DeltaVideoDiscriminator):
        kw["stddev_group"] = cfg.stddev_group
    return cls(**kw)


def build_generator(cfg: FMRConfig) -> FMRGenerator:
    return FMRGenerator(cfg)


def build_discriminators(cfg: FMRConfig) -> dict[str, nn.Module]:
    """{"image": frame D at image_size, "video": video D at image_size * vd_resize_ratio}."""
    return {
        "image": build_discriminator(cfg, _IMAGE_DS[cfg.image_discriminator], cfg.image_size),
        "video": build_discriminator(cfg, _VIDEO_DS[cfg.video_discriminator], cfg.video_d_size),
    }


register_model(
    ModelSpec(
        name="fmr",
        config_cls=FMRConfig,
        build_generator=build_generator,
        build_discriminators=build_discriminators,
        recipe=None,
        description="FMR (TIP 2023): sinusoidal motion bands + StyleGAN2 renderer, continuous time",
    )
)
