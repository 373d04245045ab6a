"""`vidgan train` on the command line: dry run, presets, overrides, a short run and its resume."""

import json

import pytest
import torch
from train_tiny import NAME, SynthClips, register

from vidgan.cli import main


@pytest.fixture(autouse=True)
def _tiny_model():
    torch.set_num_threads(1)
    register()


def test_dry_run_prints_the_resolved_config(capsys, tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text(
        f"model_name: {NAME}\nmodel: {{hidden: 8}}\ntrain: {{batch: 16, d_lr: 0.004}}\n"
    )
    rc = main(["train", "--preset", str(preset), "--dry-run", "batch=4", "train.r1_interval=4"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_name"] == NAME and out["model"]["hidden"] == 8
    assert out["train"]["batch"] == 4 and out["train"]["d_lr"] == 0.004  # CLI over preset
    assert out["data"] == {"frames": 4, "size": 8}
    hp = out["resolved"]
    assert hp["r1_interval"] == 4 and hp["d_optim"]["lr"] == 0.004 and hp["g_optim"]["lr"] == 0.01
    assert hp["r1_gamma"] == {"clip": 1.0, "pair": 0.5} and hp["weights"]["pair"] == 0.5
    assert hp["loss"] == "softplus" and hp["augment"] == "color,translation,cutout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", NAME, "train.bacth=4"], "did you mean 'batch'"),
        (["--model", NAME, "bogus=1"], "unknown config key 'bogus'"),
        (["--model", NAME, "frames=3"], "exists in model and data"),
        (["--model", "tiny-tset"], "did you mean 'tiny-test'"),
        (["--model", NAME, "--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
        (["--model", NAME, "train.batch=0"], "train.batch must be >= 1"),
    ],
)
def test_bad_config_is_one_sentence(capsys, args, message):
    assert main(["train", *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow  # ~8 s alone, mostly importing tensorboard and PyAV
def test_train_writes_a_run_folder_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        "vidgan.train.loop.open_training_data", lambda path, clip, **kw: SynthClips(16)
    )
    run = tmp_path / "run"
    common = ["train", "--model", NAME, "--data", "synthetic", "--outdir", str(run)]
    opts = ["train.batch=8", "train.workers=0", "train.sample_every=2", "train.sample_count=4"]
    assert main([*common, *opts, "train.steps=2"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["steps"] == 2 and cfg["model_name"] == NAME
    assert (run / "samples" / "step-00000002.mp4").stat().st_size > 0
    assert list((run / "tb").iterdir())
    assert [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert (run / "checkpoints" / "step-00000002" / "COMPLETE").exists()
    # without --resume the folder is protected; with it the run continues
    assert main([*common, *opts, "train.steps=3"]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main([*common, *opts, "train.steps=3", "--resume", "auto"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert (run / "checkpoints" / "step-00000003").is_dir()
    assert main([*common, "--profile", "1", "train.batch=8", "train.workers=0"]) == 0
    assert "per-step time over 1 steps" in capsys.readouterr().out
