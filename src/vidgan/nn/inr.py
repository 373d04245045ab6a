"""Parts of an implicit (INR) image/video generator: coordinate grids, Fourier coordinate features
with a time phase shift, and per-pixel factorised-multiplicative-modulated (FMM) linear layers.

INR-GAN (Skorokhodov et al., CVPR 2021, arXiv:2011.12026) renders every pixel from its (x, y)
coordinates with 1x1 layers whose weights are modulated by the latent code. DIGAN (Yu et al.,
ICLR 2022, arXiv:2202.10571, sec. 3.1) adds time: it enters only as a phase shift of the Fourier
coordinate features. Every layer here is split into a time-independent part computed once per
video (`content`, `modulate`) and a cheap per-frame part, so a video costs one set of modulated
weights however many frames it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgan.nn.equalized import SQRT2, EqualLinear
from vidgan.precision import slow_lowp_dtype


def coordinate_grid(
    n: int,
    *,
    fov: float = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """`[2, n, n]` pixel coordinates: channel 0 = x along the width, channel 1 = y (up).

    INR-GAN's grid is left-aligned, not pixel-centred: x_j = fov * (2 j / n - 1), so the training
    view (fov = 1) covers [-1, 1 - 2/n]; y is the same row flipped (the top row has the largest y).
    A denser grid (larger `n`, same `fov`) samples the same scene more finely (space
    up-sampling): grid(s n)[:, s i + s - 1, s j] = grid(n)[:, i, j], the flipped y making the
    odd rows line up. A wider one (`fov` > 1, n = fov n0) sees beyond the training view
    (zoom-out) and holds grid(n0) at offset (n - n0) / 2 in both axes.
    """
    row = torch.arange(n, device=device, dtype=torch.float32) / n * 2 - 1
    if fov != 1.0:
        row = row * fov
    x = row[None, :].expand(n, n)  # varies along the width
    y = row.flip(0)[:, None].expand(n, n)  # varies along the height, top row largest
    return torch.stack([x, y]).to(dtype)


@dataclass(frozen=True)
class CoordGrid:
    """The view a generator renders: output size in pixels and coordinate half-width `fov`.

    `size` = resolution * (pixels per training pixel) * fov; e.g. at 128 px, `CoordGrid(256)` is a
    2x up-sampled render and `CoordGrid(192, fov=1.5)` a 1.5x zoom-out at training pixel density.
    """

    size: int
    fov: float = 1.0

    def stage(self, n: int) -> Tensor:
        """The grid of a stage with `n` pixels per side (stages halve towards the input)."""
        return coordinate_grid(n, fov=self.fov)


class TemporalFourierFeatures(nn.Module):
    """DIGAN's CoordFuser: sin/cos(W(w)·(x, y) + b(w) + h(w, z_m, t)), time only in the phase.

    W, b = split(A_xy(w)) with W scaled by `fourier_scale` (sqrt(10)); the motion phase shift is
    h = MLP(lrelu_0.01(A_m([w; z_m]) * t * motion_sigma)) (paper eq. 4: smaller temporal frequency).
    Parameter names (`xyaffine`, `affine`, `motion_mlp.{0,1}`) follow the official module.
    """

    def __init__(
        self,
        *,
        w_dim: int,
        motion_dim: int,
        emb_size: int,
        fourier_scale: float = math.sqrt(10),
        motion_sigma: float = 0.25,
    ) -> None:
        """emb_size: E frequencies (2E output channels); motion_dim: width of z_motion."""
        super().__init__()
        self.emb_size = emb_size
        self.fourier_scale = fourier_scale
        self.motion_sigma = motion_sigma
        self.xyaffine = EqualLinear(w_dim, 3 * emb_size)  # 2E frequencies + E phases
        self.affine = EqualLinear(w_dim + motion_dim, emb_size)  # [w; z_m] -> motion code
        self.motion_mlp = nn.Sequential(
            EqualLinear(emb_size, emb_size, activation="lrelu"),
            EqualLinear(emb_size, emb_size),
        )

    @property
    def out_channels(self) -> int:
        return 2 * self.emb_size

    def content(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Time-independent frequencies `[B, E, 2]` and phases `[B, E]` of one video each."""
        e = self.emb_size
        m = self.xyaffine(w)  # (B, 3E)
        freqs = self.fourier_scale * m[:, : 2 * e].reshape(-1, e, 2)  # (B, E, 2): x, y
        return freqs, m[:, 2 * e :]

    def motion_code(self, w: Tensor, z_motion: Tensor) -> Tensor:
        """Time-independent motion code `[B, E]` = A_m([w; z_m]) (before the time scaling)."""
        return self.affine(torch.cat([w, z_motion], dim=1))

    def phase_shift(self, code: Tensor, t: Tensor) -> Tensor:
        """h(t) `[B, T, E]` for times `[B, T]`: MLP(lrelu_0.01(code * t * motion_sigma))."""
        u = F.leaky_relu(code[:, None, :] * t[:, :, None] * self.motion_sigma, 0.01)
        return self.motion_mlp(u)

    @staticmethod
    def spatial_phase(freqs: Tensor, grid: Tensor) -> Tensor:
        """W·(x, y) for every pixel: `[B, E, 2]`, `[2, n, n]` -> `[B, E, n*n]`."""
        return freqs @ grid.reshape(2, -1).to(freqs.dtype)  # (B, E, n*n)

    @staticmethod
    def features(spatial: Tensor, phase: Tensor, shift: Tensor) -> Tensor:
        """[sin; cos](spatial + phase + shift): `[B,E,P]`, `[B,E]`, `[B,T,E]` -> `[B,T,2E,P]`."""
        arg = spatial[:, None] + (phase[:, None, :] + shift)[..., None]  # (B, T, E, P)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=2)

    @staticmethod
    def content_features(spatial: Tensor, phase: Tensor) -> Tensor:
        """Time-free [sin a; cos a] with a = spatial + phase: `[B,E,P]`, `[B,E]` -> `[B,2E,P]`."""
        arg = spatial + phase[..., None]  # (B, E, P)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)

    @staticmethod
    def rotate_weight(weight: Tensor, shift: Tensor) -> Tensor:
        """Per-frame weight `[B, T, C, 2E]` with W(t) [sin a; cos a] = W [sin(a+h); cos(a+h)].

        The time shift h only rotates each (sin, cos) pair, so it can act on the `[B, C, 2E]`
        weight of the layer the features feed instead of on the `[2E, P]` features:
        W_s sin(a+h) + W_c cos(a+h) = (W_s cos h - W_c sin h) sin a + (W_s sin h + W_c cos h) cos a.
        """
        e = shift.shape[-1]
        ws, wc = weight[:, None, :, :e], weight[:, None, :, e:]  # (B, 1, C, E) each
        c, s = torch.cos(shift)[:, :, None], torch.sin(shift)[:, :, None]  # (B, T, 1, E)
        return torch.cat([ws * c - wc * s, ws * s + wc * c], dim=3)

    def forward(self, w: Tensor, z_motion: Tensor, t: Tensor, grid: Tensor) -> Tensor:
        """Features `[B, T, 2E, n*n]` for styles `w` `[B, W]`, motion `[B, M]`, times `[B, T]`."""
        freqs, phase = self.content(w)
        shift = self.phase_shift(self.motion_code(w, z_motion), t)
        return self.features(self.spatial_phase(freqs, grid), phase, shift)


