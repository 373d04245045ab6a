import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vidgan.data.clips import (
    ClipSpec,
    clip_indices,
    clip_rng,
    clip_span,
    crop_box,
    fitting_strides,
    resize_crop,
    sample_clip,
)
from vidgan.errors import ConfigError

strides = st.one_of(
    st.integers(1, 5), st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
)


@settings(deadline=None)
@given(frames=st.integers(1, 40), stride=st.integers(1, 6), offset=st.integers(0, 100))
def test_clip_indices_are_an_arithmetic_progression(frames, stride, offset):
    idx = clip_indices(frames, stride, offset)
    assert len(idx) == frames and idx[0] == offset
    assert (np.diff(idx) == stride).all()
    assert idx[-1] - idx[0] + 1 == clip_span(frames, stride)


@settings(max_examples=200, deadline=None)
@given(
    frames=st.integers(1, 24),
    stride=strides,
    extra=st.integers(0, 60),
    offset=st.sampled_from(["random", "start"]),
    flip=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_sample_clip_stays_inside_the_video(frames, stride, extra, offset, flip, seed):
    spec = ClipSpec(frames=frames, stride=stride, offset=offset, flip=flip)
    n = spec.min_frames + extra
    choice = sample_clip(n, spec, np.random.default_rng(seed))
    idx = choice.indices
    assert len(idx) == frames
    assert idx.min() >= 0 and idx.max() < n
    assert choice.stride in fitting_strides(n, spec)
    if frames > 1:
        assert (np.diff(idx) == choice.stride).all()
    if offset == "start":
        assert idx[0] == 0
    if not flip:
        assert choice.flip is False


@settings(deadline=None)
@given(frames=st.integers(2, 16), stride=strides, short=st.integers(1, 10))
def test_too_short_videos_are_refused(frames, stride, short):
    spec = ClipSpec(frames=frames, stride=stride)
    n = max(1, spec.min_frames - short)
    assert fitting_strides(n, spec) == ()
    with pytest.raises(ValueError):
        sample_clip(n, spec, np.random.default_rng(0))


def test_random_offsets_cover_every_valid_start_uniformly():
    spec = ClipSpec(frames=4, stride=2)  # span 7
    n = 12  # starts 0..5
    starts = [sample_clip(n, spec, clip_rng(0, 0, i)).indices[0] for i in range(6000)]
    counts = np.bincount(starts, minlength=6)
    assert len(counts) == 6
    assert np.abs(counts / 6000 - 1 / 6).max() < 0.025  # 4.5 sigma of a binomial(6000, 1/6)


def test_stride_set_picks_among_fitting_strides():
    spec = ClipSpec(frames=5, stride=(2, 3))  # spans 9 and 13
    both = {sample_clip(20, spec, clip_rng(1, 0, i)).stride for i in range(200)}
    only2 = {sample_clip(10, spec, clip_rng(1, 0, i)).stride for i in range(200)}
    assert both == {2, 3}
    assert only2 == {2}
    assert spec.min_frames == 9


def test_clip_rng_depends_on_seed_epoch_and_index_only():
    a = clip_rng(3, 1, 7).random(4)
    assert np.array_equal(a, clip_rng(3, 1, 7).random(4))
    assert not np.array_equal(a, clip_rng(3, 2, 7).random(4))
    assert not np.array_equal(a, clip_rng(3, 1, 8).random(4))
    assert not np.array_equal(a, clip_rng(4, 1, 7).random(4))


def test_flip_probability_is_one_half():
    spec = ClipSpec(frames=2, flip=True)
    flips = [sample_clip(4, spec, clip_rng(0, 0, i)).flip for i in range(4000)]
    assert abs(np.mean(flips) - 0.5) < 0.04


@settings(deadline=None)
@given(w=st.integers(1, 300), h=st.integers(1, 300))
def test_crop_box_is_the_centred_square(w, h):
    left, top, right, bottom = crop_box(w, h)
    side = min(w, h)
    assert right - left == side and bottom - top == side
    assert left >= 0 and right <= w and top >= 0 and bottom <= h
    assert abs(left - (w - right)) <= 1 and abs(top - (h - bottom)) <= 1


def test_resize_crop_keeps_only_the_centre():
    # 30 x 10 image: left third red, centre third green, right third blue.
    arr = np.zeros((10, 30, 3), dtype=np.uint8)
    arr[:, :10, 0] = 255
    arr[:, 10:20, 1] = 255
    arr[:, 20:, 2] = 255
    out = np.asarray(resize_crop(Image.fromarray(arr), 5)).astype(int)
    assert out.shape == (5, 5, 3)
    # The inner columns are green; the outer bands are gone (edges see only the filter tail).
    assert (out[:, 1:4, 1] >= 250).all() and out[:, 1:4, 0].max() <= 2  # Lanczos ringing
    assert out[..., 0].max() < 40 and out[..., 2].max() < 40
    # Same as "resize the shorter side, then centre crop" (reference order of operations).
    ref = Image.fromarray(arr).resize((15, 5), Image.Resampling.LANCZOS)
    ref = np.asarray(ref)[:, 5:10].astype(int)
    assert np.abs(out - ref).max() <= 3
    assert resize_crop(Image.fromarray(arr), None).size == (30, 10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frames": 0},
        {"stride": 0},
        {"stride": ()},
        {"offset": "middle"},
        {"size": 0},
        {"dtype": "half"},
        {"short": "pad"},
    ],
)
def test_bad_clip_specs_are_config_errors(kwargs):
    with pytest.raises(ConfigError, match="ClipSpec"):
        ClipSpec(**kwargs)
