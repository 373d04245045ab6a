"""Official FMR checkpoint import: restricted unpickling, config from args, key/shape tables."""

from __future__ import annotations

import argparse
import json
import pickle
import re

import pytest
import torch
from safetensors.torch import load_file

from vidgan.convert import get_converter
from vidgan.convert.fmr import (
    config_from_checkpoint,
    load_checkpoint_dict,
    load_official_fmr,
    read_official_fmr,
)
from vidgan.errors import CheckpointError
from vidgan.models.fmr import (
    DeltaVideoDiscriminator,
    FMRConfig,
    FMRGenerator,
    ImageDiscriminator,
    PatchVideoDiscriminator,
    build_discriminators,
    discriminator_channels,
)
from vidgan.nn.stylegan2 import channel_table

VIDEO_DS = ("PatchVideoDiscriminator", "VideoDiscriminator", "DeltaVideoDiscriminator")


@pytest.fixture(scope="module")
def fx(parity_dir):
    root = parity_dir / "fmr"
    if not root.is_dir():
        pytest.skip(f"no FMR fixtures in {parity_dir}")
    return {
        "config": json.loads((root / "config.json").read_text()),
        "g": load_file(root / "generator_state_dict.safetensors"),
        "d": load_file(root / "discriminators.safetensors"),
        "io": load_file(root / "io.safetensors"),
    }


def _namespace(fx, video_d: str) -> argparse.Namespace:
    """cfg.py's Namespace as the trainer stores it, with the fixture's settings."""
    kw = fx["config"]["generator_constructor"]["kwargs"]
    fields = dict(fx["config"]["args_namespace_fields_that_matter"])
    fields.update(
        image_size=kw["size"],
        dim_z_content=kw["dim_z_content"],
        dim_z_motion=kw["dim_z_motion"],
        video_length=kw["video_length"],
        freq_val=",".join(str(f) for f in kw["freqs"]),
        video_discriminator=video_d,
        data_path="/data/ucf",
        DiffAugment=True,
        r1=10.0,
        local_rank=0,
    )
    return argparse.Namespace(**fields)


def _d_state(fx, name):
    prefix = name + "."
    return {k[len(prefix) :]: v for k, v in fx["d"].items() if k.startswith(prefix)}


def _adam_state(params):
    opt = torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))
    sum(p.sum() for p in params).backward()
    opt.step()
    return opt.state_dict()


def _official_checkpoint(fx, path, video_d="PatchVideoDiscriminator", g_only=False):
    g = fx["g"]
    ckpt = {"g_ema": g, "args": _namespace(fx, video_d), "iter": 1234}
    if not g_only:
        ckpt.update(
            g=g,
            img_d=_d_state(fx, "ImageDiscriminator"),
            vid_d=_d_state(fx, video_d),
            g_optim=_adam_state([torch.zeros(3, requires_grad=True)]),
            img_d_optim=_adam_state([torch.zeros(2, 2, requires_grad=True)]),
            vid_d_optim=_adam_state([torch.zeros(4, requires_grad=True)]),
        )
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("video_d", VIDEO_DS)
def test_official_checkpoint_round_trip(fx, tmp_path, video_d):
    path = _official_checkpoint(fx, tmp_path / "300000.pt", video_d)
    cfg, states = read_official_fmr(path)
    table = fx["config"]["channel_table_override"]
    assert cfg.image_size == fx["config"]["generator_constructor"]["kwargs"]["size"]
    assert cfg.freq_bands == tuple(
        float(f) for f in fx["config"]["generator_constructor"]["kwargs"]["freqs"]
    )
    assert cfg.channels == {int(r): c for r, c in table["generator_table"].items()}
    assert cfg.d_channels == {int(r): c for r, c in table["discriminator_table"].items()}
    assert set(states) == {"g_ema", "g", "img_d", "vid_d"}
    ds = build_discriminators(cfg)
    ds["image"].load_state_dict(states["img_d"], strict=True)
    ds["video"].load_state_dict(states["vid_d"], strict=True)
    assert type(ds["video"]).__name__ == video_d
    if video_d == "PatchVideoDiscriminator":
        G = load_official_fmr(path)
        io = fx["io"]
        with torch.no_grad():
            video = G(
                io["in.z_c"],
                io["in.z_m"],
                G.frame_times(16),
                noise=[io[f"in.noise_base.{k}"] for k in range(G.renderer.num_layers)],
            )
        torch.testing.assert_close(video, io["out.a.video"], atol=1e-4, rtol=1e-4)


