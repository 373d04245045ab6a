"""G3AN speed: generator forward and training step, ours vs the official code, in one run.

    .venv/bin/python benchmarks/bench_g3an.py                                # ours only
    .venv/bin/python benchmarks/bench_g3an.py --official /path/to/g3an-project --threads 1

Paper configuration (cfg.py defaults with F-SA on, as the released weights): 64x64, 16 frames,
width 64 for G and both Ds. Timed, each call alternating ours / official so that shared load
affects both alike (median of `--repeats` calls after one warm-up call each):

* eval forward: the generator in eval mode under no_grad, batch 1 and batch 8;
* training step at batch 8: for ours `Trainer.train_step` (the real training code: G step,
  D step, EMA bookkeeping; the preset's one render per step, the D step judging the G step's
  fakes as the release does; `--reuse-fakes false` renders new fakes for the D step), for the
  release the body of its `trainer.py` loop (one G forward shared by the D and G steps),
  re-written here from reading it; both with BCE and Adam(2e-4, (0.5, 0.999)) on random real
  clips.

The C heap's policy (`--heap`) matters on VMs where a page fault is dear: `keep` (the default)
keeps freed memory in glibc's heap for both sides, as `vidgan train` does on CPUs
(`vidgan.heap`), which spares both the page faults of every step's fresh activations; `default`
leaves glibc's defaults for both; `shipped` runs each side in a process of its own, as each
ships (ours keeping the heap, the release on glibc's defaults), still alternating the calls.

bf16 (`--precisions bf16`) wraps both sides in CPU autocast; on CPUs without native bf16 that is
10-25x slower than fp32 on both sides, so `--forward-batches 1` keeps such a run short.

`--official PATH` is a plain checkout of github:wyhsirius/g3an-project (only `model/` is
imported; it needs nothing but torch). Its spectral-norm vectors start random, so a fresh model
explodes in eval mode; both sides are power-iterated first (a few train-mode forwards under
no_grad) so that timings are taken on finite values.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from timing import add_heap_flag, amp_context, endless, interleaved

from vidgan.heap import keep_freed_memory
from vidgan.models.g3an import G3ANConfig, G3ANGenerator

FRAMES = 16
SIZE = 64
PRESET = "g3an-paper-64"


def _nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


class OfficialSide:
    """The release's G, video D and image D at `cfg`, and its training step (trainer.py)."""

    def __init__(self, root: Path, cfg: G3ANConfig, batch: int) -> None:
        if not (root / "model" / "networks.py").is_file():
            raise SystemExit(f"--official {root}: no model/networks.py (not a G3AN checkout).")
        sys.path.insert(0, str(root))
        nets = importlib.import_module("model.networks")
        self.G = nets.Generator(cfg.c_a, cfg.c_m, cfg.ch, cfg.mode, cfg.use_attention)
        self.VD = nets.VideoDiscriminator(cfg.video_d_ch)
        self.ID = nets.ImageDiscriminator(cfg.image_d_ch)
        self.cfg, self.batch = cfg, batch
        with torch.no_grad():  # converge the random u, v (see the module docstring)
            for _ in range(5):
                vid = self.G(*self._codes(2))
                self.VD(vid)
                self.ID(vid[:, :, 0])
        adam = {"lr": 2e-4, "betas": (0.5, 0.999)}
        self.opt_G = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_VD = torch.optim.Adam(self.VD.parameters(), **adam)
        self.opt_ID = torch.optim.Adam(self.ID.parameters(), **adam)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.G_eval = self.G  # the release samples with G.eval() on the trained G

    def _codes(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        t0 = (FRAMES - 12) // 4
        return torch.randn(b, self.cfg.c_a, 1, 1, 1), torch.randn(b, self.cfg.c_m, t0, 1, 1)

    def forward(self, videos: int) -> None:
        self.G.eval()
        with torch.no_grad():
            self.G(*self._codes(videos))

    def step(self) -> None:
        b = self.batch
        self.G.train(), self.VD.train(), self.ID.train()
        real_vid = torch.rand(b, 3, FRAMES, SIZE, SIZE) * 2 - 1
        k = int(torch.randint(FRAMES, ()))
        real_img = real_vid[:, :, k]
        self.opt_VD.zero_grad(), self.opt_ID.zero_grad()
        vd_real, id_real = self.VD(real_vid), self.ID(real_img)
        fake_vid = self.G(*self._codes(b))
        fake_img = fake_vid[:, :, int(torch.randint(FRAMES, ()))]
        vd_fake, id_fake = self.VD(fake_vid.detach()), self.ID(fake_img.detach())
        ones, zeros = torch.ones_like(vd_real), torch.zeros_like(vd_fake)
        err_vd = self.bce(vd_real, ones) + self.bce(vd_fake, zeros)
        err_id = self.bce(id_real, ones) + self.bce(id_fake, zeros)
        err_vd.backward()
        self.opt_VD.step()
        err_id.backward()
        self.opt_ID.step()
        self.opt_G.zero_grad()
        err_g = self.bce(self.VD(fake_vid), ones) + self.bce(self.ID(fake_img), ones)
        err_g.backward()
        self.opt_G.step()


class OurSide:
    """Our eval generator and a `Trainer` at the paper configuration and batch."""

    def __init__(
        self, batch: int, amp: bool, reuse_fakes: str = "preset", keep_heap: bool = True
    ) -> None:
        from vidgan.train.config import resolve_run_config
        from vidgan.train.loop import Trainer

        run = resolve_run_config(
            None,
            preset=PRESET,
            overrides=[
                f"train.amp={str(amp).lower()}",
                f"train.batch={batch}",
                "train.metrics=",
                "train.best_metric=",
                "train.device=cpu",
                "train.workers=0",
                "data.stride=1",
                f"train.keep_heap={str(keep_heap).lower()}",
            ]
            + ([] if reuse_fakes == "preset" else [f"train.reuse_fakes={reuse_fakes}"]),
        )
        data = [
            {"video": torch.rand(FRAMES, 3, SIZE, SIZE) * 2 - 1, "label": -1, "index": i}
            for i in range(batch * 2)
        ]
        self._tmp = tempfile.TemporaryDirectory()
        self.tr = Trainer(run, outdir=self._tmp.name, dataset=data, profile=1, progress=False)
        self.batches = endless(self.tr.batches)
        self.cfg = run.model
        self.G = G3ANGenerator(run.model).eval()

    def forward(self, videos: int) -> None:
        lat = self.G.sample_latents(videos, n_frames=FRAMES)
        with torch.no_grad():
            self.G.generate(lat, self.G.frame_times(FRAMES))

    def step(self) -> None:
        self.tr.train_step(next(self.batches))


def _sizes(G: torch.nn.Module, video_d: torch.nn.Module, image_d: torch.nn.Module) -> dict:
    return {"G": _nparams(G), "video D": _nparams(video_d), "image D": _nparams(image_d)}


def _build(kind: str, args: argparse.Namespace, amp: bool, keep_heap: bool) -> Any:
    """Our side or the release's, with `.sizes` (parameters of G, video D, image D)."""
    torch.manual_seed(0)
    if kind == "ours":
        ours = OurSide(args.batch, amp, args.reuse_fakes, keep_heap=keep_heap)
        ours.sizes = _sizes(ours.G, ours.tr.Ds["video"], ours.tr.Ds["image"])
        return ours
    from vidgan.train.config import resolve_run_config

    cfg = resolve_run_config(None, preset=PRESET, overrides=[]).model
    off = OfficialSide(args.official, cfg, args.batch)
    off.sizes = _sizes(off.G, off.VD, off.ID)
    return off


def _serve(conn: Any, kind: str, args: argparse.Namespace, amp: bool) -> None:
    """Child process of `_Remote`: build one side, then run the calls the parent sends."""
    torch.set_num_threads(args.threads)
    side = _build(kind, args, amp, keep_heap=kind == "ours")  # the release: glibc's defaults
    conn.send(side.sizes)
    while (msg := conn.recv()) is not None:
        with amp_context(amp):
            if msg:  # a number of videos: one G forward
                side.forward(msg)
            else:
                side.step()
        conn.send(True)


class _Remote:
    """One side in a process of its own, so that each has its own C heap policy (`--heap
    shipped`); the parent still alternates the calls, and times each round trip."""

    def __init__(self, kind: str, args: argparse.Namespace, amp: bool) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, kind, args, amp), daemon=True)
        self.proc.start()
        self.sizes = self.conn.recv()

    def forward(self, videos: int) -> None:
        self.conn.send(videos)
        self.conn.recv()

    def step(self) -> None:
        self.conn.send(0)
        self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join()