class FMMLinear(nn.Module):
    """Per-pixel linear layer with factorised multiplicative modulation (INR-GAN eq. 5).

    W' = W ⊙ (1 + L R / sqrt(r)) with [L; R] = A(w), rows normalised by their L2 norm (+1e-8),
    then bias and lrelu_0.2 * sqrt(2). `weight` is stored raw ([C_out, C_in]; the rows are
    normalised, so it needs no equalised-lr scale).
    """

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, rank: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.rank = rank
        self.affine = EqualLinear(w_dim, (in_channels + out_channels) * rank)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def modulate(self, w: Tensor) -> Tensor:
        """The modulated, row-normalised weight `[B, C_out, C_in]` of each video (time-free)."""
        cout, cin, r = self.out_channels, self.in_channels, self.rank
        s = self.affine(w)  # (B, (C_in + C_out) r)
        left = s[:, : cout * r].reshape(-1, cout, r)  # (B, C_out, r)
        right = s[:, cout * r :].reshape(-1, r, cin)  # (B, r, C_in)
        mod = left @ right / math.sqrt(r) + 1  # (B, C_out, C_in)
        weight = self.weight[None].to(mod.dtype) * mod
        return weight / (weight.norm(dim=2, keepdim=True) + 1e-8)

    def project(self, weight: Tensor, x: Tensor) -> Tensor:
        """y = lrelu(W' x + b) * sqrt(2) for `x` `[B, T, C_in, P]` -> `[B, T, C_out, P]`."""
        y = (weight * SQRT2)[:, None].to(x.dtype) @ x  # one (C_out x C_in) @ (C_in x P) per frame
        return self.activate(y)

    def project_upsampled(
        self,
        weight: Tensor,
        x_low: Tensor,
        n_low: int,
        extra: Tensor,
        extra_weight: Tensor | None = None,
    ) -> Tensor:
        """`project(weight, [up2(x_low); extra])` with the x part applied before upsampling.

        A per-pixel linear map commutes with nearest upsampling, so W_x up2(x) = up2(W_x x) costs
        a quarter of the multiply-adds, and the wide concatenation is never built. With
        `extra_weight` `[B, T, C_out, C_e]` (per-frame weights from `rotate_weight`), `extra` is
        time-free `[B, C_e, P]`: all frames' rows go through one GEMM per video.
        """
        cx = x_low.shape[2]
        w = (weight * SQRT2).to(x_low.dtype)
        if extra_weight is None:
            y = w[:, None, :, cx:] @ extra.to(x_low.dtype)  # (B, T, C_out, P)
        else:
            y = self.project_frames(extra_weight * SQRT2, extra.to(x_low.dtype))
        add_upsampled_(y, w[:, None, :, :cx] @ x_low, n_low)
        return self.activate(y)

    @staticmethod
    def project_frames(weights: Tensor, x: Tensor) -> Tensor:
        """Per-frame weights `[B, T, C_o, C_i]` on time-free `x` `[B, C_i, P]` -> `[B, T, C_o, P]`.

        The frames are stacked along the rows of one (T C_out x C_in) @ (C_in x P) product, so `x`
        is never copied per frame.
        """
        b, n_t, cout, cin = weights.shape
        y = weights.to(x.dtype).reshape(b, n_t * cout, cin) @ x  # (B, T*C_out, P)
        return y.reshape(b, n_t, cout, x.shape[-1])

    def activate(self, y: Tensor) -> Tensor:
        """lrelu_0.2(y + sqrt(2) b) in place on `y` = sqrt(2) W' x `[B, T, C_out, P]`.

        lrelu is positively homogeneous, so lrelu(z) sqrt(2) = lrelu(sqrt(2) z): the gain rides on
        the small weight and bias, and the large activation is written once, not three times.
        """
        y = y.add_((self.bias * SQRT2).to(y.dtype)[:, None])
        return F.leaky_relu_(y, 0.2)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.project(self.modulate(w), x)


