"""The explorer's JSON API on tiny random-weight models: what it serves equals the model APIs."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import torch
from explorehelp import png, tiny_model_file, u8, wait
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.testclient import TestClient

from vidgan.checkpoint import load_checkpoint
from vidgan.explore import Explorer, create_app
from vidgan.models.base import Latents
from vidgan.sample import interpolate, sample

JSON = {"Content-Type": "application/json"}


def _seed(s: int) -> torch.Generator:
    return torch.Generator().manual_seed(s)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore-models")
    return {m: tiny_model_file(folder, m) for m in ("fmr", "digan", "g3an")}


@pytest.fixture(scope="module")
def clients(files):
    made = {}
    for name, path in files.items():
        client = TestClient(create_app(Explorer.load(path)))
        made[name] = client.__enter__()
    yield made
    for client in made.values():
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def models(files):
    return {m: load_checkpoint(p).generator for m, p in files.items()}


def render(client, **view) -> tuple[dict, np.ndarray]:
    """Start a render, wait for it, fetch every frame: (status, frames [T, H, W, 3])."""
    r = client.post("/api/render", json=view)
    assert r.status_code == 202, r.text
    status = wait(client, r.json()["id"])
    assert status["state"] == "done", status
    n = status["result"]["frames"]
    frames = [png(client.get(f"/api/jobs/{status['id']}/frames/{k}").content) for k in range(n)]
    return status, np.stack(frames)


def frame(client, t: float, **view) -> np.ndarray:
    r = client.post("/api/frame", json={**view, "t": t})
    assert r.status_code == 200, r.text
    return png(r.content)


def close(a: np.ndarray, b: np.ndarray) -> None:
    """uint8 frames equal up to float rounding at the 0.5 boundary."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_info_describes_each_model(clients):
    fmr, digan, g3an = (clients[m].get("/api/info").json() for m in ("fmr", "digan", "g3an"))
    assert (fmr["model"], fmr["continuous"], fmr["clip_frames"], fmr["size"]) == (
        "fmr",
        True,
        4,
        [16, 16],
    )
    assert fmr["abilities"] == {"bands": True, "upsample": False, "zoom": False}
    assert digan["abilities"] == {"bands": False, "upsample": True, "zoom": True}
    assert g3an["continuous"] is False and g3an["lengths"] == list(range(16, 49, 4))
    assert g3an["size"] == [64, 64]


def test_video_with_equal_seeds_is_the_cli_sample_densified(clients, models):
    G = models["fmr"]
    status, got = render(clients["fmr"], content_seeds="5", motion_seeds="5", frames=4, density=2)
    base = sample(G, 1, n_frames=4, generator=_seed(5))  # = vidgan generate --n 1 --seed 5
    want = interpolate(G, base.latents, n_frames=4, factor=2).videos[0]
    assert status["result"]["indices"] == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]
    close(got, u8(want))
    close(got[::2], u8(base.videos[0]))


def test_content_and_motion_seeds_pair_up(clients, models):
    G = models["fmr"]
    _, got = render(clients["fmr"], content_seeds="1", motion_seeds="2", frames=4)
    a = G.sample_latents(1, n_frames=4, generator=_seed(1))
    b = G.sample_latents(1, n_frames=4, generator=_seed(2))
    t = -1 + torch.arange(4) * 2 / 4  # FMR tiny: 4-frame clips over [-1, 1)
    want = G(a.content, b.motion, t, noise=a.noise)[0]
    close(got, u8(want))


@pytest.mark.parametrize("t", [1.25, -3.3, 11.7])
def test_scrubbed_fmr_frame_is_the_generator_at_t(clients, models, t):
    G = models["fmr"]
    got = frame(clients["fmr"], t, content_seeds="3", motion_seeds="3", frames=4)
    lat = G.sample_latents(1, n_frames=4, generator=_seed(3))
    time = torch.tensor([-1 + t * 2 / 4])  # frame index t on the training grid
    want = G(lat.content, lat.motion, time, noise=lat.noise)[0]
    close(got, u8(want)[0])


@pytest.mark.parametrize("t", [0.4, 7.5])
def test_scrubbed_digan_frame_is_g_frame(clients, models, t):
    G = models["digan"]
    got = frame(clients["digan"], t, content_seeds="4", motion_seeds="4", frames=4)
    lat = G.sample_latents(1, generator=_seed(4))
    want = G.frame(lat.content, lat.motion, t / 3)[0]  # DIGAN tiny: frame k at t = k / 3
    close(got, u8(want[:, None])[0])


def test_scrubbed_frames_differ_over_time(clients):
    a = frame(clients["fmr"], 0.0, content_seeds="3", motion_seeds="3")
    b = frame(clients["fmr"], 2.5, content_seeds="3", motion_seeds="3")
    assert np.abs(a.astype(int) - b.astype(int)).max() > 5


