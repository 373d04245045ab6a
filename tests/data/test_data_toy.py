"""The toy generator against the reference rasterisation, motion rule and statistics.

Reference data: fmr/toy_samples.safetensors (4 videos with their parameters, drawn by the
official OpenCV code) and fmr/toy_stats.json (statistics of 200 official 16-frame videos).
"""

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file
from scipy.stats import chi2_contingency

from vidgan.cli import main
from vidgan.data import ClipSpec, open_dataset
from vidgan.data.toy import (
    LABELS_FORMAT,
    SHAPES,
    ToyObject,
    draw,
    make_toy_video,
    read_toy_labels,
    write_toy_dataset,
)

SHAPE_ORDER = ("circle", "square", "triangle")  # fixture ids 0, 1, 2


@pytest.fixture(scope="module")
def samples(parity_dir):
    return load_file(parity_dir / "fmr" / "toy_samples.safetensors")


@pytest.fixture(scope="module")
def stats(parity_dir):
    return json.loads((parity_dir / "fmr" / "toy_stats.json").read_text())


@pytest.fixture(scope="module")
def ours(stats):
    """As many videos, as long, as the reference statistics used."""
    videos, objects = [], []
    for i in range(stats["n_videos"]):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([2024, i])))
        video, labels = make_toy_video(rng, size=stats["width"], frames=stats["frames"])
        videos.append(video)
        objects += labels["objects"]
    return np.stack(videos), objects


def test_rasterisation_is_pixel_exact(samples):
    videos, coords = samples["videos"], samples["coords"]
    n, t = videos.shape[:2]
    for v in range(n):
        for k in range(t):
            frame = np.zeros_like(videos[v, k])
            for o in range(coords.shape[2]):
                x, y = (int(c) for c in coords[v, k, o])
                colour = tuple(int(c) for c in samples["colors"][v, o])
                draw(frame, SHAPE_ORDER[int(samples["shapes"][v, o])], x, y, colour)
            np.testing.assert_array_equal(frame, videos[v, k], err_msg=f"video {v} frame {k}")


def test_motion_rule_reproduces_reference_trajectories(samples):
    coords, t = samples["coords"], samples["coords"].shape[1]
    size = samples["videos"].shape[2]
    for v in range(coords.shape[0]):
        for o in range(coords.shape[2]):
            obj = ToyObject(
                shape=SHAPE_ORDER[int(samples["shapes"][v, o])],
                colour=(0, 0, 0),
                speed=int(samples["speeds"][v, o]),
                x=int(coords[v, 0, o, 0]),
                y0=int(coords[v, 0, o, 1]),
                direction=int(samples["init_directions"][v, o]),
            )
            assert obj.trajectory(t, size) == coords[v, :, o, 1].tolist()
            assert (coords[v, :, o, 0] == obj.x).all()


def test_single_object_rasters_match(stats):
    for shape, ref in stats["single_object_raster_at_32_32"].items():
        frame = np.zeros((64, 64, 3), dtype=np.uint8)
        draw(frame, shape, 32, 32, (200, 200, 200))
        ys, xs = np.nonzero(frame[..., 0])
        assert len(ys) == ref["pixels"], shape
        assert [ys.min(), ys.max()] == ref["rows"] and [xs.min(), xs.max()] == ref["cols"]


def _same_distribution(a_counts, b_counts, p_min=1e-3):
    """Chi-square test of homogeneity on two histograms (empty bins in both dropped)."""
    table = np.array([a_counts, b_counts], dtype=float)
    table = table[:, table.sum(0) > 0]
    p = chi2_contingency(table)[1]
    assert p > p_min, (a_counts, b_counts, p)


def test_parameter_distributions_match_reference(ours, stats):
    _, objects = ours
    speeds = [o["speed"] for o in objects]
    ref = stats["chosen_speed_histogram"]
    _same_distribution([speeds.count(v) for v in ref["values"]], ref["counts"])
    ref = stats["shape_histogram"]
    _same_distribution(
        [[o["shape"] for o in objects].count(v) for v in ref["values"]], ref["counts"]
    )
    ref = stats["initial_direction_histogram"]
    dirs = [o["direction"] for o in objects]
    _same_distribution([dirs.count(v) for v in ref["values"]], ref["counts"])
    ref = stats["initial_y_histogram"]
    _same_distribution(np.histogram([o["y0"] for o in objects], ref["edges"])[0], ref["counts"])
    ref = stats["object_colour_histogram_per_channel"]
    colours = np.array([o["colour"] for o in objects])
    assert colours.min() >= ref["min"] and colours.max() <= ref["max"]
    for c in range(3):
        _same_distribution(np.histogram(colours[:, c], ref["bin_edges"])[0], ref["counts"][c])
    assert sorted({o["x"] for o in objects}) == stats["x_positions"]