class ModulatedToRGB(nn.Module):
    """Per-pixel RGB projection with style s = A(w) / sqrt(C), no demodulation (StyleGAN2 ToRGB)."""

    def __init__(self, in_channels: int, *, w_dim: int, out_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def modulate(self, w: Tensor) -> Tensor:
        """`[B, 3, C]` weight of each video (time-free)."""
        styles = self.affine(w) / math.sqrt(self.in_channels)  # (B, C)
        return self.weight[None].to(styles.dtype) * styles[:, None, :]

    def project(self, weight: Tensor, x: Tensor) -> Tensor:
        """`x` `[B, T, C, P]` -> RGB `[B, T, 3, P]` (linear)."""
        y = weight[:, None].to(x.dtype) @ x
        return y.add_(self.bias.to(y.dtype)[:, None])

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.project(self.modulate(w), x)


def upsample_nearest(x: Tensor, n: int) -> Tensor:
    """Nearest-neighbour x2 of flattened maps `[B, T, C, n*n]` -> `[B, T, C, (2n)*(2n)]`."""
    b, t, c, _ = x.shape
    x = x.reshape(b, t, c, n, 1, n, 1).expand(b, t, c, n, 2, n, 2)  # repeat each pixel 2x2
    return x.reshape(b, t, c, 4 * n * n)


def add_upsampled_(y: Tensor, x: Tensor, n: int) -> Tensor:
    """y += up2(x) in place: `[B, T, C, (2n)*(2n)]` += nearest x2 of `[B, T, C, n*n]`.

    The coarse map is broadcast over each 2x2 block instead of materialised. Two strided adds
    (even, odd columns) each broadcast over the row pair; one 2x2-broadcast add would run its
    innermost loop over 2 elements and is about 2.5x slower on CPU.
    """
    b, t, c, _ = x.shape
    blocks = y.view(b, t, c, n, 2, n, 2)  # (B, T, C, i, di, j, dj)
    coarse = x.reshape(b, t, c, n, 1, n).to(y.dtype)
    for dj in (0, 1):
        blocks[..., dj].add_(coarse)
    return y


# --- pixel-major inference ---------------------------------------------------------------------
# Inference renders keep maps as `[B, T, P, C]` (channels innermost). A per-pixel layer is then a
# plain linear layer on T*P rows, which oneDNN runs with its bias and lrelu fused into the GEMM's
# output pass (`linear_act`); the upsampled skips are broadcast adds whose inner loop runs over
# the contiguous channels instead of over 2-element strided runs.


def _fused_linear_ok(x: Tensor) -> bool:
    """oneDNN's fused linear applies: a CPU tensor in fp32, or in bf16 with native kernels."""
    if x.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if x.dtype == torch.float32:
        return True
    return x.dtype == torch.bfloat16 and slow_lowp_dtype(x) is None


def linear_act(x: Tensor, weight: Tensor, bias: Tensor | None, *, lrelu: bool) -> Tensor:
    """x W^T + b on rows `[N, C_in]` -> `[N, C_out]`, then lrelu_0.2 if asked (no autograd).

    On CPUs oneDNN adds the bias and applies the lrelu while it writes the product
    (`torch.ops.mkldnn._linear_pointwise`): one pass over the output instead of three.
    """
    # contiguous: oneDNN's fp32 path took ~1000x longer with a strided (sliced) weight
    weight = weight.to(x.dtype).contiguous()
    bias = None if bias is None else bias.to(x.dtype)
    if _fused_linear_ok(x):
        act, scalars = ("leaky_relu", [0.2]) if lrelu else ("none", [])
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, act, scalars, "")
    y = F.linear(x, weight, bias)
    return F.leaky_relu_(y, 0.2) if lrelu else y


