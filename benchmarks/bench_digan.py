"""DIGAN generator speed and memory: frames/s and peak RSS, ours vs the official code.

    .venv/bin/python benchmarks/bench_digan.py                       # ours only
    .venv/bin/python benchmarks/bench_digan.py --official /path/to/digan \\
        --official-deps /path/to/site --threads 1 --bf16

Speed: one video of `--frames` frames per timing, eval mode, no_grad, random weights (speed does
not depend on them), each preset's configuration on both sides. Ours renders through the model
API (`G(z, z_m, t)`: mapping, `prepare` once, `render` of every frame); the release renders
through `G.mapping` then `G.synthesis(ws, Ts, z_motion)`, the call its `Generator.forward`
makes, with the frames as its batch (it has no other way to render a video). Timings alternate
ours / official in ABBA order, so shared load hits both alike; the ratio is taken per pair.
FLOPs per frame are counted with torch.utils.flop_counter, and each repetition also times a
512x512 @ 512x4096 matrix product, the machine's own GEMM reference under the same load.

Memory: every figure comes from a fresh subprocess (peak RSS, VmHWM of /proc/self/status: torch's
CPU allocator keeps no statistics and tracemalloc does not see it). Ours renders the video in
chunks of `--chunk` frames through `G.iter_chunks` and converts each chunk to uint8 (what a
writer consumes), keeping nothing; the release renders its frames in one batch. Ours is
measured twice: with glibc's default allocator settings and with a fixed mmap threshold
(`MALLOC_MMAP_THRESHOLD_`), which shows how much of the peak is freed memory glibc keeps.
`--generate ARGS` measures the user's path instead: `vidgan generate ARGS` (a model file,
`--chunk`, mp4 or png through `VideoWriter`) in this process, peak RSS from the first chunk on.

The release (github:sihyun-yu/digan, a plain checkout; `--official` is its root, holding
`src/` and `configs/`) needs omegaconf and einops: install them into a separate folder
(`pip install --target DIR omegaconf einops`) and pass it as `--official-deps DIR`. Nothing in
its code is edited: `np.float` (removed in numpy 2, used in a default argument) is set to
`float` and an empty `requests` module stands in when that package is missing (it is only used
to download files); its CUDA plugins are never built because the tensors are on the CPU, so its
pure-PyTorch reference ops run. Its config is `configs/digan.yml`'s generator section with the
preset's sizes (input resolution, FMM rank, Fourier sizes, extra convs, channel table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidgan.bench.measure import EXTRA_FLOP_FORMULAS
from vidgan.config import from_dict, load_preset
from vidgan.models.digan import DIGANConfig, DIGANGenerator
from vidgan.models.registry import get_model

PRESETS = ("digan-paper-128", "digan-toy-32")
MEMORY_FRAMES = {"digan-paper-128": (16, 64), "digan-toy-32": (16, 1024)}


# --- the two generators ------------------------------------------------------------------------
def build_ours(preset: str) -> DIGANGenerator:
    spec = get_model("digan")
    cfg = from_dict(spec.config_cls, load_preset(preset)["model"])
    torch.manual_seed(0)
    return spec.build_generator(cfg).eval()


def _import_official(root: Path, deps: Path | None) -> types.ModuleType:
    """The release's `training.networks`, importable on a current numpy and without requests."""
    import numpy as np

    if not hasattr(np, "float"):
        np.float = float  # type: ignore[attr-defined]  # used as a default argument at import
    try:
        import requests  # noqa: F401
    except ImportError:
        sys.modules["requests"] = types.ModuleType("requests")
    src = str(root / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    if deps is not None and str(deps) not in sys.path:
        sys.path.append(str(deps))
    import training.networks as networks

    return networks


def official_cfg(root: Path, cfg: DIGANConfig) -> dict[str, Any]:
    """digan.yml's generator section (unresolved, as train.py uses it) at `cfg`'s sizes."""
    from omegaconf import OmegaConf

    gen = OmegaConf.to_container(OmegaConf.load(root / "configs" / "digan.yml").generator)
    gen["input"]["resolution"] = cfg.input_resolution
    gen["fmm"]["rank"] = cfg.fmm_rank
    gen["coords"]["low_res_cfg"]["predictable_emb_size"] = cfg.emb_size_low
    gen["coords"]["medium_res_cfg"]["predictable_emb_size"] = cfg.emb_size_high
    working = sorted({max(r, cfg.input_resolution) for r in cfg.block_resolutions})
    gen["num_extra_convs"] = {
        str(r): cfg.num_extra_convs for r in working if r >= cfg.extra_convs_from
    }
    gen["coords"]["res_configs"] = {
        str(r): "${coords.medium_res_cfg}" if r >= cfg.emb_high_from else "${coords.low_res_cfg}"
        for r in (4, 8, 16, 32, 64, 128, 256)
    }
    return gen


def build_official(root: Path, deps: Path | None, cfg: DIGANConfig) -> torch.nn.Module:
    if cfg.motion_dim != cfg.w_dim:
        raise SystemExit("the release's motion affine takes [w; z_motion] of width 2 w_dim.")
    networks = _import_official(root, deps)
    torch.manual_seed(0)
    G = networks.Generator(
        z_dim=cfg.z_dim,
        c_dim=0,
        w_dim=cfg.w_dim,
        img_resolution=cfg.resolution,
        img_channels=3,
        ours=True,
        mapping_kwargs=dict(num_layers=cfg.mapping_layers),
        synthesis_kwargs=dict(
            channel_base=cfg.channel_base,
            channel_max=cfg.channel_max,
            num_fp16_res=0,
            conv_clamp=None,
        ),
        cfg=official_cfg(root, cfg),
    )
    return G.eval()


def render_ours(G: DIGANGenerator, n_frames: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, G.cfg.z_dim, generator=g)
    z_m = torch.randn(1, G.cfg.motion_dim, generator=g)
    return G(z, z_m, G.frame_times(n_frames))  # (1, 3, T, H, W)


def render_official(G: torch.nn.Module, n_frames: int, motion_dim: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, G.z_dim, generator=g)
    z_m = torch.randn(1, motion_dim, generator=g)
    ts = (torch.arange(n_frames, dtype=torch.float32) / 15).view(-1, 1, 1, 1)  # (T, 1, 1, 1)
    return G.synthesis(G.mapping(z, None), ts, z_m)  # (T, 3, H, W)


# --- speed ------------------------------------------------------------------------------------
def gemm_gflops(dtype: torch.dtype, seconds: float = 0.5) -> float:
    """The machine's own reference: GFLOP/s of a 512x512 @ 512x4096 product (the shape of
    DIGAN's wide 1x1 layers), measured now, under the same load as the generators."""
    a = torch.randn(512, 512).to(dtype)
    b = torch.randn(512, 4096).to(dtype)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 512 * 512 * 4096 * n / (time.perf_counter() - t0) / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def speed(
    preset: str,
    *,
    frames: int,
    reps: int,
    bf16: bool,
    official: tuple[Path, Path | None] | None,
) -> dict[str, Any]:
    ours = build_ours(preset)
    sides: dict[str, Any] = {"ours": lambda n: render_ours(ours, n)}
    row: dict[str, Any] = {
        "preset": preset,
        "precision": "bf16" if bf16 else "fp32",
        "frames": frames,
        "g_params_M": round(sum(p.numel() for p in ours.parameters()) / 1e6, 3),
    }
    if official is not None and bf16:
        # its blocks assert that activations keep their fp32/fp16 dtype, so autocast fails there;
        # its own mixed precision is fp16 on CUDA (num_fp16_res), which this bench cannot run
        row["official"] = "n/a: the release asserts fp32 activations under autocast"
    elif official is not None:
        off = build_official(*official, ours.cfg)
        n_off = sum(p.numel() for p in off.parameters())
        row["official_g_params_M"] = round(n_off / 1e6, 3)
        sides["official"] = lambda n: render_official(off, n, ours.cfg.motion_dim)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    times: dict[str, list[float]] = {k: [] for k in sides}
    flops: dict[str, float] = {}
    gemm: list[float] = []
    with torch.no_grad(), ctx:
        for name, fn in sides.items():
            # EXTRA_FLOP_FORMULAS: our inference path's fused oneDNN linears and addmm_
            with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
                fn(2)  # also the warm-up
            flops[name] = counter.get_total_flops() / 2
        names = list(sides)
        for rep in range(reps):
            gemm.append(gemm_gflops(torch.bfloat16 if bf16 else torch.float32))
            for name in names if rep % 2 == 0 else names[::-1]:  # ABBA
                times[name].append(_timed(lambda fn=sides[name]: fn(frames)) / frames)
                print(f"  {preset} {row['precision']} {name}: {times[name][-1]:.4f} s/frame")
    row["gemm_gflops"] = round(statistics.median(gemm), 2)
    for name, ts in times.items():
        row[f"{name}_s_per_frame"] = [round(x, 5) for x in ts]
        row[f"{name}_fps"] = round(1 / statistics.median(ts), 3)
        row[f"{name}_gflop_per_frame"] = round(flops[name] / 1e9, 4)
        achieved = flops[name] / statistics.median(ts) / 1e9
        row[f"{name}_fraction_of_gemm"] = round(achieved / row["gemm_gflops"], 3)
    if "official" in times:
        ratios = [o / u for o, u in zip(times["official"], times["ours"])]
        row["speedup_median"] = round(statistics.median(ratios), 3)
        row["speedup_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return row


# --- memory (fresh subprocess per figure) ------------------------------------------------------
def _maxrss_mb() -> float:
    """Peak RSS of this process image in MB.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork + execve, so a child started by a
    large parent would report the parent's peak; VmHWM belongs to the new address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: kB or bytes


def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in its own process: peak RSS of building the generator and of rendering one video."""
    torch.set_num_threads(spec["threads"])
    ours = build_ours(spec["preset"])
    out: dict[str, Any] = {}
    with torch.no_grad():
        if spec["side"] == "ours":
            G = ours
            out["rss_built_mb"] = _maxrss_mb()
            g = torch.Generator().manual_seed(1)
            z = torch.randn(1, G.cfg.z_dim, generator=g)
            z_m = torch.randn(1, G.cfg.motion_dim, generator=g)
            t0 = time.perf_counter()
            n = 0
            for piece in G.iter_chunks(z, z_m, G.frame_times(spec["frames"]), chunk=spec["chunk"]):
                u8 = (piece * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # what a writer takes
                n += u8.shape[2]
            out["frames_done"] = n
        else:
            off = build_official(
                Path(spec["official"]), spec["deps"] and Path(spec["deps"]), ours.cfg
            )
            del ours
            out["rss_built_mb"] = _maxrss_mb()
            t0 = time.perf_counter()
            video = render_official(off, spec["frames"], spec["motion_dim"])
            out["frames_done"] = video.shape[0]
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["rss_peak_mb"] = _maxrss_mb()
    return out


#: glibc raises its mmap threshold after a large block is freed, so later chunks are served from
#: the heap, which keeps freed pages: peak RSS creeps up over the first chunks, then plateaus.
#: With a fixed threshold every large block is mapped and unmapped, and the peak stays put.
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def memory(
    preset: str, side: str, frames: int, args: argparse.Namespace, env: dict[str, str] | None = None
) -> dict[str, Any]:
    spec = {
        "side": side,
        "preset": preset,
        "frames": frames,
        "chunk": args.chunk,
        "threads": args.threads,
        "official": args.official and str(args.official),
        "deps": args.official_deps and str(args.official_deps),
        "motion_dim": load_preset(preset)["model"].get("motion_dim", 512),
    }
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    res = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    row = {"preset": preset, "side": side, "frames": frames, **out}
    row["allocator"] = "fixed mmap threshold 128 KiB" if env else "glibc default"
    row["chunk"] = args.chunk if side == "ours" else frames
    print(f"  memory {preset} {side} {frames} frames: {row}")
    return row


def generate_memory(argv: list[str], threads: int) -> dict[str, Any]:
    """`vidgan generate ARGV` in this process; the RSS high-water mark of its generation.

    The mark is reset (`/proc/self/clear_refs`) right before the first chunk, so loading the
    checkpoint is left out: what remains is rendering, the writer and the allocator's state.
    """
    import vidgan.sample
    from vidgan.cli import main as cli_main

    torch.set_num_threads(threads)
    inner, out = vidgan.sample.iter_video_chunks, {}

    def measured(*a: Any, **k: Any) -> Any:
        Path("/proc/self/clear_refs").write_text("5")
        out["rss_before_mb"] = _maxrss_mb()
        yield from inner(*a, **k)

    vidgan.sample.iter_video_chunks = measured  # generate imports it at call time
    t0 = time.perf_counter()
    if cli_main(["generate", *argv]) != 0:
        raise SystemExit("vidgan generate failed")
    out.update(seconds=round(time.perf_counter() - t0, 1), rss_peak_mb=_maxrss_mb())
    return {"argv": argv, **out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--official", type=Path, default=None, help="checkout of sihyun-yu/digan")
    p.add_argument("--official-deps", type=Path, default=None, help="folder with omegaconf, einops")
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frames", type=int, default=16, help="frames per timed video (fp32)")
    p.add_argument("--reps", type=int, default=4, help="timings per side (ABBA order)")
    p.add_argument("--bf16", action="store_true", help="also time under bf16 autocast")
    p.add_argument("--bf16-frames", type=int, default=2, help="frames per bf16 timing")
    p.add_argument("--bf16-reps", type=int, default=2)
    p.add_argument("--chunk", type=int, default=16, help="chunk of ours in the memory runs")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="write every row here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--generate",
        nargs=argparse.REMAINDER,
        help="run `vidgan generate ...` (with --chunk) and print the peak RSS of generating",
    )
    args = p.parse_args()
    if args.generate:
        print(json.dumps(generate_memory(args.generate, args.threads)))
        return
    if args.child:
        print(json.dumps(memory_child(json.loads(args.child))))
        return
    torch.set_num_threads(args.threads)
    if args.official is not None and not (args.official / "src" / "training").is_dir():
        raise SystemExit(f"--official {args.official} is not a DIGAN checkout (no src/training).")
    official = (args.official, args.official_deps) if args.official else None
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{platform.machine()} torch {torch.__version__} threads {args.threads} load {load}")
    rows: list[dict[str, Any]] = []
    presets = [s for s in args.presets.split(",") if s]
    if not args.skip_speed:
        for preset in presets:
            rows.append(speed(preset, frames=args.frames, reps=args.reps, bf16=False,
                              official=official))  # fmt: skip
            if args.bf16:
                rows.append(speed(preset, frames=args.bf16_frames, reps=args.bf16_reps,
                                  bf16=True, official=official))  # fmt: skip
    if not args.skip_memory:
        for preset in presets:
            for env in (None, FIXED_MMAP):
                for frames in MEMORY_FRAMES.get(preset, (16, 1024)):
                    rows.append(memory(preset, "ours", frames, args, env))
            if official:
                rows.append(memory(preset, "official", 16, args))
    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load at start {load}, at end {load_end}")
    for row in rows:
        print(json.dumps(row))
    if args.json:
        meta = {"threads": args.threads, "load_start": load, "load_end": load_end}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
