"""`vidgan generate`: the one sampling command for every model and every checkpoint kind."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidgan.commands import COMMANDS, Command
from vidgan.errors import VidganError
from vidgan.registry import Registry

DESCRIPTION = """\
Sample videos from a checkpoint: a vidgan model file (.safetensors), a training run folder,
or an official DIGAN (.pkl), FMR (.pt) or G3AN (.pth) checkpoint.

Modes (--mode):
  random        N random videos (default)
  grid          every one of --appearances contents with every one of --motions motions
  lengths       each appearance at every supported length (16..48 frames for G3AN)
  interpolate   --factor times the frame rate over the same span (continuous-time models)
  extrapolate   --factor times as many frames at the same rate (continuous-time models)
  upsample      render at --scale times the resolution on a denser coordinate grid (DIGAN)
  zoomout       a --zoom times wider field of view at the same pixel density (DIGAN)
  diverse       each of --appearances contents with --motions motion codes, plus the
                difference videos (x_t - x_0) / 2 (DIGAN)

Frequency bands (FMR): --freq-edges splits the learned |w| into bands (in |w| units, or as
fractions of the largest learned frequency with --ratio); --keep / --remove name bands (low,
high, or indices 0..n), --alter BAND drives that band with the motion code of --motion-seed;
--spectrum prints the learned frequencies and exits.

Long videos (continuous-time models: DIGAN, FMR): --chunk N renders and writes N frames at a
time, so memory does not grow with --frames; the frames equal one-shot generation (in fp32).

Precision: fp32 by default (the same frames on every machine). --precision bf16 renders under
bf16 autocast: on CPUs with AMX / AVX512-BF16 DIGAN and FMR generate 3-4x faster, and the
frames differ from fp32 by a level or two of 8 bits on average; --precision auto picks bf16
where the hardware has bf16 units.

Outputs go to --out: one file per video (mp4, gif, or a folder of png frames in the
StyleGAN-V layout so the set can be evaluated like a real one), a labelled grid video with
--grid, and generate.json recording the checkpoint, seed and options.

Examples:
  vidgan generate run/ --out samples --n 16 --seed 0
  vidgan generate fmr_toy.safetensors --out interp --mode interpolate --factor 4 --grid
  vidgan generate fmr_toy.safetensors --out low --freq-edges 3 --keep low
  vidgan generate fmr_toy.safetensors --out alt --freq-edges 3 --alter high --motion-seed 7
  vidgan generate fmr_toy.safetensors --spectrum
  vidgan generate g3an.pth --from g3an --out grid --mode grid --appearances 3 --motions 4
  vidgan generate digan.pkl --from digan --out long --n 2 --frames 1024 --chunk 64
