"""DIGAN's training recipe: what its motion and image discriminators see, and a 2-step run."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from torch import Tensor

from vidgan.data.clips import ClipSpec
from vidgan.errors import ConfigError
from vidgan.models.base import Latents, VideoGenerator, expand_times
from vidgan.recipes.digan import DIGANRecipe
from vidgan.train.config import resolve_run_config
from vidgan.train.recipe import BatchRandom

N = 16  # frames per clip, as in the paper


def make_recipe(*, augment: str = "", num_classes: int = 0, frames: int = N) -> DIGANRecipe:
    cfg = dataclasses.replace(resolve_run_config("digan", preset="digan-tiny").model, n_frames=N)
    return DIGANRecipe(
        model_cfg=cfg,
        clip=ClipSpec(frames=frames, size=cfg.resolution, flip=True),
        d_names=("video", "image"),
        num_classes=num_classes,
        augment=augment,
    )


def rand(batch: int, seed: int = 0) -> BatchRandom:
    return BatchRandom(seed=seed, global_batch=batch, rows=slice(0, batch))


def noise_clips(batch: int, size: int = 4, seed: int = 0) -> Tensor:
    """[B, 3, N, S, S] clips whose frames are all different, so a frame identifies its index."""
    return torch.rand(batch, 3, N, size, size, generator=torch.Generator().manual_seed(seed))


def frame_index(video: Tensor, frames: Tensor) -> Tensor:
    """For each row b, the k with video[b, :, k] == frames[b] exactly (-1 when none matches)."""
    hit = (video == frames[:, :, None]).flatten(3).all(dim=3).all(dim=1)  # (B, N)
    assert (hit.sum(1) <= 1).all()
    return torch.where(hit.any(1), hit.float().argmax(1), torch.full((len(hit),), -1))


def digan_real_gap_mean() -> float:
    """E[i2 - i1] of the release's real pairs: floor(16 Beta(2,1)), floor(16 Beta(1,2)), exact."""
    p1 = [((k + 1) / N) ** 2 - (k / N) ** 2 for k in range(N)]  # P(floor(16 a) = k), a~Beta(2,1)
    p2 = [(1 - k / N) ** 2 - (1 - (k + 1) / N) ** 2 for k in range(N)]  # b ~ Beta(1, 2)
    return sum(p1[i] * p2[j] * abs(i - j) for i in range(N) for j in range(N))


def test_real_pairs_are_clip_frames_at_the_digan_indices():
    B = 3000
    video = noise_clips(B)
    inputs = make_recipe().real_inputs(video, {"label": torch.zeros(B, dtype=torch.long)}, rand(B))
    assert set(inputs) == {"video", "image"}
    x = inputs["video"].x  # (B, 7, H, W)
    assert x.shape == (B, 7, 4, 4) and inputs["video"].cond == {}
    i1, i2 = frame_index(video, x[:, 0:3]), frame_index(video, x[:, 3:6])
    assert (i1 >= 0).all() and (i2 >= i1).all()  # both are clip frames, sorted
    dt = x[:, 6]
    assert (dt == dt[:, :1, :1]).all()  # a constant plane per pair
    torch.testing.assert_close(dt[:, 0, 0], (i2 - i1).float() / (N - 1), rtol=0, atol=0)
    # the release's index distribution: mean gap, and f0 ~ floor(16 Beta(2,1)) is the larger
    # of the two draws more often than not (E[i1] = 15 - E[i2] by symmetry of the two Betas)
    gap = (i2 - i1).float()
    assert gap.mean().item() == pytest.approx(
        digan_real_gap_mean(), abs=4 * gap.std().item() / B**0.5
    )
    assert (i1 + i2).float().mean().item() == pytest.approx(N - 1, abs=0.3)


def test_image_d_sees_both_frames_of_each_pair_in_b_t_order():
    B = 5
    video = noise_clips(B, seed=1)
    labels = torch.tensor([0, 2, 1, 1, 0])
    inputs = make_recipe(num_classes=3).real_inputs(video, {"label": labels}, rand(B, 3))
    x, img = inputs["video"].x, inputs["image"].x
    assert img.shape == (2 * B, 3, 4, 4)
    torch.testing.assert_close(img[0::2], x[:, 0:3], rtol=0, atol=0)  # (b t): frame t1 first
    torch.testing.assert_close(img[1::2], x[:, 3:6], rtol=0, atol=0)
    assert torch.equal(inputs["video"].cond["labels"], labels)
    assert torch.equal(inputs["image"].cond["labels"], torch.tensor([0, 0, 2, 2, 1, 1, 1, 1, 0, 0]))


