"""FMR speed: G forward frames/s and seconds per training step, ours vs the official code.

    .venv/bin/python benchmarks/bench_fmr.py --skip-256                 # ours only, toy preset
    .venv/bin/python benchmarks/bench_fmr.py --official /path/to/checkout \
        --configs toy,256,256-narrow                                    # ours vs the release

G forward renders `videos` videos of 16 frames in eval mode under no_grad; the training step is
one full step (G step, image-D and video-D steps, EMA) at the same batch for both sides, without
the lazy R1 step (1 step in 16 on both sides). With `--official PATH` (a plain clone of
github:hse1032/Frequency-based-Motion-Representation-for-Video-GANs) the release is measured in
the same run, each timing alternating ours / official so that shared load affects both alike.
Its CUDA extensions are never built: `torch.utils.cpp_extension.load` is stubbed while `op/` is
imported, so the release's own CPU branches run (plain leaky relu, `upfirdn2d_native`), and its
hard-coded `.cuda()` calls return the CPU tensor. Reduced channel tables (the toy preset's) are
applied to the release's per-class channel dicts right after it builds them (see `_patch_tables`);
nothing else in its code changes. One deliberate difference: the release's trainer always asks
its generator for 2-frame fakes (`delta_t=True`), also with the patch video D; the bench asks for
16-frame fakes, the clips our recipe renders, so both sides do the same work.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib
import json
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timing import endless, interleaved

from vidgan.config import from_dict, load_preset
from vidgan.models.registry import get_model

FRAMES = 16


# --- the official code, loaded for CPU ---------------------------------------------------------
@contextlib.contextmanager
def _cpu_official() -> Iterator[None]:
    """While the release runs: its `.cuda()` calls are identities (tensors stay on the CPU)."""
    orig_t, orig_m = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = orig_t, orig_m  # type: ignore[method-assign]


def _patch_tables(tree: ast.Module, hook: str) -> ast.Module:
    """After every `channels = {...}` / `self.channels = {...}`: `x = hook(x, class name)`."""

    class Patch(ast.NodeTransformer):
        cls = ""

        def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
            prev, self.cls = self.cls, node.name
            self.generic_visit(node)
            self.cls = prev
            return node

        def visit_Assign(self, node: ast.Assign) -> Any:
            tgt = node.targets[0]
            name = tgt.attr if isinstance(tgt, ast.Attribute) else getattr(tgt, "id", "")
            if name != "channels" or not isinstance(node.value, ast.Dict):
                return node
            load = copy.deepcopy(tgt)
            load.ctx = ast.Load()
            call = ast.Call(ast.Name(hook, ast.Load()), [load, ast.Constant(self.cls)], [])
            return [node, ast.Assign([copy.deepcopy(tgt)], call)]

    return ast.fix_missing_locations(Patch().visit(tree))


# channel-table overrides applied to the release's models when they are built: {"G": .., "D": ..}
TABLES: dict[str, dict[int, int]] = {}


def load_official(root: Path) -> types.SimpleNamespace:
    """Import the release from a checkout; its channel dicts are updated from `TABLES`."""
    import torch.utils.cpp_extension as ext

    if not (root / "models" / "generator.py").is_file():
        raise SystemExit(f"--official {root}: no models/generator.py there (not an FMR checkout).")
    sys.path.insert(0, str(root))
    orig_load = ext.load
    ext.load = lambda *a, **k: None  # the CUDA kernels; the CPU branches never call them
    try:
        importlib.import_module("op")
    finally:
        ext.load = orig_load
    importlib.import_module("models.block")

    def table(ch: dict[int, int], cls: str) -> dict[int, int]:
        over = TABLES.get("G" if cls == "Generator" else "D") or {}
        return {**ch, **{int(k): int(v) for k, v in over.items()}}

    mods = {}
    for name in ("generator", "discriminator"):
        path = root / "models" / f"{name}.py"
        tree = _patch_tables(ast.parse(path.read_text(), str(path)), "_bench_channels")
        mod = types.ModuleType(f"models.{name}")
        mod.__file__ = str(path)
        mod.__dict__["_bench_channels"] = table
        sys.modules[mod.__name__] = mod
        exec(compile(tree, str(path), "exec"), mod.__dict__)
        mods[name] = mod
    trainers = importlib.import_module("trainers")
    aug = importlib.import_module("DiffAugment_pytorch")
    return types.SimpleNamespace(**mods, trainers=trainers, aug=aug)


def _nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


class OfficialSide:
    """The release's G, image D and video D for one of our FMR configs, and its training step."""

    def __init__(self, off: types.SimpleNamespace, cfg: Any, train: Any, batch: int) -> None:
        with _cpu_official():
            kw = dict(n_motion_linear=cfg.n_motion_linear, n_mlp_m=cfg.n_mlp_m, n_mlp_c=cfg.n_mlp)
            freqs = [int(f) for f in cfg.freq_bands]
            self.G = off.generator.VideoGenerator(
                cfg.image_size, cfg.dim_z_content, cfg.dim_z_motion, cfg.video_length,
                freqs=freqs, **kw,
            )  # fmt: skip
            self.G_ema = copy.deepcopy(self.G).eval()
            img_cls = {"image": "ImageDiscriminator", "patch_image": "PatchImageDiscriminator"}
            vid_cls = {
                "patch_video": "PatchVideoDiscriminator",
                "video": "VideoDiscriminator",
                "delta": "DeltaVideoDiscriminator",
            }
            self.use_delta = cfg.video_discriminator == "delta"
            self.args = argparse.Namespace(
                video_batch=batch, image_batch=batch, d_reg_every=16, r1=train.r1_gamma or 10.0,
                DiffAugment=bool(train.augment), mixing_prob=0.0, ema_kimg=train.ema_kimg or 10.0,
                ngpus=1, distributed=False, local_rank=0, VD_resize_ratio=cfg.vd_resize_ratio,
            )  # fmt: skip
            d_mod = off.discriminator
            self.D_img = getattr(d_mod, img_cls[cfg.image_discriminator])(
                size=cfg.image_size, args=self.args
            )
            self.D_vid = getattr(d_mod, vid_cls[cfg.video_discriminator])(
                size=cfg.video_d_size, args=self.args
            )
            adam = dict(lr=0.002, betas=(0.0, 0.99))
            self.opt_G = torch.optim.Adam(self.G.parameters(), **adam)
            self.opt_I = torch.optim.Adam(self.D_img.parameters(), **adam)
            self.opt_V = torch.optim.Adam(self.D_vid.parameters(), **adam)
            self._tmp = tempfile.TemporaryDirectory()
            self.tr = off.trainers.Trainer(
                None, 100, 1, self._tmp.name, use_cuda=False, use_delta=self.use_delta,
                args=self.args,
            )  # fmt: skip
        self.off, self.cfg, self.batch = off, cfg, batch
        self.accumulate = off.trainers.accumulate
        self.accum = 0.5 ** (batch / (self.args.ema_kimg * 1000))

    def forward(self, videos: int, frames: int) -> None:
        with _cpu_official(), torch.no_grad():
            self.G_ema.sample_videos(videos, video_len=frames)

    def step(self) -> None:
        b, s, cfg = self.batch, self.cfg.image_size, self.cfg
        real_v = torch.rand(b, 3, 2 if self.use_delta else FRAMES, s, s) * 2 - 1
        real_i = torch.rand(b, 3, s, s) * 2 - 1
        real_d = torch.rand(b, 1)
        with _cpu_official():
            self.G.train(), self.D_img.train(), self.D_vid.train()
            fake_v, fake_i, fake_d = self.G(b, b, mixing_prob=0.0, delta_t=self.use_delta)
            k = round(1 / cfg.vd_resize_ratio)
            if k > 1:
                real_v = F.avg_pool3d(real_v, (1, k, k))
                fake_v = F.avg_pool3d(fake_v, (1, k, k))
            if self.args.DiffAugment:
                pol, aug = self.tr.DiffAug_policy, self.off.aug
                real_i, fake_i = aug.DiffAugment(real_i, pol), aug.DiffAugment(fake_i, pol)
                real_v, fake_v = aug.DiffAugment_vid(real_v, pol), aug.DiffAugment_vid(fake_v, pol)
            tr = self.tr
            tr.train_discriminator(self.D_img, real_i, fake_i, self.opt_I)
            tr.train_discriminator(self.D_vid, real_v, fake_v, self.opt_V, delta=[real_d, fake_d])
            tr.train_generator(self.D_img, self.D_vid, fake_i, fake_v, self.opt_G, delta=fake_d)
            self.accumulate(self.G_ema, self.G, self.accum)
            tr.cur_iter += 1