def _sides(args: argparse.Namespace, amp: bool) -> dict[str, Any]:
    kinds = ["ours"] + (["official"] if args.official is not None else [])
    if args.heap == "shipped":
        return {k: _Remote(k, args, amp) for k in kinds}
    return {k: _build(k, args, amp, keep_heap=args.heap == "keep") for k in kinds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", type=Path, help="checkout of github:wyhsirius/g3an-project")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=8, help="training batch and 2nd forward batch")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--bf16-step", action="store_true", help="also time the bf16 training step")
    p.add_argument("--no-step", action="store_true", help="G forward only")
    p.add_argument(
        "--reuse-fakes",
        choices=["preset", "true", "false"],
        default="preset",
        help="our D step judges G's fakes (preset: yes, as the release)",
    )
    add_heap_flag(p, "`vidgan train`")
    p.add_argument("--forward-batches", help="forward batches (default 1,BATCH; 0: none)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.heap == "keep":
        keep_freed_memory()  # process-wide: the official side runs with it too
    if args.heap == "shipped" and args.official is None:
        raise SystemExit("--heap shipped compares with the release: give --official.")
    rows: list[dict[str, Any]] = []
    for prec in args.precisions.split(","):
        amp = prec == "bf16"
        sides = _sides(args, amp)
        if "official" in sides:
            for what, n_ours in sides["ours"].sizes.items():  # the same architecture on both
                if n_ours != sides["official"].sizes[what]:
                    raise SystemExit(
                        f"{what} sizes differ (ours {n_ours}, "
                        f"official {sides['official'].sizes[what]})."
                    )
        print(f"G parameters: {sides['ours'].sizes['G'] / 1e6:.1f}M", flush=True)
        batches = args.forward_batches or f"1,{args.batch}"
        for videos in [int(v) for v in batches.split(",") if v and int(v) > 0]:  # 0: none
            fwd = interleaved(
                {k: (lambda s=s, n=videos: s.forward(n)) for k, s in sides.items()},
                args.repeats,
                amp,
            )
            row = {"what": f"G eval forward, batch {videos}", "precision": prec}
            row["load"] = os.getloadavg()[0]
            row.update({f"s_{k}": v for k, v in fwd.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
        if not args.no_step and (not amp or args.bf16_step):
            st = interleaved({k: s.step for k, s in sides.items()}, args.repeats, amp)
            row = {"what": f"training step, batch {args.batch}", "precision": prec}
            row["load"] = os.getloadavg()[0]
            row.update({f"s_{k}": v for k, v in st.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
        for side in sides.values():
            if isinstance(side, _Remote):
                side.close()
    print(f"\n{args.threads} thread(s), heap {args.heap}, torch {torch.__version__}")
    print("| what | precision | ours (s) | official (s) | official / ours | load |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        so, sf = r.get("s_ours"), r.get("s_official")
        ratio = f"{sf / so:.2f}" if so and sf else "-"
        sf_s = f"{sf:.3f}" if sf else "-"
        load = f"{r['load']:.1f}"
        print(f"| {r['what']} | {r['precision']} | {so:.3f} | {sf_s} | {ratio} | {load} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