def test_both_frames_of_a_pair_share_the_augmentation():
    """A clip of identical frames gives identical augmented pair frames, yet it was augmented."""
    B = 64
    image = torch.rand(B, 3, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    video = image.expand(-1, -1, N, -1, -1)
    recipe = make_recipe(augment="color,translation")
    inputs = recipe.real_inputs(video, {"label": torch.zeros(B, dtype=torch.long)}, rand(B, 5))
    x = inputs["video"].x
    torch.testing.assert_close(x[:, 0:3], x[:, 3:6], rtol=0, atol=0)
    changed = (x[:, 0:3] - image[:, :, 0]).flatten(1).abs().amax(1) > 1e-3
    assert changed.all()  # colour jitter alone changes every clip
    # the parameters differ between pairs: brightness shifts are spread out
    shift = (x[:, 0:3] - image[:, :, 0]).mean(dim=(1, 2, 3))
    assert shift.std() > 0.1
    # the image D gets the same augmented frames
    torch.testing.assert_close(inputs["image"].x[0::2], x[:, 0:3], rtol=0, atol=0)


class TimeG(VideoGenerator):
    """A stand-in generator whose frame at time t is the constant image t (reads times back)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(()))

    def sample_latents(self, batch, *, n_frames=16, generator=None, labels=None) -> Latents:
        z = torch.randn(batch, 2, generator=generator)
        return Latents(content=z[:, :1], motion=z[:, 1:], labels=labels)

    def frame_times(self, n_frames: int) -> Tensor:
        return torch.arange(n_frames) / (N - 1)

    def forward(self, z_content, z_motion, t, *, labels=None, noise=None) -> Tensor:
        t = expand_times(t, z_content.shape[0])  # (B, T)
        return t[:, None, :, None, None].expand(-1, 3, -1, 4, 4) + self.bias


def test_fake_pairs_are_rendered_at_sorted_beta_times():
    B = 4000
    inputs = make_recipe().fake_inputs(TimeG(), rand(B, 7))
    x = inputs["video"].x
    t1, t2, dt = x[:, 0, 0, 0], x[:, 3, 0, 0], x[:, 6, 0, 0]
    assert (t1 >= 0).all() and (t1 <= t2).all() and (t2 <= 1).all()
    torch.testing.assert_close(dt, t2 - t1, rtol=0, atol=1e-7)
    # sorted (Beta(2,1), Beta(1,2)) draws: E[min] = int (1 - x^2)(1 - x)^2 dx = 0.3, E[max] = 0.7
    assert t1.mean().item() == pytest.approx(0.3, abs=0.015)
    assert t2.mean().item() == pytest.approx(0.7, abs=0.015)
    on_grid = ((t1 * (N - 1)) - (t1 * (N - 1)).round()).abs() < 1e-4
    assert on_grid.float().mean() < 0.01  # continuous times, not frame-grid times
    torch.testing.assert_close(inputs["image"].x[1::2, :, 0, 0], x[:, 3:6, 0, 0], rtol=0, atol=0)


def test_draws_do_not_depend_on_how_the_batch_is_split():
    """Rows 4..7 of a global batch of 8 see the same pairs as in the whole-batch call."""
    video = noise_clips(8, seed=3)
    recipe = make_recipe(augment="color,translation")
    whole = recipe.real_inputs(video, {}, rand(8, 11))["video"].x
    half = BatchRandom(seed=11, global_batch=8, rows=slice(4, 8))
    part = recipe.real_inputs(video[4:], {}, half)["video"].x
    torch.testing.assert_close(part, whole[4:], rtol=0, atol=0)


def test_clip_spec_and_time_unit_checks():
    cfg = resolve_run_config("digan", preset="digan-tiny").model
    spec = DIGANRecipe.default_clip_spec(cfg)
    assert (spec.frames, spec.size, spec.flip, spec.strides) == (4, 16, True, (1,))
    with pytest.raises(ConfigError, match=r"data\.frames"):
        make_recipe(frames=8)


class Clips(torch.utils.data.Dataset):
    """Tiny videos in [-1, 1]: a bright bar moving down one row per frame on a dark background."""

    def __init__(self, n: int, *, frames: int, size: int, classes: int = 1) -> None:
        self.n, self.frames, self.size, self.classes = n, frames, size, classes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        video = -0.8 + 0.2 * torch.rand(self.frames, 3, self.size, self.size, generator=g)
        start = int(torch.randint(self.size, (), generator=g))
        for k in range(self.frames):
            video[k, :, (start + k) % self.size] = 0.9
        return {"video": video, "label": i % self.classes, "index": i}


@pytest.mark.parametrize("classes", [0, 3])
def test_two_training_steps(tmp_path, classes):
    from vidgan.train.loop import Trainer

    run = resolve_run_config(
        "digan",
        preset="digan-tiny",
        overrides=[
            f"model.num_classes={classes}",
            "train.batch=4",
            "train.steps=2",
            "train.workers=0",
            "train.log_every=1",
            "train.sample_every=0",
            "train.tensorboard=false",
            "train.device=cpu",
        ],
    )
    data = Clips(8, frames=run.data.frames, size=run.data.size, classes=max(classes, 1))
    tr = Trainer(run, outdir=tmp_path, dataset=data, progress=False)
    assert tr.hp.r1_gamma == {"video": 1.0, "image": 0.5} and tr.hp.augment == "color,translation"
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    assert tr.fit() == 0
    rows = [json.loads(s) for s in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert "Loss/R1" in rows[0] and "R1/image" in rows[0]  # lazy R1 ran at step 0
    for r in rows:
        for key in ("Loss/G", "Loss/G/video", "Loss/G/image", "Loss/D"):
            assert math.isfinite(r[key]), (key, r)
        assert r["Loss/G"] == pytest.approx(r["Loss/G/video"] + r["Loss/G/image"], rel=1e-5)
    after = tr.G.state_dict()
    moved = [
        k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])
    ]
    assert any(k.startswith("synthesis.") for k in moved) and any(
        k.startswith("mapping.") for k in moved
    )


def test_r1_on_the_clip_equals_r1_on_the_motion_d_input():
    """The release's R1 differentiates w.r.t. the 7-channel pair input (dt plane included, each
    frame of a pair on its own); the loop differentiates w.r.t. the clip. With the recipe's
    routing the two penalties are equal row by row, ties (i1 == i2) included."""
    B = 512
    w = torch.randn(7, 4, 4, generator=torch.Generator().manual_seed(4))

    def d(x: Tensor) -> Tensor:  # a nonlinear stand-in for the motion D
        return (torch.tanh(2 * x) * w).flatten(1).sum(1)

    def penalties(route: bool) -> tuple[Tensor, Tensor, Tensor]:
        recipe = make_recipe()
        recipe.r1_pair_input = route
        video = noise_clips(B, seed=6).requires_grad_(True)
        x = recipe.real_inputs(video, {}, rand(B, 9))["video"].x
        (g_clip,) = torch.autograd.grad(d(x).sum(), video)
        leaf = x.detach().requires_grad_(True)
        (g_in,) = torch.autograd.grad(d(leaf).sum(), leaf)
        ties = x[:, 0:3].eq(x[:, 3:6]).flatten(1).all(1)
        return g_clip.square().flatten(1).sum(1), g_in.square().flatten(1).sum(1), ties

    clip, inp, ties = penalties(True)
    assert ties.sum() >= 5  # the case where a frame is used twice is exercised
    torch.testing.assert_close(clip, inp, rtol=1e-5, atol=0)
    clip_old, inp_old, _ = penalties(False)  # the loop's plain rule misses the dt plane
    torch.testing.assert_close(inp_old, inp, rtol=0, atol=0)
    missing = (inp_old - clip_old)[~ties] / inp_old[~ties]  # the dt plane's share
    assert (missing > 1e-4).all() and missing.mean() > 0.1
    assert not torch.allclose(clip_old[ties], inp_old[ties], rtol=1e-3)