# --- ours --------------------------------------------------------------------------------------
class OurSide:
    """Our generator and a `Trainer` at the same configuration and batch."""

    def __init__(self, preset: str, cfg: Any, batch: int, amp: bool, overrides: list[str]):
        from vidgan.train.config import resolve_run_config
        from vidgan.train.loop import Trainer

        run = resolve_run_config(
            None,
            preset=preset,
            overrides=[
                f"train.amp={str(amp).lower()}",
                f"train.batch={batch}",
                "train.metrics=",
                "train.best_metric=",
                "train.device=cpu",
                "train.workers=0",
                *[f"model.{o}" for o in overrides],
            ],
        )
        self.run = run
        size = run.model.image_size
        data = [
            {"video": torch.rand(FRAMES, 3, size, size) * 2 - 1, "label": -1, "index": i}
            for i in range(batch * 2)
        ]
        self._tmp = tempfile.TemporaryDirectory()
        self.tr = Trainer(run, outdir=self._tmp.name, dataset=data, profile=1, progress=False)
        self.batches = endless(self.tr.batches)
        self.G = get_model("fmr").build_generator(cfg).eval()

    def forward(self, videos: int, frames: int) -> None:
        lat = self.G.sample_latents(videos)
        with torch.no_grad():
            self.G.generate(lat, self.G.frame_times(frames))

    def step(self) -> None:
        self.tr.train_step(next(self.batches))