def pixel_layer(x: Tensor, weight: Tensor, bias: Tensor | None, *, lrelu: bool) -> Tensor:
    """Per-video weights `[B, C_out, C_in]` on `[B, T, P, C_in]` -> `[B, T, P, C_out]`."""
    b, n_t, p, _ = x.shape
    rows = x.reshape(b, n_t * p, -1)
    outs = [linear_act(rows[i], weight[i], bias, lrelu=lrelu) for i in range(b)]
    y = outs[0][None] if b == 1 else torch.stack(outs)
    return y.view(b, n_t, p, -1)


def pixel_frames_layer(
    feats: Tensor, weights: Tensor, coarse: Tensor | None = None, n: int = 0
) -> Tensor:
    """Per-frame weights `[B, T, C_out, C_e]` on time-free `[B, P, C_e]` -> `[B, T, P, C_out]`
    (`TemporalFourierFeatures.rotate_weight`), one GEMM per frame into its slice of the output.

    coarse: `[B, T, n*n, C_out]` to add upsampled x2 (nearest); it is copied into the output
    first and the GEMM accumulates onto it, which costs less than adding it afterwards.
    """
    b, n_t, cout, _ = weights.shape
    weights = weights.to(feats.dtype)
    y = feats.new_empty(b, n_t, feats.shape[1], cout)
    if coarse is not None:
        up = coarse.view(b, n_t, n, 1, n, 1, cout).expand(b, n_t, n, 2, n, 2, cout)
        y.view(b, n_t, n, 2, n, 2, cout).copy_(up)
    for i in range(b):
        for k in range(n_t):
            if coarse is None:
                torch.mm(feats[i], weights[i, k].t(), out=y[i, k])
            else:
                y[i, k].addmm_(feats[i], weights[i, k].t())
    return y


def pixel_features(freqs: Tensor, phase: Tensor, grid: Tensor, dtype: torch.dtype) -> Tensor:
    """Time-free [sin a; cos a] with a = W.(x, y) + phase, pixel-major: frequencies `[B, E, 2]`,
    phases `[B, E]`, grid `[2, n, n]` -> `[B, n*n, 2E]` in `dtype`.

    a is built with two multiply-adds (a K = 2 matrix product is slow) in one contiguous tensor,
    and sin / cos are written into the halves of the output (no concatenation).
    """
    g = grid.reshape(2, -1).to(freqs.dtype)  # (2, P)
    arg = torch.addcmul(phase[:, None, :], g[0][None, :, None], freqs[:, None, :, 0])
    arg.addcmul_(g[1][None, :, None], freqs[:, None, :, 1])  # (B, P, E)
    e = arg.shape[2]
    out = arg.new_empty(*arg.shape[:2], 2 * e, dtype=dtype)
    out[..., :e].copy_(torch.sin(arg))  # sin(out=<strided bf16 view>) is ~5x slower
    out[..., e:].copy_(torch.cos(arg))
    return out


def pixel_add_upsampled_(y: Tensor, x: Tensor, n: int) -> Tensor:
    """y += up2(x) in place: `[B, T, (2n)^2, C]` += nearest x2 of `[B, T, n^2, C]`."""
    b, n_t, _, c = x.shape
    y.view(b, n_t, n, 2, n, 2, c).add_(x.view(b, n_t, n, 1, n, 1, c).to(y.dtype))
    return y