def test_removed_and_altered_bands_match_the_edit_api(clients, models):
    G = models["fmr"]
    view = {"content_seeds": "2", "motion_seeds": "2", "frames": 4}
    _, plain = render(clients["fmr"], **view)
    _, low = render(clients["fmr"], **view, edges=[3], remove=[1])
    _, alt = render(clients["fmr"], **view, edges=[3], alter={"1": 9})
    lat = G.sample_latents(1, n_frames=4, generator=_seed(2))
    code = G.sample_latents(1, generator=_seed(9)).motion[0]
    want_low = sample(G.with_edit(G.edit(edges=[3], remove=[1])), 1, n_frames=4, latents=lat)
    want_alt = sample(
        G.with_edit(G.edit(edges=[3], band_motions={1: code})), 1, n_frames=4, latents=lat
    )
    close(low, u8(want_low.videos[0]))
    close(alt, u8(want_alt.videos[0]))
    assert np.abs(low.astype(int) - plain.astype(int)).mean() > 1  # removing a band shows
    assert np.abs(alt.astype(int) - plain.astype(int)).mean() > 1


def test_spectrum_is_the_learned_frequencies_and_band_counts(clients, models):
    G = models["fmr"]
    spec = clients["fmr"].get("/api/spectrum?edges=3,5").json()
    masks = G.band_masks([3, 5])
    for i, (w, gen) in enumerate(zip(G.frequency_spectrum(), spec["generators"])):
        np.testing.assert_allclose(gen["frequencies"], sorted(w.tolist()), rtol=1e-6)
        assert gen["band_counts"] == [int(m.sum()) for m in masks[i]]
    assert spec["frame_dt"] == pytest.approx(0.5)
    r = clients["digan"].get("/api/spectrum")
    assert r.status_code == 400 and "frequencies" in r.json()["error"]


def test_difference_video_is_relative_to_the_first_frame(clients, models):
    G = models["fmr"]
    _, got = render(clients["fmr"], content_seeds="6", motion_seeds="6", frames=4, difference=True)
    video = sample(G, 1, n_frames=4, generator=_seed(6)).videos[0]
    close(got, u8((video - video[:, :1]) / 2))
    scrub = frame(clients["fmr"], 2.0, content_seeds="6", motion_seeds="6", difference=True)
    close(scrub, got[2])


@pytest.mark.parametrize(
    ("key", "value", "method"), [("scale", 2, "upsampled"), ("zoom", 1.5, "zoomed_out")]
)
def test_digan_space_modes_are_the_model_methods(clients, models, key, value, method):
    G = models["digan"]
    _, got = render(clients["digan"], content_seeds="1", motion_seeds="1", frames=3, **{key: value})
    lat = G.sample_latents(1, generator=_seed(1))
    want = getattr(G, method)(lat.content, lat.motion, torch.arange(3) / 3, value)[0]
    assert got.shape[1] == round(16 * value)
    close(got, u8(want))


def test_g3an_pairs_appearances_with_motions_at_any_length(clients, models):
    G = models["g3an"]
    status, got = render(clients["g3an"], content_seeds="0,1", motion_seeds="7", frames=20)
    assert status["result"]["names"] == ["c0 m7", "c1 m7"]
    assert got.shape[0] == 20
    app = G.sample_latents(1, n_frames=20, generator=_seed(1))
    mot = G.sample_latents(1, n_frames=20, generator=_seed(7))
    want = G.generate(Latents(content=app.content, motion=mot.motion), G.frame_times(20))[0]
    # row 1 of a 2x1 labelled grid: pad 2, then per row a 12 px label strip + 64 px + pad 2
    y0 = 2 + (12 + 64 + 2) + 12
    close(got[:, y0 : y0 + 64, 2 : 2 + 64], u8(want))
    r = clients["g3an"].post("/api/frame", json={"frames": 20, "t": 2.5})
    assert r.status_code == 400 and "0..19" in r.json()["error"]


@pytest.mark.parametrize(
    ("model", "body", "words"),
    [
        ("fmr", {"frames": 9999}, "between 1 and 256"),
        ("fmr", {"frames": 2.5}, "whole number"),
        ("fmr", {"density": 0}, "density"),
        ("fmr", {"frames": "many"}, "must be a number"),
        ("fmr", {"difference": "yes"}, "true or false"),
        ("fmr", {"start": 1e9}, "start must be between"),
        ("fmr", {"content_seeds": "x1"}, "not a seed list"),
        ("fmr", {"motion_seeds": "5-1"}, "motion seeds"),
        ("fmr", {"content_seeds": "0-15", "motion_seeds": "0,1"}, "at most 16"),
        ("fmr", {"edges": [3], "remove": [4]}, "band 4 does not exist"),
        ("fmr", {"edges": [5, 3]}, "increasing"),
        ("fmr", {"remove": [0]}, "needs band edges"),
        ("fmr", {"scale": 2}, "no space up-sampling"),
        ("fmr", {"colour": 1}, "unknown field"),
        ("digan", {"scale": 2, "zoom": 2}, "either"),
        ("digan", {"scale": 9}, "scale"),
        ("digan", {"edges": [3]}, "no frequency bands"),
        ("g3an", {"frames": 17}, "16, 20, 24"),
        ("g3an", {"frames": 16, "start": 2}, "not a continuous-time model"),
    ],
)
def test_out_of_range_requests_get_400_with_a_sentence(clients, model, body, words):
    r = clients[model].post("/api/render", json=body)
    assert r.status_code == 400
    assert words in r.json()["error"]