def test_motion_distributions_match_reference(ours, stats):
    _, objects = ours
    ys = np.array([o["y"] for o in objects])  # [objects, T]
    assert [int(ys.min()), int(ys.max())] == stats["y_range_all_frames"]
    dy = np.abs(np.diff(ys, axis=1)).ravel()
    ref = stats["abs_dy_per_object_per_frame_from_coords"]
    _same_distribution(np.bincount(dy, minlength=len(ref["values"])), ref["counts"])
    ref = stats["y_histogram_all_frames"]
    _same_distribution(np.histogram(ys.ravel(), ref["edges"])[0], ref["counts"])
    flips = (np.diff(np.sign(np.diff(ys, axis=1)), axis=1) != 0).sum() / (
        ys.shape[0] * (ys.shape[1] - 2)
    )
    assert abs(flips - stats["direction_flip_fraction"]) < 0.02  # 2x the per-transition s.e.


def test_pixel_statistics_match_reference(ours, stats):
    """Means within 4 standard errors of the difference of two 200-video means.

    The standard error comes from the spread of per-video means in our own sample (the
    reference sample has the same size and, if the generators agree, the same spread).
    """
    videos, _ = ours
    n = len(videos)
    per_video, per_channel, nonblack, sq = [], [], [], 0.0
    for v in videos:
        x = v.astype(np.float32)
        per_video.append(x.mean(dtype=np.float64))
        per_channel.append(x.reshape(-1, 3).mean(0, dtype=np.float64))
        nonblack.append((x.sum(-1) > 0).mean())
        sq += float((x * x).sum(dtype=np.float64))
    per_video, per_channel, nonblack = map(np.array, (per_video, per_channel, nonblack))

    def close(sample, ref):
        se = np.sqrt(2) * sample.std(ddof=1) / np.sqrt(n)
        assert abs(sample.mean() - ref) < 4 * se, (sample.mean(), ref, se)

    close(per_video, stats["mean_pixel_value"])
    for c in range(3):
        close(per_channel[:, c], stats["mean_pixel_value_per_channel"][c])
    close(nonblack, stats["fraction_nonblack_pixels"])
    std = np.sqrt(sq / videos.size - per_video.mean() ** 2)
    assert abs(std - stats["std_pixel_value"]) < 0.03 * stats["std_pixel_value"]


def test_labels_describe_the_pixels(tmp_path):
    dst = write_toy_dataset(tmp_path / "toy", n_videos=3, frames=8, seed=5)
    meta = read_toy_labels(dst)
    assert meta["format"] == LABELS_FORMAT and meta["params"]["seed"] == 5
    assert sorted(meta["videos"]) == sorted(p.name for p in dst.iterdir() if p.is_dir())
    for name, labels in meta["videos"].items():
        assert len(labels["objects"]) == 3
        for k in range(8):
            frame = np.asarray(Image.open(dst / name / f"{k:06d}.png"))
            for o in labels["objects"]:
                assert o["shape"] in SHAPES and o["speed"] in (2, 4, 8)
                assert o["y"][0] == o["y0"] and len(o["y"]) == 8
                assert frame[o["y"][k], o["x"]].tolist() == o["colour"]


def test_dataset_is_deterministic_and_extends_by_seed(tmp_path):
    a = write_toy_dataset(tmp_path / "a", n_videos=2, frames=4, seed=1)
    b = write_toy_dataset(tmp_path / "b", n_videos=4, frames=4, seed=1)
    c = write_toy_dataset(tmp_path / "c", n_videos=2, frames=4, seed=2)
    la, lb, lc = (read_toy_labels(p)["videos"] for p in (a, b, c))
    assert all(la[k] == lb[k] for k in la)
    assert la != lc
    for k in la:
        assert (a / k / "000003.png").read_bytes() == (b / k / "000003.png").read_bytes()


def test_zip_output_opens_as_a_dataset(tmp_path):
    dst = write_toy_dataset(tmp_path / "toy.zip", n_videos=3, frames=16, fmt="jpg")
    with zipfile.ZipFile(dst) as zf:
        assert "labels.json" in zf.namelist()
    ds = open_dataset(dst, ClipSpec(frames=16, offset="start", dtype="uint8"))
    assert len(ds) == 3 and ds.num_classes == 0
    video = ds[0]["video"]
    meta = read_toy_labels(dst)["videos"]["000000"]
    for o in meta["objects"]:  # JPEG q95 keeps the flat object colours within a few levels
        got = video[5, :, o["y"][5], o["x"]].int()
        assert (got - torch.tensor(o["colour"])).abs().max() <= 12


def test_existing_output_needs_force(tmp_path, capsys):
    dst = tmp_path / "toy"
    assert main(["data", "toy", str(dst), "--n", "2", "--frames", "4"]) == 0
    assert main(["data", "toy", str(dst), "--n", "2", "--frames", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(dst) in err and "--force" in err
    assert main(["data", "toy", str(dst), "--n", "3", "--frames", "4", "--force"]) == 0
    assert len(read_toy_labels(dst)["videos"]) == 3
