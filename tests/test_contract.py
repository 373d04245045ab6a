"""The Generator contract, checked on every registered model at its `<name>-tiny` preset.

Sampling, metrics, training and the CLI only use `sample_latents`, `frame_times`, `forward`
(`generate`) and `check_length`; these tests hold every model to what they rely on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from vidgan.checkpoint import load_checkpoint, read_model_file, save_model_file
from vidgan.config import from_dict, load_preset
from vidgan.errors import VidganError
from vidgan.models.base import VideoGenerator
from vidgan.models.registry import get_model, load_models
from vidgan.train.config import RunConfig, resolve_run_config

NAMES = load_models()
OTHER_LENGTHS = (3, 7, 33)  # any length for continuous-time models; errors for discrete ones
# bf16 autocast vs fp32 on the same latents: mean |error| within 5% of the output's std and the
# worst pixel within 10% of its largest magnitude (bf16 keeps 8 significant bits; measured on the
# tiny presets: 2% / 5% for DIGAN, 1.3% / 2% for FMR, 0.3% / 0.7% for G3AN).
BF16_MEAN_REL, BF16_MAX_REL = 0.05, 0.10


@dataclass
class Case:
    name: str
    run: RunConfig
    G: VideoGenerator  # eval mode, seeded init

    @property
    def frames(self) -> int:
        return int(self.run.data.frames)

    @property
    def size(self) -> int:
        return int(self.run.data.size)

    def latents(self, batch: int = 2, seed: int = 0, n_frames: int | None = None) -> Any:
        gen = torch.Generator().manual_seed(seed)
        return self.G.sample_latents(batch, n_frames=n_frames or self.frames, generator=gen)

    def render(self, latents: Any, n_frames: int | None = None, G: VideoGenerator | None = None):
        G = G or self.G
        with torch.no_grad():
            return G.generate(latents, G.frame_times(n_frames or self.frames))


@pytest.fixture(scope="module", params=NAMES)
def case(request) -> Case:
    name = request.param
    torch.manual_seed(0)
    run = resolve_run_config(name, preset=f"{name}-tiny")
    G = get_model(name).build_generator(run.model).eval()
    return Case(name, run, G)


def test_every_model_has_a_tiny_preset_and_a_recipe():
    for name in NAMES:
        assert load_preset(f"{name}-tiny")["model_name"] == name
        assert get_model(name).recipe is not None, name


def test_output_shape_and_values(case):
    video = case.render(case.latents())
    assert video.shape == (2, 3, case.frames, case.size, case.size)
    assert video.dtype == torch.float32 and torch.isfinite(video).all()
    assert video.std() > 1e-3  # not a constant image
    assert not torch.allclose(video[0], video[1])  # two latents, two videos


def test_a_seeded_generator_fixes_the_video(case):
    a, b = case.render(case.latents(seed=5)), case.render(case.latents(seed=5))
    assert torch.equal(a, b)
    assert not torch.allclose(a, case.render(case.latents(seed=6)))


def test_batch_of_two_equals_two_batches_of_one(case):
    lat = case.latents(seed=2)
    both = case.render(lat)
    one = torch.cat([case.render(lat.select([0])), case.render(lat.select([1]))])
    torch.testing.assert_close(both, one, rtol=0, atol=1e-4)


def test_model_file_round_trip(case, tmp_path):
    path = save_model_file(
        tmp_path / f"{case.name}.safetensors",
        model_name=case.name,
        config=case.run.model,
        generator=case.G.state_dict(),
    )
    loaded = load_checkpoint(path)
    assert loaded.spec.name == case.name
    lat = case.latents(seed=3)
    assert torch.equal(case.render(lat), case.render(lat, G=loaded.generator))


def test_model_file_keeps_the_config(case, tmp_path):
    path = tmp_path / f"{case.name}.safetensors"
    save_model_file(path, model_name=case.name, config=case.run.model, generator={})
    meta = json.loads(read_model_file(path)[0]["config"])
    assert from_dict(get_model(case.name).config_cls, meta) == case.run.model


def test_bf16_autocast_is_close_to_fp32(case):
    lat = case.latents(seed=4)
    ref = case.render(lat)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = case.render(lat)
    assert low.shape == ref.shape and torch.isfinite(low).all()
    err = (low.float() - ref).abs()
    assert err.max() > 0  # autocast did reach the model
    assert err.mean() <= BF16_MEAN_REL * ref.std()
    assert err.max() <= BF16_MAX_REL * ref.abs().max()


def test_any_length_or_a_clear_length_error(case):
    G = case.G
    if G.continuous_time:
        lat = case.latents(seed=7, n_frames=max(OTHER_LENGTHS))
        longest = case.render(lat, max(OTHER_LENGTHS))
        for n in OTHER_LENGTHS:
            G.check_length(n)
            video = case.render(lat, n)
            assert video.shape == (2, 3, n, case.size, case.size) and torch.isfinite(video).all()
            # frame k sits at the same time in every length, so it is the same frame
            torch.testing.assert_close(video, longest[:, :, :n], rtol=0, atol=1e-5)
        with torch.no_grad():  # any real times, unsorted and off the frame grid
            odd = G.generate(lat, torch.tensor([0.37, -0.2, 1.9]))
        assert odd.shape[2] == 3 and torch.isfinite(odd).all()
        return
    assert G.supported_lengths, "a discrete-time model must list its lengths"
    for n in OTHER_LENGTHS:
        if n in G.supported_lengths:
            continue
        with pytest.raises(VidganError, match=str(n)):
            G.check_length(n)
        with pytest.raises(VidganError):
            G.sample_latents(1, n_frames=n)
    other = next(n for n in G.supported_lengths if n != case.frames)
    video = case.render(case.latents(1, n_frames=other), other)
    assert video.shape == (1, 3, other, case.size, case.size) and torch.isfinite(video).all()


class Clips(torch.utils.data.Dataset):
    """Tiny videos in [-1, 1]: a bright bar moving down one row per frame on a dark background."""

    def __init__(self, n: int, *, frames: int, size: int) -> None:
        self.n, self.frames, self.size = n, frames, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        video = -0.8 + 0.2 * torch.rand(self.frames, 3, self.size, self.size, generator=g)
        start = int(torch.randint(self.size, (), generator=g))
        for k in range(self.frames):
            video[k, :, (start + k) % self.size] = 0.9
        return {"video": video, "label": 0, "index": i}


def _float_state(module: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if v.is_floating_point()}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_two_training_steps(name, tmp_path):
    from vidgan.train.loop import Trainer

    base = resolve_run_config(name, preset=f"{name}-tiny")
    run = resolve_run_config(
        name,
        preset=f"{name}-tiny",
        overrides=[
            "train.batch=2",
            "train.steps=2",
            "train.workers=0",
            "train.log_every=1",
            "train.sample_every=0",
            "train.tensorboard=false",
            "train.device=cpu",
        ],
    )
    data = Clips(4, frames=base.data.frames, size=base.data.size)
    tr = Trainer(run, outdir=tmp_path, dataset=data, progress=False)
    before = _float_state(tr.G)
    assert tr.fit() == 0
    rows = [json.loads(s) for s in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        losses = {k: v for k, v in r.items() if k.startswith("Loss/")}
        assert {"Loss/G", "Loss/D"} <= set(losses)
        assert all(math.isfinite(v) for v in losses.values()), losses
    after = _float_state(tr.G)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors moved"
