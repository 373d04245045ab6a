"""Demo section 3: DIGAN on the toy set - a video as a function of (x, y, t).

Uses the bundled toy checkpoint (`vidgan/assets/digan-toy-32.safetensors`, trained with vidgan on
a CPU; its provenance is stored inside) or, with `--train-minutes N`, a model trained now. Every
item renders the same generator on other coordinates: denser times (interpolation), times past
the training span (extrapolation), a denser pixel grid (up-sampling), a wider one (zoom-out),
and other motion codes for one content code (diverse motion).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from vidgan.demo import DemoContext, DemoItem, section
from vidgan.demo.common import bundled_asset, demo_generator, labelled_grid, real_vs_fake_item

BUNDLED = "digan-toy-32.safetensors"
PRESET = "digan-toy-32"
INTERP = 8  # time interpolation factor (frames per training frame)
EXTRAP = 2  # extrapolation: this many training spans
UPSAMPLE = 4  # space up-sampling factor
ZOOM = 1.5  # zoom-out factor (1.5 at 32 px keeps the centre on the training grid)
N_MOTIONS = 4  # motion codes for the one content code of the diverse-motion item


def bundled_checkpoint() -> Path:
    return bundled_asset(BUNDLED)


def upsample_pairs(base: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """Interleave base videos (nearest-enlarged to `fine`'s size) with their fine renders."""
    s = fine.shape[-1] // base.shape[-1]
    big = base.repeat_interleave(s, dim=-1).repeat_interleave(s, dim=-2)
    return torch.stack([big, fine], dim=1).flatten(0, 1)  # (B, 2, ...) -> (2B, ...)


def zoom_pairs(base: torch.Tensor, wide: torch.Tensor) -> torch.Tensor:
    """Interleave base videos (centred on a grey canvas of `wide`'s size) with the wide views."""
    p = (wide.shape[-1] - base.shape[-1]) // 2
    q = wide.shape[-1] - base.shape[-1] - p
    framed = F.pad(base, (p, q, p, q), value=0.0)  # grey marks what the training view lacks
    return torch.stack([framed, wide], dim=1).flatten(0, 1)


@section("DIGAN: videos as continuous functions")
def digan_demo(ctx: DemoContext) -> list[DemoItem]:
    from vidgan.sample import difference_video, extrapolate, interpolate, sample

    G, origin = demo_generator(ctx, preset=PRESET, bundled=BUNDLED, run_name="train_run_digan")
    gen = torch.Generator().manual_seed(ctx.seed)
    out = ctx.out
    items = []

    fake = sample(G, 8, n_frames=16, generator=gen).videos  # (8, 3, 16, 32, 32)
    items.append(
        real_vs_fake_item(
            ctx,
            "digan_samples",
            fake,
            f"Top row real toy clips, bottom row DIGAN samples from {origin}: 16 frames at "
            "t = k / 15.",
        )
    )

    lat = G.sample_latents(2, generator=gen)
    dense = interpolate(G, lat, n_frames=16, factor=INTERP).videos
    plain = sample(G, 2, n_frames=16, latents=lat).videos.repeat_interleave(INTERP, dim=2)
    videos = torch.stack([plain, dense], dim=1).flatten(0, 1)
    labels = ["16 frames", f"{INTERP}x frames"] * 2
    f = labelled_grid(out, "digan_interp8x", videos, labels, nrow=2, fps=4 * INTERP)
    items.append(
        DemoItem(
            f"{INTERP}x time interpolation",
            f,
            f"Left: the 16 training-grid frames, each held {INTERP} times; right: the same "
            f"span rendered at {16 * INTERP} times. Same playback speed: the right one is "
            "smoother because t is continuous.",
        )
    )

    lat4 = G.sample_latents(4, generator=gen)
    longer = extrapolate(G, lat4, n_frames=16, factor=EXTRAP).videos
    f = labelled_grid(out, "digan_extrap2x", longer, [f"{EXTRAP}x #{i}" for i in range(4)], nrow=4)
    items.append(
        DemoItem(
            f"{EXTRAP}x extrapolation",
            f,
            f"{16 * EXTRAP} frames at the training frame rate (t up to {EXTRAP * 16 - 1}/15): "
            "the second half lies past the time range the model was trained on.",
        )
    )

    t = G.frame_times(16)
    with torch.no_grad():
        base = G(lat.content, lat.motion, t).cpu()
        fine = G.upsampled(lat.content, lat.motion, t, UPSAMPLE).cpu()
        wide = G.zoomed_out(lat4.content, lat4.motion, t, ZOOM).cpu()
        base4 = G(lat4.content, lat4.motion, t).cpu()
    f = labelled_grid(out, "digan_up4x", upsample_pairs(base, fine), None, nrow=2)
    items.append(
        DemoItem(
            f"{UPSAMPLE}x space up-sampling",
            f,
            f"Left: 32x32 frames enlarged; right: the same videos rendered on a {UPSAMPLE}x "
            f"denser coordinate grid ({32 * UPSAMPLE}x{32 * UPSAMPLE}), no retraining.",
        )
    )
    f = labelled_grid(out, "digan_zoomout", zoom_pairs(base4, wide), None, nrow=4)
    items.append(
        DemoItem(
            f"Zoom-out {ZOOM:g}x",
            f,
            f"Pairs: the training view (framed in grey) and a {ZOOM:g}x wider view of the same "
            "video: the generator paints coordinates it never saw in training.",
        )
    )

    one = G.sample_latents(1, generator=gen)
    motions = G.sample_latents(N_MOTIONS, generator=gen).motion.to(G.device)
    with torch.no_grad():
        diverse = G.diverse_motion(one.content.to(G.device), motions, t).cpu()
    videos = torch.cat([diverse, difference_video(diverse)])
    labels = [f"motion {i}" for i in range(N_MOTIONS)] + ["x_t - x_0"] * N_MOTIONS
    f = labelled_grid(out, "digan_diverse", videos, labels, nrow=N_MOTIONS)
    items.append(
        DemoItem(
            "Diverse motion",
            f,
            f"One content code with {N_MOTIONS} motion codes (top) and what moved since the "
            "first frame (bottom, grey = no change). The motion code only shifts the phases of "
            "the time features, so every video starts from the same frame.",
        )
    )
    return items
