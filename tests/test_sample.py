import pytest
import torch

from analytic_generator import AnalyticGenerator
from vidgan.errors import VidganError
from vidgan.sample import appearance_motion_grid, extrapolate, interpolate, sample


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_sample_is_deterministic_under_a_seed():
    G = AnalyticGenerator()
    a = sample(G, 3, n_frames=5, generator=_seeded(1))
    b = sample(G, 3, n_frames=5, generator=_seeded(1))
    c = sample(G, 3, n_frames=5, generator=_seeded(2))
    assert torch.equal(a.videos, b.videos)
    assert not torch.allclose(a.videos, c.videos)
    assert a.videos.shape == (3, 3, 5, 4, 4)


def test_batching_and_chunking_do_not_change_frames():
    G = AnalyticGenerator()
    one = sample(G, 5, n_frames=12, generator=_seeded(3), batch_size=5)
    split = sample(G, 5, n_frames=12, latents=one.latents, batch_size=2, chunk_frames=5)
    torch.testing.assert_close(one.videos, split.videos, rtol=0, atol=0)


def test_interpolation_keeps_the_original_frames():
    G = AnalyticGenerator()
    base = sample(G, 2, n_frames=6, generator=_seeded(4))
    dense = interpolate(G, base.latents, n_frames=6, factor=4)
    assert dense.videos.shape[2] == 24
    torch.testing.assert_close(dense.videos[:, :, ::4], base.videos)
    # the in-between frames are new frames, not copies
    assert (dense.videos[:, :, 1::4] - base.videos).abs().max() > 1e-3


def test_extrapolation_continues_the_video():
    G = AnalyticGenerator()
    base = sample(G, 2, n_frames=6, generator=_seeded(5))
    longer = extrapolate(G, base.latents, n_frames=6, factor=2)
    assert longer.videos.shape[2] == 12
    torch.testing.assert_close(longer.videos[:, :, :6], base.videos)
    torch.testing.assert_close(
        longer.timestamps[6:] - longer.timestamps[:6], torch.full((6,), 6 / 8)
    )


@pytest.mark.parametrize("n_app,n_mot", [(2, 3), (3, 1), (1, 2)])
def test_appearance_motion_grid_rows_are_labelled_correctly(n_app, n_mot):
    G = AnalyticGenerator()
    out = appearance_motion_grid(G, n_app, n_mot, n_frames=4, generator=_seeded(6))
    g = _seeded(6)
    app = G.sample_latents(n_app, generator=g)
    mot = G.sample_latents(n_mot, generator=g)
    t = G.frame_times(4)
    for i in range(n_app):
        for j in range(n_mot):
            want = G(app.content[i : i + 1], mot.motion[j : j + 1], t)
            torch.testing.assert_close(out.videos[i * n_mot + j : i * n_mot + j + 1], want)
            assert out.names[i * n_mot + j] == f"app {i} x mot {j}"


def test_discrete_models_refuse_time_tricks_clearly():
    G = AnalyticGenerator(continuous=False)
    base = sample(G, 1, n_frames=4, generator=_seeded(7))
    with pytest.raises(VidganError, match="not a continuous-time model"):
        interpolate(G, base.latents, n_frames=4, factor=2)
    with pytest.raises(VidganError, match="4, 8"):
        sample(G, 1, n_frames=5)