def test_malformed_requests_get_4xx_json(clients):
    c = clients["fmr"]
    r = c.post("/api/render", content=b"{", headers=JSON)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = c.post("/api/render", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type" in r.json()["error"]
    for body in (b'{"start": Infinity}', b'{"start": 1e999}', b'{"frames": -1e999}'):
        r = c.post("/api/render", content=body, headers=JSON)
        assert r.status_code == 400 and "must be between" in r.json()["error"]
    assert c.post("/api/frame", json={"frames": 4}).status_code == 400
    assert c.post("/api/frame", json={"t": 1e9}).status_code == 400
    r = c.get("/api/jobs/v999")
    assert r.status_code == 404 and "does not exist" in r.json()["error"]
    r = c.get("/api/spectrum?edges=a")
    assert r.status_code == 400
    assert c.get("/api/info").status_code == 200  # the server is still up


def test_downloads_decode_to_the_rendered_frames(clients):
    c = clients["fmr"]
    status, frames = render(c, content_seeds="0", motion_seeds="0,1", frames=4)
    url = f"/api/jobs/{status['id']}/download"
    gif = c.get(url, params={"format": "gif", "fps": 5})
    assert gif.headers["content-type"] == "image/gif"
    assert "attachment" in gif.headers["content-disposition"]
    with Image.open(io.BytesIO(gif.content)) as im:
        assert im.n_frames == 4
        assert im.info["duration"] == 200
        im.seek(2)
        assert np.abs(np.asarray(im.convert("RGB")).astype(int) - frames[2]).mean() < 6
    mp4 = c.get(url, params={"format": "mp4", "fps": 5})
    with av.open(io.BytesIO(mp4.content)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 4
    h, w = frames.shape[1:3]
    assert np.abs(decoded[1][:h, :w].astype(int) - frames[1]).mean() < 12
    bad = c.get(url, params={"format": "webm"})
    assert bad.status_code == 400 and "mp4 or gif" in bad.json()["error"]
    assert c.get(url, params={"fps": 0}).status_code == 400


def test_a_newer_render_cancels_the_stale_one(clients):
    c = clients["fmr"]
    slow = c.post("/api/render", json={"content_seeds": "0-15", "frames": 256, "density": 2})
    fast = c.post("/api/render", json={"content_seeds": "1", "frames": 4})
    stale, fresh = wait(c, slow.json()["id"]), wait(c, fast.json()["id"])
    assert stale["state"] == "cancelled" and stale["progress"] < 1
    assert fresh["state"] == "done"
    r = c.get(f"/api/jobs/{stale['id']}/download")
    assert r.status_code == 400 and "cancelled" in r.json()["error"]


def test_loading_a_checkpoint_from_the_page(files, tmp_path):
    with TestClient(create_app(Explorer.load(files["fmr"]))) as c:
        r = c.post("/api/load", json={"path": str(tmp_path / "missing.safetensors")})
        assert r.status_code == 400 and "does not exist" in r.json()["error"]
        junk = tmp_path / "junk.safetensors"
        junk.write_bytes(b"not a checkpoint")
        status = wait(c, c.post("/api/load", json={"path": str(junk)}).json()["id"])
        assert status["state"] == "error" and "junk.safetensors" in status["error"]
        assert c.get("/api/info").json()["model"] == "fmr"  # the old model stays
        status = wait(c, c.post("/api/load", json={"path": str(files["digan"])}).json()["id"])
        assert status["state"] == "done"
        assert c.get("/api/info").json()["model"] == "digan"


def test_cli_reports_a_bad_checkpoint_in_one_sentence(tmp_path, capsys):
    from vidgan.cli import main

    assert main(["explore", str(tmp_path / "nope.safetensors"), "--port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(-2, 20), max_size=2),
)
_keys = st.sampled_from(
    ["content_seeds", "motion_seeds", "frames", "start", "density", "edges", "remove", "alter",
     "difference", "t", "zoom"]
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.dictionaries(_keys, _values, max_size=4))
def test_arbitrary_request_values_never_crash_the_server(clients, body):
    c = clients["fmr"]
    for path in ("/api/render", "/api/frame"):
        r = c.post(path, json=body)
        assert r.status_code in (200, 202, 400), r.text
        if r.status_code == 400:
            assert r.json()["error"].endswith(".")