"""

#: name -> fn(G, args, generator) -> list of (file stem, VideoOutput) or Streamed
Mode = Callable[..., list]


@dataclass
class Streamed:
    """Videos written piece by piece (`--chunk`): only one chunk of frames is ever in memory.

    `pieces` yields, per chunk of time, one `[n, 3, c, H, W]` tensor per stem.
    """

    stems: list[str]
    names: list[list[str]]
    pieces: Iterator[tuple]


MODES: Registry[Mode] = Registry("generate mode")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", help="model file, run folder, or official checkpoint")
    p.add_argument("--out", help="output folder (must be new or empty)")
    p.add_argument("--from", dest="source", default=None, help="official format: digan|fmr|g3an")
    p.add_argument("--mode", default="random", help="random|grid|lengths|interpolate|extrapolate")
    p.add_argument("--n", type=int, default=8, help="number of videos (random mode)")
    p.add_argument("--frames", type=int, default=16, help="frames per video on the model's grid")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    p.add_argument("--format", choices=("mp4", "gif", "png"), default="mp4")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of written videos")
    p.add_argument("--factor", type=int, default=4, help="interpolate/extrapolate factor")
    p.add_argument("--scale", type=int, default=2, help="upsample mode: resolution factor")
    p.add_argument("--zoom", type=float, default=1.5, help="zoomout mode: field-of-view factor")
    p.add_argument("--appearances", type=int, default=3, help="contents in grid/lengths mode")
    p.add_argument("--motions", type=int, default=3, help="motions in grid mode")
    p.add_argument("--batch", type=int, default=8, help="videos rendered at once")
    p.add_argument(
        "--chunk", type=int, default=0, help="frames rendered and written at once (0 = all)"
    )
    p.add_argument("--grid", action="store_true", help="also write one labelled grid video")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        default="fp32",
        help="bf16: autocast, 3-4x faster on AMX / AVX512-BF16 CPUs, frames within bf16 "
        "rounding; auto: bf16 where the hardware has bf16 units, else fp32 (default fp32: "
        "the same frames on every machine, chunked renders equal to one-shot ones)",
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    f = p.add_argument_group("frequency bands (models with learned motion frequencies: FMR)")
    f.add_argument("--freq-edges", default=None, help="band edges, e.g. 3 or 2,5")
    f.add_argument("--ratio", action="store_true", help="edges are fractions of the max |w|")
    f.add_argument("--keep", default=None, help="bands to keep: low, high or indices (0,2)")
    f.add_argument("--remove", default=None, help="bands to zero: low, high or indices")
    f.add_argument("--alter", default=None, help="band driven by another motion code")
    f.add_argument("--motion-seed", type=int, default=1, help="seed of the --alter motion code")
    f.add_argument("--spectrum", action="store_true", help="print learned frequencies and exit")


def resolve_precision(precision: str, device: Any) -> bool:
    """`--precision`: True for bf16 autocast. auto = bf16 where the hardware has bf16 units
    (`vidgan.precision.native_bf16`: 3-4x faster generation on an AMX Xeon, frames within bf16
    rounding of fp32), else fp32."""
    from vidgan.precision import native_bf16

    if precision == "auto":
        return native_bf16(device)
    return precision == "bf16"


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise VidganError(f"--out {out} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise VidganError(f"--out {out} is not empty; choose a new folder or pass --force.")


def run(args: argparse.Namespace) -> int:
    import torch

    from vidgan.checkpoint import load_checkpoint
    from vidgan.io import make_grid, write_video
    from vidgan.train.dist import pick_device

    for name in ("n", "frames", "factor", "appearances", "motions", "batch"):
        if getattr(args, name) < 1:
            raise VidganError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    mode = MODES.get(args.mode)
    device = pick_device(args.device)
    if args.spectrum:
        loaded = load_checkpoint(args.ckpt, source=args.source, device=device)
        print(_spectrum_text(loaded.generator))
        return 0
    if not args.out:
        raise VidganError("--out is required (the folder the videos go to).")
    out = Path(args.out)
    _check_out(out, args.force)
    if args.chunk < 0:
        raise VidganError(f"--chunk must be 0 (all frames at once) or more, got {args.chunk}.")
    loaded = load_checkpoint(args.ckpt, source=args.source, device=device)
    if args.chunk and not loaded.generator.continuous_time:
        raise VidganError(
            f"--chunk needs a continuous-time model (DIGAN, FMR); {type(loaded.generator).__name__}"
            f" renders whole videos of {loaded.generator.supported_lengths} frames."
        )
    G = _apply_band_edit(loaded.generator, args)
    gen = torch.Generator().manual_seed(args.seed)
    bf16 = resolve_precision(args.precision, device)
    args.precision_used = "bf16" if bf16 else "fp32"
    out.mkdir(parents=True, exist_ok=True)
    suffix = {"mp4": ".mp4", "gif": ".gif", "png": ""}[args.format]
    written = []
    # chunked modes render while they write, so autocast spans the writing too
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for item in mode(G, args, gen):
            if isinstance(item, Streamed):
                written += _write_streamed(item, out, suffix, args)
                continue
            stem, output = item
            videos = output.videos.float()
            names = output.names or [f"{i:04d}" for i in range(len(videos))]
            for video, name in zip(videos, names):
                fname = f"{stem}_{name.replace(' ', '_')}{suffix}"
                written.append(str(write_video(out / fname, video, fps=args.fps)))
            if args.grid:
                grid = make_grid(videos.clamp(-1, 1), nrow=8, labels=names)
                gsuffix = suffix or ".mp4"
                path = out / f"{stem}_grid{gsuffix}"
                written.append(str(write_video(path, grid, fps=args.fps)))
    record = {
        "ckpt": str(args.ckpt),
        "model": loaded.spec.name,
        "mode": args.mode,
        "seed": args.seed,
        "options": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "provenance": loaded.provenance,
        "files": written,
    }
    (out / "generate.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"wrote {len(written)} files to {out}/")
    return 0


def _write_streamed(plan: Streamed, out: Path, suffix: str, args: argparse.Namespace) -> list[str]:
    """Write every chunk of `plan` as it is rendered: one file per video (+ a grid per stem)."""
    from vidgan.io import make_grid
    from vidgan.io.video import VideoWriter

    files = []
    for stem, names in zip(plan.stems, plan.names):
        files.append([out / f"{stem}_{name.replace(' ', '_')}{suffix}" for name in names])
        if args.grid:
            files[-1].append(out / f"{stem}_grid{suffix or '.mp4'}")
    writers = [[VideoWriter(f, fps=args.fps) for f in group] for group in files]
    try:
        for pieces in plan.pieces:
            for piece, group, names in zip(pieces, writers, plan.names):
                for video, writer in zip(piece, group):
                    writer.write(video)
                if args.grid:
                    group[-1].write(make_grid(piece.clamp(-1, 1), nrow=8, labels=names))
            # drop this chunk before the next one renders (the loop names would keep it alive)
            del pieces, piece, video
    finally:
        for group in writers:
            for writer in group:
                writer.close()
    return [str(f) for group in files for f in group]


def _stream(G, args, stem: str, latents, t) -> Streamed:
    """`--chunk` plan of the videos `latents` at times `t` (what `sample` would return)."""
    from vidgan.sample import iter_video_chunks

    chunks = iter_video_chunks(G, latents, t, chunk_frames=args.chunk, batch_size=args.batch)
    names = [f"{i:04d}" for i in range(latents.batch_size)]
    # map, not a generator expression: that would keep the previous chunk while the next renders
    return Streamed([stem], [names], map(lambda piece: (piece,), chunks))


def _bands(text: str | None, n_bands: int, flag: str) -> list[int]:
    names = {"low": 0, "high": n_bands - 1}
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if part in names:
            out.append(names[part])
        elif part.lstrip("-").isdigit() and -n_bands <= int(part) < n_bands:
            out.append(int(part) % n_bands)
        else:
            raise VidganError(
                f"{flag} {part!r} is not a band: use low, high or 0..{n_bands - 1} "
                f"(--freq-edges gives {n_bands} bands)."
            )
    return out


def _apply_band_edit(G, args: argparse.Namespace):
    """The generator seen through --freq-edges/--keep/--remove/--alter (if any were given)."""
    asked = any(v is not None for v in (args.freq_edges, args.keep, args.remove, args.alter))
    if not asked:
        return G
    if not hasattr(G, "edit"):
        raise VidganError(f"{type(G).__name__} has no frequency bands to edit.")
    import torch

    try:
        edges = [float(x) for x in (args.freq_edges or "").split(",") if x.strip()]
    except ValueError:
        raise VidganError(
            f"--freq-edges {args.freq_edges!r} must be numbers like 3 or 2,5."
        ) from None
    if not edges:
        raise VidganError("--keep, --remove and --alter need --freq-edges (e.g. --freq-edges 3).")
    n = len(edges) + 1
    keep = _bands(args.keep, n, "--keep") if args.keep is not None else None
    remove = _bands(args.remove, n, "--remove")
    motions = {}
    if args.alter is not None:
        g = torch.Generator().manual_seed(args.motion_seed)
        code = G.sample_latents(1, generator=g).motion[0]
        motions = {b: code for b in _bands(args.alter, n, "--alter")}
    edit = G.edit(edges=edges, ratio=args.ratio, keep=keep, remove=remove, band_motions=motions)
    return G.with_edit(edit)


def _spectrum_text(G) -> str:
    if not hasattr(G, "frequency_spectrum"):
        raise VidganError(f"{type(G).__name__} has no learned motion frequencies.")
    lines = ["learned motion frequencies |w| (angular, per unit of time; frames are 2/16 apart)"]
    for i, w in enumerate(G.frequency_spectrum()):
        w = w.float().sort().values
        q = [w[int(f * (len(w) - 1))].item() for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
        hist = " ".join(f"{int(((w >= a) & (w < a + 1)).sum())}" for a in range(int(q[-1]) + 1))
        lines.append(
            f"band generator {i}: {len(w)} sinusoids, min {q[0]:.2f} q25 {q[1]:.2f} "
            f"median {q[2]:.2f} q75 {q[3]:.2f} max {q[4]:.2f}"
        )
        lines.append(f"  count per unit bin [0,1) [1,2) ...: {hist}")
    return "\n".join(lines)


def _common(args: argparse.Namespace) -> dict:
    return {"batch_size": args.batch, "chunk_frames": args.chunk or None}


@MODES.register("random")
def _random(G, args, gen) -> list:
    from vidgan.sample import sample

    if args.chunk:
        G.check_length(args.frames)
        lat = G.sample_latents(args.n, n_frames=args.frames, generator=gen)
        return [_stream(G, args, "video", lat, G.frame_times(args.frames))]
    return [("video", sample(G, args.n, n_frames=args.frames, generator=gen, **_common(args)))]


@MODES.register("grid")
def _grid(G, args, gen) -> list:
    from vidgan.sample import appearance_motion_grid

    out = appearance_motion_grid(
        G, args.appearances, args.motions, n_frames=args.frames, generator=gen, **_common(args)
    )
    return [("grid", out)]


@MODES.register("lengths")
def _lengths(G, args, gen) -> list:
    from vidgan.sample import sample

    lengths = G.supported_lengths or (16, 32, 48)
    latents = G.sample_latents(args.appearances, n_frames=max(lengths), generator=gen)
    results = []
    for n_frames in lengths:
        lat = latents
        if not G.continuous_time:  # discrete models draw length-specific motion codes
            lat = G.sample_latents(args.appearances, n_frames=n_frames, generator=gen)
            lat.content = latents.content
        out = sample(G, args.appearances, n_frames=n_frames, latents=lat, **_common(args))
        out.names = [f"app{i}_{n_frames}f" for i in range(args.appearances)]
        results.append((f"len{n_frames}", out))
    return results


@MODES.register("interpolate")
def _interpolate(G, args, gen) -> list:
    from vidgan.sample import interpolate, interpolation_times

    lat = G.sample_latents(args.n, n_frames=args.frames, generator=gen)
    if args.chunk:
        t = interpolation_times(G, n_frames=args.frames, factor=args.factor)
        return [_stream(G, args, f"interp{args.factor}x", lat, t)]
    out = interpolate(G, lat, n_frames=args.frames, factor=args.factor, **_common(args))
    return [(f"interp{args.factor}x", out)]


@MODES.register("extrapolate")
def _extrapolate(G, args, gen) -> list:
    from vidgan.sample import extrapolate, extrapolation_times

    lat = G.sample_latents(args.n, n_frames=args.frames, generator=gen)
    if args.chunk:
        t = extrapolation_times(G, n_frames=args.frames, factor=args.factor)
        return [_stream(G, args, f"extrap{args.factor}x", lat, t)]
    out = extrapolate(G, lat, n_frames=args.frames, factor=args.factor, **_common(args))
    return [(f"extrap{args.factor}x", out)]


def _require(G, method: str, mode: str) -> None:
    if not hasattr(G, method):
        raise VidganError(
            f"--mode {mode} needs a coordinate-based generator (DIGAN); "
            f"{type(G).__name__} has no {method}()."
        )


def _space_mode(G, args, gen, method: str, mode: str, factor, stem: str) -> list:
    import torch

    from vidgan.sample import VideoOutput

    _require(G, method, mode)
    if factor <= 0:
        raise VidganError(f"--{'scale' if mode == 'upsample' else 'zoom'} must be positive.")
    lat = G.sample_latents(args.n, n_frames=args.frames, generator=gen)
    t = G.frame_times(args.frames)
    render = getattr(G, method)
    if args.chunk:

        def pieces() -> Iterator[tuple]:
            with torch.no_grad():
                for s in range(0, len(t), args.chunk):
                    videos = []
                    for i in range(args.n):
                        one = lat.select(slice(i, i + 1)).to(G.device)
                        tt = t[s : s + args.chunk]
                        videos.append(
                            render(one.content, one.motion, tt, factor, labels=one.labels)
                        )
                    yield (torch.cat(videos).cpu(),)

        return [Streamed([stem], [[f"{i:04d}" for i in range(args.n)]], pieces())]
    videos = []
    with torch.no_grad():
        for i in range(args.n):
            one = lat.select(slice(i, i + 1)).to(G.device)
            videos.append(render(one.content, one.motion, t, factor, labels=one.labels).cpu())
    return [(stem, VideoOutput(videos=torch.cat(videos), timestamps=t, latents=lat))]


@MODES.register("upsample")
def _upsample(G, args, gen) -> list:
    return _space_mode(G, args, gen, "upsampled", "upsample", args.scale, f"up{args.scale}x")


@MODES.register("zoomout")
def _zoomout(G, args, gen) -> list:
    return _space_mode(
        G, args, gen, "zoomed_out", "zoomout", args.zoom, f"zoom{args.zoom:g}x".replace(".", "p")
    )


@MODES.register("diverse")
def _diverse(G, args, gen) -> list:
    import torch

    from vidgan.models.base import Latents
    from vidgan.sample import VideoOutput, difference_video

    _require(G, "diverse_motion", "diverse")
    t = G.frame_times(args.frames)
    if args.chunk:
        return [_diverse_streamed(G, args, gen, t, i) for i in range(args.appearances)]
    results = []
    with torch.no_grad():
        for i in range(args.appearances):
            app = G.sample_latents(1, n_frames=args.frames, generator=gen).to(G.device)
            mot = G.sample_latents(args.motions, n_frames=args.frames, generator=gen)
            videos = G.diverse_motion(app.content, mot.motion.to(G.device), t).cpu()
            lat = Latents(content=app.content.cpu().expand(args.motions, -1), motion=mot.motion)
            names = [f"mot{j}" for j in range(args.motions)]
            results.append((f"app{i}", VideoOutput(videos, t, lat, names)))
            diff = difference_video(videos)
            results.append((f"app{i}_diff", VideoOutput(diff, t, lat, names)))
    return results


def _diverse_streamed(G, args, gen, t, i: int) -> Streamed:
    """One appearance of `diverse` with `--chunk`: the videos and their difference videos."""
    import torch

    app = G.sample_latents(1, n_frames=args.frames, generator=gen).to(G.device)
    mot = G.sample_latents(args.motions, n_frames=args.frames, generator=gen).motion.to(G.device)

    def pieces() -> Iterator[tuple]:
        first = None
        with torch.no_grad():
            for s in range(0, len(t), args.chunk):
                videos = G.diverse_motion(app.content, mot, t[s : s + args.chunk]).cpu()
                first = videos[:, :, :1] if first is None else first  # x_0 of every video
                yield videos, (videos - first) / 2  # as difference_video
                del videos  # not kept while the next chunk renders

    names = [f"mot{j}" for j in range(args.motions)]
    return Streamed([f"app{i}", f"app{i}_diff"], [names, names], pieces())


COMMANDS.add(
    "generate",
    Command(
        help="sample videos from a checkpoint (any model, any checkpoint kind)",
        description=DESCRIPTION,
        configure=configure,
        run=run,
    ),
)
