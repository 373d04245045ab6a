"""G3AN's training recipe: what its image and video discriminators see, and a 2-step run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import Tensor

from vidgan.data.clips import ClipSpec
from vidgan.errors import ConfigError
from vidgan.models.g3an import G3ANGenerator
from vidgan.recipes.g3an import G3ANRecipe
from vidgan.train.config import resolve_run_config
from vidgan.train.recipe import BatchRandom


def tiny_cfg(**overrides: str):
    return resolve_run_config(
        "g3an", preset="g3an-tiny", overrides=[f"model.{k}={v}" for k, v in overrides.items()]
    ).model


def make_recipe(*, num_classes: int = 0, clip: ClipSpec | None = None) -> G3ANRecipe:
    cfg = tiny_cfg()
    return G3ANRecipe(
        model_cfg=cfg,
        clip=clip or G3ANRecipe.default_clip_spec(cfg),
        d_names=("image", "video"),
        num_classes=num_classes,
    )


def rand(batch: int, seed: int = 0) -> BatchRandom:
    return BatchRandom(seed=seed, global_batch=batch, rows=slice(0, batch))


def frame_index(video: Tensor, frames: Tensor) -> Tensor:
    """For each row b, the k with video[b, :, k] == frames[b] exactly (-1 when none matches)."""
    hit = (video == frames[:, :, None]).flatten(3).all(dim=3).all(dim=1)  # (B, T)
    assert (hit.sum(1) <= 1).all()
    return torch.where(hit.any(1), hit.float().argmax(1), torch.full((len(hit),), -1))


def test_real_inputs_clip_for_video_d_and_one_of_its_frames_for_image_d():
    B, T = 1600, 16
    # small frames: the recipe never looks at the size, and the Ds are not called here
    video = torch.rand(B, 3, T, 2, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(B) % 5
    inputs = make_recipe(num_classes=5).real_inputs(video, {"label": labels}, rand(B))
    assert set(inputs) == {"image", "video"}
    assert inputs["video"].x is video  # no augmentation: the clip itself
    k = frame_index(video, inputs["image"].x)
    assert (k >= 0).all()
    counts = torch.bincount(k, minlength=T).float()  # one uniform frame per clip: ~100 each
    assert counts.min() > 60 and counts.max() < 140
    for name in ("image", "video"):
        assert torch.equal(inputs[name].cond["labels"], labels)
    assert make_recipe().real_inputs(video[:2], {"label": labels[:2]}, rand(2))["image"].cond == {}


def test_fake_inputs_are_a_generated_clip_and_one_of_its_frames():
    torch.manual_seed(0)
    G = G3ANGenerator(tiny_cfg(num_classes="3")).eval()
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        inputs = make_recipe(num_classes=3).fake_inputs(G, rand(2, 4), labels)
    video = inputs["video"].x
    assert video.shape == (2, 3, 16, 64, 64) and torch.isfinite(video).all()
    assert (frame_index(video, inputs["image"].x) >= 0).all()
    assert torch.equal(inputs["image"].cond["labels"], labels)
    # the labels reach G: other labels, other videos from the same draws
    with torch.no_grad():
        other = make_recipe(num_classes=3).fake_inputs(G, rand(2, 4), torch.tensor([1, 1]))
    assert not torch.allclose(other["video"].x, video)


def test_clip_spec_and_geometry_checks():
    spec = G3ANRecipe.default_clip_spec(tiny_cfg())
    assert (spec.frames, spec.strides, spec.size, spec.offset, spec.flip) == (
        16, (2, 3), 64, "random", False,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"data\.frames"):
        make_recipe(clip=ClipSpec(frames=17, stride=(2, 3), size=64))
    with pytest.raises(ConfigError, match=r"data\.size"):
        make_recipe(clip=ClipSpec(frames=16, size=32))
    make_recipe(clip=ClipSpec(frames=20, stride=2, size=64))  # T0 = 2 is a G3AN length


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
            video[k, :, (start + 2 * k) % self.size] = 0.9
        return {"video": video, "label": i % self.classes, "index": i}


@pytest.mark.slow
def test_two_training_steps_conditional(tmp_path):
    from vidgan.train.loop import Trainer

    run = resolve_run_config(
        "g3an",
        preset="g3an-tiny",
        overrides=[
            "model.num_classes=3",
            "train.batch=2",
            "train.steps=2",
            "train.workers=0",
            "train.log_every=1",
            "train.sample_every=0",
            "train.tensorboard=false",
            "train.device=cpu",
        ],
    )
    tr = Trainer(
        run, outdir=tmp_path, dataset=Clips(4, frames=16, size=64, classes=3), progress=False
    )
    hp = tr.hp
    assert (hp.loss, hp.r1_interval, hp.ema_kimg, hp.augment) == ("bce", 0, 0.0, "")
    assert hp.d_optim_scaled.lr == 2e-4 and hp.d_optim_scaled.betas == (0.5, 0.999)
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    assert tr.fit() == 0
    rows = [json.loads(s) for s in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "Loss/R1" not in rows[0]
    for r in rows:
        for key in ("Loss/G/video", "Loss/G/image", "Loss/D/video", "Loss/D/image"):
            assert math.isfinite(r[key]), (key, r)
        assert r["EMA/beta"] == 0.0
    after = tr.G.state_dict()
    assert not torch.equal(before["label_embed.weight"], after["label_embed.weight"])
    assert not torch.equal(before["to_rgb.weight"], after["to_rgb.weight"])
    for k, v in tr.G_ema.state_dict().items():  # no EMA: G_ema is G
        assert torch.equal(v, after[k]), k
