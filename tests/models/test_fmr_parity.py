"""FMR parity with the official implementation, driven only by the fixture files.

Every input, weight, band edge and expected output is read from $VIDGAN_FIXTURES/fmr
(config.json + *.safetensors); tolerances are the fixture README's (videos 1e-4, mapping and
motion intermediates 2e-5, discriminators 1e-5, masks and times exact).
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vidgan.models.fmr import (
    FREQ_MAX,
    DeltaVideoDiscriminator,
    FMRConfig,
    FMRGenerator,
    ImageDiscriminator,
    PatchImageDiscriminator,
    PatchVideoDiscriminator,
    VideoDiscriminator,
)
from vidgan.nn.stylegan2 import channel_table

VIDEO_TOL = {"atol": 1e-4, "rtol": 1e-4}
INTER_TOL = {"atol": 2e-5, "rtol": 0}
D_TOL = {"atol": 1e-5, "rtol": 0}
D_CLASSES = {
    "ImageDiscriminator": ImageDiscriminator,
    "PatchImageDiscriminator": PatchImageDiscriminator,
    "VideoDiscriminator": VideoDiscriminator,
    "PatchVideoDiscriminator": PatchVideoDiscriminator,
    "DeltaVideoDiscriminator": DeltaVideoDiscriminator,
}


@pytest.fixture(scope="module")
def fx(parity_dir):
    root = parity_dir / "fmr"
    if not root.is_dir():
        pytest.skip(f"no FMR fixtures in {parity_dir}")
    cfg_json = json.loads((root / "config.json").read_text())
    return {
        "config": cfg_json,
        "io": load_file(root / "io.safetensors"),
        "g": load_file(root / "generator_state_dict.safetensors"),
        "d": load_file(root / "discriminators.safetensors"),
        "dio": load_file(root / "discriminators_io.safetensors"),
    }


@pytest.fixture(scope="module")
def G(fx):
    kw = fx["config"]["generator_constructor"]["kwargs"]
    table = fx["config"]["channel_table_override"]
    cfg = FMRConfig(
        image_size=kw["size"],
        dim_z_content=kw["dim_z_content"],
        dim_z_motion=kw["dim_z_motion"],
        video_length=kw["video_length"],
        n_motion_linear=kw["n_motion_linear"],
        n_mlp_m=kw["n_mlp_m"],
        n_mlp=kw["n_mlp_c"],
        freq_bands=tuple(kw["freqs"]),
        channels={int(r): c for r, c in table["generator_table"].items()},
        vd_resize_ratio=1.0,
    )
    g = FMRGenerator(cfg)
    g.load_state_dict(fx["g"], strict=True)
    return g.eval()


def _noise(io, prefix, n=None):
    n = n if n is not None else sum(1 for k in io if k.startswith(prefix))
    return [io[f"{prefix}{k}"] for k in range(n)]


def _rows(x: torch.Tensor) -> torch.Tensor:
    """[B, T, D] -> [B*T, D] (the reference's row b*T + k)."""
    return x.reshape(-1, x.shape[-1])


def _release_edit(G, edges, nonzeros=None, z_ms=None):
    """The release's `sample_videos_from_zs_freqs_zeros(freqs=edges, nonzeros, z_m list)`.

    Its sinusoids at or above the last edge belong to no band (zero style): in our terms that
    open-ended top band is not kept.
    """
    edges = [float(e) for e in edges]
    keep = list(range(len(edges))) if nonzeros is None else [int(k) for k in nonzeros]
    motions = {} if z_ms is None else dict(enumerate(z_ms))
    return G.edit(edges=edges, keep=keep, band_motions=motions)


@torch.no_grad()
def test_case_a_styles_and_intermediates(fx, G):
    io = fx["io"]
    t = G.frame_times(io["out.a.coords"].shape[1])
    assert torch.equal(t.expand_as(io["out.a.coords"]), io["out.a.coords"])
    z_c, z_m = io["in.z_c"], io["in.z_m"]
    b, n_t = z_c.shape[0], t.shape[0]
    s = G.motion_styles(z_m)
    torch.testing.assert_close(s, io["out.a.motion_style"], **INTER_TOL)
    feats = G.band_features(t.expand(b, -1))
    for i, layers in enumerate(G.motion_linear):
        torch.testing.assert_close(_rows(feats[i]), io[f"out.a.lff.{i}"], **INTER_TOL)
        hidden = layers[0](feats[i], layers[0].conv.modulation(s)[:, None, :])
        torch.testing.assert_close(_rows(hidden), io[f"out.a.motion_hidden.{i}"], **INTER_TOL)
    terms = G.motion_terms(z_m, t)
    for i, m in enumerate(terms):
        torch.testing.assert_close(_rows(m), io[f"out.a.ff.{i}"], **INTER_TOL)
    w_c = G.mapping(z_c)[:, None].expand(b, n_t, -1)
    torch.testing.assert_close(_rows(w_c), io["out.a.w_content"], **INTER_TOL)
    w = G.w_of_t(z_c, z_m, t)
    torch.testing.assert_close(_rows(w), io["out.a.w"], **INTER_TOL)
    # the renderer alone, fed the reference w(t), reproduces the reference video
    w_ref = io["out.a.w"].reshape(b, n_t, -1)
    torch.testing.assert_close(
        G.render(w_ref, _noise(io, "in.noise_base.")), io["out.a.video"], **VIDEO_TOL
    )


@torch.no_grad()
def test_case_a_video(fx, G):
    io = fx["io"]
    t = G.frame_times(io["out.a.coords"].shape[1])
    video = G(io["in.z_c"], io["in.z_m"], t, noise=_noise(io, "in.noise_base."))
    torch.testing.assert_close(video, io["out.a.video"], **VIDEO_TOL)


@torch.no_grad()
@pytest.mark.parametrize(
    ("case", "span"),
    [("interp32", (-1.0, 1.0)), ("extrap16", (-1.0, 3.0)), ("extrap32", (-1.0, 3.0))],
)
def test_case_b_interpolation_extrapolation(fx, G, case, span):
    io = fx["io"]
    coords = io[f"out.b.{case}.coords"]
    t = G.time_grid(coords.shape[1], *span)
    assert torch.equal(t.expand_as(coords), coords)
    noise = _noise(io, "in.noise_base.")
    video = G(io["in.z_c"], io["in.z_m"], t, noise=noise)
    torch.testing.assert_close(video, io[f"out.b.{case}.video"], **VIDEO_TOL)
    n_a = io["out.a.coords"].shape[1]
    base = G(io["in.z_c"], io["in.z_m"], G.frame_times(n_a), noise=noise)
    if case == "interp32":  # even frames of the 2x-dense grid are the base video, bit for bit
        assert torch.equal(video[:, :, ::2], base)
    if case == "extrap32":  # first 16 frames of the extrapolation are the base video
        assert torch.equal(G.frame_times(coords.shape[1]), t)
        assert torch.equal(video[:, :, :n_a], base)


@torch.no_grad()
def test_case_c_masks_exact(fx, G):
    io = fx["io"]
    edge_sets = {
        "edges_full": [FREQ_MAX],
        "edges2": io["in.c.edges2"].tolist(),
        "edges3": io["in.c.edges3"].tolist(),
    }
    for name, edges in edge_sets.items():
        masks = G.band_masks(edges)
        for i, m in enumerate(masks):
            ref = io[f"out.c.freq_idx.{name}.lff{i}"].bool()
            assert m.shape == (len(edges) + 1, ref.shape[1])
            assert torch.equal(m[: len(edges)], ref)
            # every sinusoid is in exactly one of our bands (the top one is open-ended)
            assert torch.equal(m.sum(0), torch.ones(ref.shape[1], dtype=torch.long))
    for i, spec in enumerate(G.frequency_spectrum()):
        assert torch.equal(spec, io[f"lff.{i}.freq"].abs())
        assert torch.equal(G.LFF[i].phases, io[f"lff.{i}.phase"])


@torch.no_grad()
def test_case_c_band_edits(fx, G):
    io = fx["io"]
    noise = _noise(io, "in.noise_base.")
    t = G.frame_times(io["out.a.coords"].shape[1])
    z_c, z_m, z_m2, z_m3 = io["in.z_c"], io["in.z_m"], io["in.z_m2"], io["in.z_m3"]
    edges2, edges3 = io["in.c.edges2"].tolist(), io["in.c.edges3"].tolist()
    cases = {
        "full": ([FREQ_MAX], None, None),
        "band0_only": (edges2, [0], None),
        "band1_only": (edges2, [1], None),
        "swap_band1": (edges2, None, [z_m, z_m2]),
        "three_bands": (edges3, io["in.c.three_bands.nonzeros"].tolist(), [z_m, z_m2, z_m3]),
    }
    base = G(z_c, z_m, t, noise=noise)
    for name, (edges, nonzeros, z_ms) in cases.items():
        edit = _release_edit(G, edges, nonzeros, z_ms)
        video = G.with_edit(edit)(z_c, z_m, t, noise=noise)
        torch.testing.assert_close(video, io[f"out.c.{name}.video"], **VIDEO_TOL, msg=name)
        returned = io[f"out.c.{name}.returned_freq_idx"].bool()
        assert torch.equal(G.band_masks(edges)[-1][: len(edges)], returned)
        if name == "full":
            assert torch.equal(video, base)
    # removing a band == keeping the others
    keep_low = G.with_edit(G.edit(edges=edges2[:1], keep=[0]))(z_c, z_m, t, noise=noise)
    drop_high = G.with_edit(G.edit(edges=edges2[:1], remove=[-1]))(z_c, z_m, t, noise=noise)
    assert torch.equal(keep_low, drop_high)
    torch.testing.assert_close(keep_low, io["out.c.band0_only.video"], **VIDEO_TOL)


@torch.no_grad()
def test_case_c_per_generator_motion(fx, G):
    io = fx["io"]
    z_ms = [io["in.z_m"], io["in.z_m2"]]
    edit = G.edit(generator_motions=dict(enumerate(z_ms)))
    video = G.with_edit(edit)(
        io["in.z_c"],
        io["in.z_m"],
        G.frame_times(io["out.a.coords"].shape[1]),
        noise=_noise(io, "in.noise_base."),
    )
    torch.testing.assert_close(video, io["out.c.per_generator_zm.video"], **VIDEO_TOL)


@torch.no_grad()
def test_case_e_single_images_off_grid(fx, G):
    io = fx["io"]
    t = io["in.e.coords"]  # [B, 1]: one frame per video at its own time
    video = G(io["in.e.z_c"], io["in.e.z_m"], t, noise=_noise(io, "in.e.noise."))
    torch.testing.assert_close(video[:, :, 0], io["out.e.images"], **VIDEO_TOL)


@torch.no_grad()
def test_case_f_two_frame_training_clip(fx, G):
    io = fx["io"]
    t = io["in.f.coords_unsorted"].sort(dim=1).values
    delta = t[:, 1] - t[:, 0]
    assert torch.equal(delta, io["out.f.delta"])
    video = G(io["in.f.z_c"], io["in.f.z_m"], t, noise=_noise(io, "in.f.noise_base."))
    torch.testing.assert_close(video, io["out.f.video"], **VIDEO_TOL)


@torch.no_grad()
@pytest.mark.parametrize("name", list(D_CLASSES))
def test_discriminators(fx, name):
    cfg = fx["config"]
    ctor = cfg["discriminator_constructors"][name]["kwargs"]
    table = channel_table(1, cfg["channel_table_override"]["discriminator_table"])
    D = D_CLASSES[name](size=ctor["size"], channels=table).eval()
    prefix = name + "."
    D.load_state_dict(
        {k[len(prefix) :]: v for k, v in fx["d"].items() if k.startswith(prefix)}, strict=True
    )
    io = fx["dio"]
    if name == "DeltaVideoDiscriminator":
        x = io["in.vid2"]
        b, c, t, h, w = x.shape
        feats = D.convs(x.reshape(b, c * t, h, w))
        out = D(x, io["in.delta"])
        torch.testing.assert_close(
            D.delta_embedding(io["in.delta"]), io[f"out.{name}.delta_embedding"], **D_TOL
        )
        # dt given as [B] (what the release's generator returns) gives the same logits
        torch.testing.assert_close(D(x, io["in.delta"][:, 0]), out, atol=0, rtol=0)
    else:
        x = io["in.img"] if "Image" in name else io["in.vid"]
        feats = D.convs(x)
        out = D(x)
    torch.testing.assert_close(feats, io[f"out.{name}.convs_out"], **D_TOL)
    torch.testing.assert_close(out, io[f"out.{name}.out"], **D_TOL)