def test_generator_only_file_and_registry(fx, tmp_path):
    path = _official_checkpoint(fx, tmp_path / "G_ema_005000.pt", g_only=True)
    cfg, states = read_official_fmr(path)
    assert set(states) == {"g_ema"}
    conv = get_converter("fmr")(path)
    assert conv.model == "fmr" and conv.config == cfg and conv.notes["iter"] == 1234
    json.dumps(conv.notes)  # notes go into the converted file's JSON provenance
    G = FMRGenerator(conv.config)
    G.load_state_dict(conv.state_dict, strict=True)
    for k, v in fx["g"].items():
        assert torch.equal(G.state_dict()[k], v)
    with pytest.raises(CheckpointError, match="no 'g' generator"):
        load_official_fmr(path, ema=False)
    # a DataParallel-style "module." prefix is stripped
    dp = tmp_path / "dp.pt"
    torch.save(
        {
            "g_ema": {f"module.{k}": v for k, v in fx["g"].items()},
            "args": _namespace(fx, "PatchVideoDiscriminator"),
        },
        dp,
    )
    assert read_official_fmr(dp)[1]["g_ema"].keys() == fx["g"].keys()


class _Payload:
    """Unpickling this object opens (creates) a file: what a malicious checkpoint could do."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_nothing_runs(fx, tmp_path):
    target = tmp_path / "pwned.txt"
    bad = tmp_path / "bad.pt"
    torch.save({"g_ema": fx["g"], "args": _Payload(target), "iter": 1}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        read_official_fmr(bad)
    assert not target.exists()
    raw = tmp_path / "bad.pkl"  # a plain (non-zip) pickle goes through torch's weights-only path
    raw.write_bytes(pickle.dumps({"g_ema": {}, "x": _Payload(target)}, protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint_dict(raw)
    assert not target.exists()
    # the payload is real: an unrestricted unpickler would have run it
    other = tmp_path / "proof.txt"
    pickle.loads(pickle.dumps(_Payload(other)))
    assert other.exists()


def test_bad_files_give_one_sentence(tmp_path, fx):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_official_fmr(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        read_official_fmr(junk)
    torch.save({"g": fx["g"]}, tmp_path / "nog.pt")
    with pytest.raises(CheckpointError, match="no 'g_ema'"):
        read_official_fmr(tmp_path / "nog.pt")
    wrong = dict(fx["g"])
    wrong["LFF.0.ffm.linear.bias"] = torch.zeros(7)
    torch.save(
        {"g_ema": wrong, "args": _namespace(fx, "PatchVideoDiscriminator")}, tmp_path / "w.pt"
    )
    with pytest.raises(CheckpointError, match="shape"):
        read_official_fmr(tmp_path / "w.pt")


_GEN = re.compile(r"VideoGenerator\((\d+), (\d+), (\d+), (\d+), freqs=\[([\d, ]+)\]\)")
_DISC = re.compile(r"(\w+Discriminator)\(size=(\d+)\)")


def test_official_widths_map_key_for_key(fx):
    """Official-width models (from config.json) match ours key-for-key and shape-for-shape."""
    entries = {k: v for k, v in fx["config"]["official_width_key_shapes"].items() if k != "note"}
    assert entries
    for name, shapes in entries.items():
        want = {k: tuple(s) for k, s in shapes.items()}
        if m := _GEN.match(name):
            size, dc, dm, length = (int(x) for x in m.groups()[:4])
            freqs = ",".join(f.strip() for f in m.group(5).split(","))
            args = argparse.Namespace(
                image_size=size,
                dim_z_content=dc,
                dim_z_motion=dm,
                video_length=length,
                freq_val=freqs,
            )
            meta = {k: torch.empty(s, device="meta") for k, s in want.items()}
            cfg = config_from_checkpoint({"g_ema": meta, "args": args})
            assert cfg.channels is None  # the official table, no override needed
            with torch.device("meta"):
                ours = FMRGenerator(cfg)
        else:
            m = _DISC.match(name)
            assert m, name
            cls = {
                "ImageDiscriminator": ImageDiscriminator,
                "PatchVideoDiscriminator": PatchVideoDiscriminator,
                "DeltaVideoDiscriminator": DeltaVideoDiscriminator,
            }[m.group(1)]
            cfg = FMRConfig()
            with torch.device("meta"):
                ours = cls(size=int(m.group(2)), channels=discriminator_channels(cfg, cls))
        got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
        assert got == want, name
    assert channel_table(2)[256] == 128
