"""`vidgan convert`: an official DIGAN / FMR / G3AN checkpoint (or a vidgan training run) ->
a vidgan model file."""

from __future__ import annotations

import argparse
from pathlib import Path

from vidgan.commands import COMMANDS, Command

DESCRIPTION = """\
Read an official checkpoint without running any code stored in it (restricted unpickling or
weights_only loading), map its keys with an explicit table, check every name and shape against
our model built from the converted config, and write a vidgan model file (.safetensors with the
config inside) that every vidgan command reads.

`--from run` exports the G_ema of a vidgan training run (its newest checkpoint, or the
checkpoint folder given) into one small file to share.

Examples:
  vidgan convert --from run runs/fmr-toy fmr_toy.safetensors
  vidgan convert --from fmr checkpoint/300000.pt fmr_paper.safetensors
  vidgan convert --from digan network-snapshot-004000.pkl digan_ucf.safetensors
  vidgan convert --from g3an G_uvanemo.pth g3an_uva.safetensors
"""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, help="digan|fmr|g3an|run")
    p.add_argument("src", help="official checkpoint file, or a run folder with --from run")
    p.add_argument("dst", help="vidgan model file to write (.safetensors)")
    p.add_argument("--force", action="store_true", help="overwrite DST if it exists")


def run(args: argparse.Namespace) -> int:
    from vidgan.checkpoint import build_generator, load_run_generator, save_model_file
    from vidgan.convert import get_converter
    from vidgan.errors import VidganError

    src, dst = Path(args.src), Path(args.dst)
    if dst.suffix != ".safetensors":
        raise VidganError(f"{dst}: the output must end in .safetensors.")
    if args.source == "run":
        loaded = load_run_generator(src)
        G, spec, cfg, prov = loaded.generator, loaded.spec, loaded.config, loaded.provenance
    else:
        if not src.is_file():
            raise VidganError(f"{src} does not exist or is not a file.")
        conv = get_converter(args.source)(src)
        G, spec, cfg = build_generator(conv.model, conv.config, conv.state_dict, source=str(src))
        prov = {"converted_from": args.source, "source": str(src), **conv.notes}
    save_model_file(
        dst,
        model_name=spec.name,
        config=cfg,
        generator=G.state_dict(),
        provenance=prov,
        overwrite=args.force,
    )
    n = sum(p.numel() for p in G.parameters())
    print(f"wrote {dst} ({spec.name}, {n / 1e6:.2f}M generator parameters)")
    return 0


COMMANDS.add(
    "convert",
    Command(
        help="convert an official checkpoint into a vidgan model file",
        description=DESCRIPTION,
        configure=configure,
        run=run,
    ),
)
