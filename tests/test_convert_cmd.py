"""Train a tiny FMR for two steps through the CLI, export the run, sample from both."""

from __future__ import annotations

import torch

from cli_runs import train_tiny_fmr
from vidgan.checkpoint import load_checkpoint
from vidgan.cli import main
from vidgan.sample import sample
from vidgan.train.checkpoint import find_latest


def test_train_export_and_generate_agree(tmp_path, capsys):
    _, run = train_tiny_fmr(tmp_path)
    dst = tmp_path / "tiny.safetensors"
    assert main(["convert", "--from", "run", str(run), str(dst)]) == 0
    assert main(["convert", "--from", "run", str(run), str(dst)]) == 2  # never overwrites
    assert "--force" in capsys.readouterr().err

    from_run, from_file = load_checkpoint(run), load_checkpoint(dst)
    assert from_file.provenance["step"] == 2
    g = torch.Generator().manual_seed(0)
    a = sample(from_run.generator, 2, n_frames=4, generator=g).videos
    b = sample(from_file.generator, 2, n_frames=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b.videos, rtol=0, atol=0)
    # the file holds exactly G_ema of the newest checkpoint (not G, not a fresh model)
    ckpt = find_latest(run / "checkpoints")
    for key, value in from_file.generator.state_dict().items():
        assert torch.equal(value, ckpt.tensors["G_ema"][key]), key
    assert any(
        not torch.equal(ckpt.tensors["G"][k], ckpt.tensors["G_ema"][k]) for k in ckpt.tensors["G"]
    )
