import numpy as np
import pytest
import torch
from PIL import Image

from vidgan.errors import DataError
from vidgan.io import as_thwc_uint8, make_grid, read_video, to_uint8, write_image, write_video


def smooth_video(t=6, h=24, w=32) -> np.ndarray:
    """uint8 [T, H, W, 3] moving gradients: what codecs handle well."""
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for k in range(t):
        r = (x * 6 + k * 10) % 256
        g = (y * 8 + 40) % 256
        b = np.full_like(x, 60 + 20 * k)
        frames.append(np.stack([r, g, b], -1))
    return np.stack(frames).astype(np.uint8)


def test_to_uint8_is_the_exact_inverse_of_the_float_mapping():
    u = torch.arange(256, dtype=torch.uint8)
    x = u.float() / 127.5 - 1
    assert torch.equal(to_uint8(x), u)
    assert torch.equal(
        to_uint8(torch.tensor([-3.0, -1.0, 1.0, 5.0])),
        torch.tensor([0, 0, 255, 255], dtype=torch.uint8),
    )
    assert to_uint8(torch.tensor([0.0])).item() == 128  # 0 * 127.5 + 128
    assert np.array_equal(to_uint8(x.numpy()), u.numpy())


def test_float_cthw_and_uint8_thwc_layouts_agree():
    v = torch.from_numpy(smooth_video())
    f = v.permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, T, H, W)
    assert np.array_equal(as_thwc_uint8(f), v.numpy())
    with pytest.raises(DataError, match=r"\[3, T, H, W\]"):
        as_thwc_uint8(torch.zeros(2, 4, 4, 4))


def test_png_folder_round_trip_is_exact(tmp_path):
    v = smooth_video(t=12)
    out = write_video(tmp_path / "frames", v)
    assert sorted(p.name for p in out.iterdir())[:2] == ["000000.png", "000001.png"]
    assert np.array_equal(read_video(out), v)
    write_video(out, v[:3])  # rewriting with fewer frames leaves no stale frames behind
    assert np.array_equal(read_video(out), v[:3])


def test_gif_round_trip(tmp_path):
    v = np.zeros((5, 16, 16, 3), dtype=np.uint8)
    for k in range(5):
        v[k, :, k * 3 : k * 3 + 4] = (255, 40, 40)  # few colours: the palette is exact
    write_video(tmp_path / "a.gif", torch.from_numpy(v), fps=10)
    assert np.array_equal(read_video(tmp_path / "a.gif"), v)
    smooth = smooth_video()
    write_video(tmp_path / "b.gif", smooth)
    back = read_video(tmp_path / "b.gif").astype(int)
    assert back.shape == smooth.shape and np.abs(back - smooth).mean() < 8  # 256-colour palette


def test_mp4_round_trip_within_codec_tolerance(tmp_path):
    v = smooth_video(t=10, h=23, w=31)  # odd sizes are padded for yuv420p
    f = torch.from_numpy(v).permute(3, 0, 1, 2).float() / 127.5 - 1
    path = write_video(tmp_path / "a.mp4", f, fps=8)
    back = read_video(path)
    assert back.shape == (10, 24, 32, 3)
    err = np.abs(back[:, :23, :31].astype(int) - v.astype(int))
    assert err.mean() < 2.5 and np.percentile(err, 99) < 20  # crf 18, 4:2:0 chroma
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name in ("h264", "libx264") and s.format.name == "yuv420p"
        assert s.average_rate == 8


def test_bad_paths(tmp_path):
    with pytest.raises(DataError, match=r"unknown suffix '\.avi2'"):
        write_video(tmp_path / "a.avi2", smooth_video())
    with pytest.raises(DataError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "x.mp4").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"x.mp4 is corrupt or unreadable"):
        read_video(tmp_path / "x.mp4")


def test_write_image(tmp_path):
    img = torch.linspace(-1, 1, 3 * 4 * 5).reshape(3, 4, 5)
    p = write_image(tmp_path / "sub" / "a.png", img)
    back = np.asarray(Image.open(p))
    assert np.array_equal(back, to_uint8(img).permute(1, 2, 0).numpy())


def test_make_grid_places_tiles_and_labels():
    n, t, h, w, pad = 5, 2, 6, 7, 2
    videos = torch.stack([torch.full((3, t, h, w), k / 5 - 0.5) for k in range(n)])
    g = make_grid(videos, nrow=3, pad=pad)
    assert g.shape == (3, t, pad + 2 * (h + pad), pad + 3 * (w + pad))
    for k in range(n):
        r, c = divmod(k, 3)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        assert torch.equal(g[:, :, y0 : y0 + h, x0 : x0 + w], videos[k])
    assert (g[:, :, :pad] == -1).all()  # padding is black
    assert (g[:, :, -h - pad :, -w - pad :] == -1).all()  # the empty 6th cell
    labelled = make_grid(videos, nrow=3, pad=pad, labels=["a", "bb", "c", "dd", "WW"])
    strip = (labelled.shape[2] - g.shape[2]) // 2  # one strip per row of tiles
    assert strip > 0 and labelled.shape[3] == g.shape[3]
    strips = [
        labelled[:, :, pad : pad + strip, pad + c * (w + pad) : pad + c * (w + pad) + w]
        for c in range(3)
    ]  # the label strips of the first row
    assert all(s.max() > 0.5 and s.min() == -1 for s in strips)  # white text on black
    assert torch.equal(strips[0][:, 0], strips[0][:, 1])  # same label in every frame
    assert not torch.equal(strips[0], strips[1])  # "a" != "bb"
    assert torch.equal(labelled[:, :, pad + strip : pad + strip + h, pad : pad + w], videos[0])
    u8 = make_grid(to_uint8(videos), nrow=5, labels=list("abcde"), pad=0)
    assert u8.dtype == torch.uint8 and u8.shape[-1] == 5 * w
    with pytest.raises(DataError, match="2 labels for 5 videos"):
        make_grid(videos, labels=["a", "b"])