# --- configurations ------------------------------------------------------------------------------
CONFIGS = {
    # name: preset, model overrides, G forward (videos, frames), training batch
    "toy": ("fmr-toy-32", [], (8, 16), 8),
    # run.sh widths at 256 px: G forward on one 4-frame video (about 170 GFLOP per frame)
    "256": ("fmr-paper-256", [], (1, 4), 1),
    # 256 px with every width a quarter of run.sh's: a training step fits in a minute on 1 core
    "256-narrow": (
        "fmr-paper-256",
        [
            'channels={"4": 128, "8": 128, "16": 128, "32": 128, "64": 128, "128": 64, "256": 32}',
            'd_channels={"4": 128, "8": 128, "16": 128, "32": 128, "64": 64, "128": 32, "256": 32}',
        ],
        (1, 4),
        1,
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", type=Path, help="checkout of the official FMR code")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--configs", default="toy,256", help="comma list of: " + ",".join(CONFIGS))
    p.add_argument("--skip-256", action="store_true", help="same as --configs toy")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--bf16-256", action="store_true", help="also time bf16 at 256 px (slow)")
    p.add_argument("--no-step", action="store_true", help="G forward only")
    p.add_argument("--step-256", action="store_true", help="also time the 256 px training step")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--step-repeats", type=int, help="timed steps per side (default repeats - 1)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = get_model("fmr")
    off = None
    rows: list[dict[str, Any]] = []
    names = ["toy"] if args.skip_256 else args.configs.split(",")
    for name in names:
        preset, overrides, (videos, frames), batch = CONFIGS[name]
        raw = load_preset(preset)
        for o in overrides:
            k, v = o.split("=", 1)
            raw["model"][k] = json.loads(v)
        cfg = from_dict(spec.config_cls, raw["model"])
        if args.official is not None and off is None:
            off = load_official(args.official)
        TABLES.update(G=dict(cfg.channels or {}), D=dict(cfg.d_channels or {}))
        for prec in args.precisions.split(","):
            amp = prec == "bf16"
            if amp and name.startswith("256") and not args.bf16_256:
                print(f"{name} {prec}: skipped (pass --bf16-256)", flush=True)
                continue
            torch.manual_seed(0)
            ours = OurSide(preset, cfg, batch, amp, overrides)
            sides: dict[str, Any] = {"ours": ours}
            if off is not None:
                sides["official"] = OfficialSide(off, cfg, ours.run.train, batch)
                o = sides["official"]
                pairs = {"G": (ours.G, o.G), "image D": (ours.tr.Ds["image"], o.D_img)}
                pairs["video D"] = (ours.tr.Ds["video"], o.D_vid)
                for what, (a, b) in pairs.items():  # the same architecture on both sides
                    if _nparams(a) != _nparams(b):
                        raise SystemExit(
                            f"{name}: {what} sizes differ (ours {_nparams(a)}, "
                            f"official {_nparams(b)})."
                        )
            fwd = interleaved(
                {k: (lambda s=s, v=videos, f=frames: s.forward(v, f)) for k, s in sides.items()},
                args.repeats,
                amp,
            )
            label = preset if name in ("toy", "256") else f"{preset} ({name})"
            row = {"config": label, "precision": prec, "videos": videos, "frames": frames}
            row["batch"] = batch
            for k, v in fwd.items():
                row[f"fwd_fps_{k}"] = videos * frames / v
            print(json.dumps(row), flush=True)
            if not args.no_step and (name != "256" or args.step_256):
                n = args.step_repeats or max(2, args.repeats - 1)
                st = interleaved({k: s.step for k, s in sides.items()}, n, amp)
                for k, v in st.items():
                    row[f"step_s_{k}"] = v
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{args.threads} thread(s), torch {torch.__version__}")
    print(
        "| config | precision | G fwd frames/s ours | official | x | step s ours | official | x |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        fo, ff = r.get("fwd_fps_ours"), r.get("fwd_fps_official")
        so, sf = r.get("step_s_ours"), r.get("step_s_official")

        def f(v: float | None, d: int = 1) -> str:
            return "-" if v is None else f"{v:.{d}f}"

        def g(v: float | None) -> str:
            return "-" if v is None else f"{v:.3g}"

        print(
            f"| {r['config']} | {r['precision']} | {g(fo)} | {g(ff)} | "
            f"{f(fo / ff if fo and ff else None, 2)} | {f(so, 2)} | {f(sf, 2)} | "
            f"{f(sf / so if so and sf else None, 2)} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
