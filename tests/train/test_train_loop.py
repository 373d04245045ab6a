"""The training loop on the tiny model: exact resume, split invariance, learning, stops."""

import os
import signal

import pytest
from train_tiny import (
    FP32,
    SynthClips,
    make_trainer,
    mean_brightness,
    read_stats,
    split_gap,
    state_close,
    target_brightness,
    trained_weights,
)

from vidgan.errors import ConfigError
from vidgan.train import checkpoint as ck
from vidgan.train.loop import TrainingDiverged

LOSS_KEYS = ("Loss/G", "Loss/D", "Loss/R1", "R1/clip", "R1/pair")


def test_resume_is_exact(tmp_path):
    """6 steps == 3 steps, stop, resume, 3 more (R1 every 2 steps, EMA with ramp-up, epochs)."""
    straight = make_trainer(tmp_path / "a", "train.steps=6", "train.checkpoint_every=100")
    straight.fit()
    first = make_trainer(tmp_path / "b", "train.steps=3", "train.checkpoint_every=100")
    first.fit()
    second = make_trainer(tmp_path / "b", "train.steps=6", resume="auto")
    assert second.step == 3 and second.batches.state()["epoch"] == 1
    second.fit()
    assert state_close(trained_weights(straight), trained_weights(second)) < 1e-6
    a, b = read_stats(tmp_path / "a"), read_stats(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b, strict=True):
        for k in LOSS_KEYS:
            assert (k in ra) == (k in rb)
            if k in ra:
                assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-7), (ra["step"], k)
    assert "Loss/R1" in a[2] and "Loss/R1" not in a[3]  # R1 ran at steps 0, 2, 4 (rows 1, 3, 5)
    assert a[5]["EMA/beta"] > 0  # the EMA took part


def test_accumulation_equals_the_whole_batch(tmp_path):
    gap, _ = split_gap(tmp_path)
    assert gap < 1e-5
    with pytest.raises(ConfigError, match="divisible"):
        make_trainer(tmp_path / "c", "train.steps=1", "train.accumulate=3")


def test_loop_learns_the_mean_brightness(tmp_path):
    ds = SynthClips(24)
    tr = make_trainer(tmp_path, "train.steps=40", "train.checkpoint_every=100", dataset=ds)
    target = target_brightness(ds)
    before = abs(mean_brightness(tr.G_ema) - target)
    tr.fit()
    after = abs(mean_brightness(tr.G_ema) - target)
    assert before > 0.3 and after < 0.5 * before


class Poisoned(SynthClips):
    def __getitem__(self, i):
        item = super().__getitem__(i)
        if self.epoch >= 1:  # from step 3 on (2 batches per epoch)
            item["video"] = item["video"] * float("nan")
        return item


@pytest.mark.parametrize("amp", [False, True])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, amp):
    tr = make_trainer(
        tmp_path,
        f"train.amp={str(amp).lower()}",
        "train.steps=10",
        "train.checkpoint_every=2",
        dataset=Poisoned(16),
    )
    with pytest.raises(
        TrainingDiverged, match=r"Loss/D.* became nan at step 2 .*step-00000002"
    ) as e:
        tr.fit()
    # under bf16 autocast the message names the fp32 way out
    assert ("train.amp=false" in str(e.value)) is amp
    assert [s for s, _ in ck.list_checkpoints(tmp_path / "checkpoints")] == [2]
    assert ck.read_checkpoint(tmp_path / "checkpoints" / "step-00000002").step == 2


def test_sigint_finishes_the_step_saves_and_exits_0(tmp_path, capsys):
    class Interrupting(SynthClips):
        calls = 0

        def __getitem__(self, i):
            Interrupting.calls += 1
            if Interrupting.calls == 8 * 2 + 1:  # while loading the 3rd batch
                os.kill(os.getpid(), signal.SIGINT)
            return super().__getitem__(i)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under a background CI shell
    tr = make_trainer(
        tmp_path,
        "train.steps=50",
        dataset=Interrupting(24),
        resume_hint="vidgan train ... --resume auto",
    )
    assert tr.fit() == 0
    assert tr.step == 3
    out = capsys.readouterr().out
    assert "stopped by SIGINT at step 3" in out and "--resume auto" in out
    assert ck.read_checkpoint(tmp_path / "checkpoints" / "step-00000003").step == 3
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_bf16_autocast_and_channels_last_track_the_plain_run(tmp_path):
    plain = make_trainer(tmp_path / "a", FP32, "train.steps=2", "train.checkpoint_every=100")
    plain.fit()
    cl = make_trainer(
        tmp_path / "b",
        FP32,
        "train.steps=2",
        "train.channels_last=true",
        "train.checkpoint_every=100",
    )
    cl.fit()
    assert state_close(trained_weights(plain), trained_weights(cl)) < 1e-5
    amp = make_trainer(
        tmp_path / "c", "train.steps=2", "train.amp=true", "train.checkpoint_every=100"
    )
    amp.fit()
    a, c = read_stats(tmp_path / "a"), read_stats(tmp_path / "c")
    for k in ("Loss/G", "Loss/D"):
        assert c[-1][k] == pytest.approx(a[-1][k], abs=0.05)
    assert 0 < state_close(trained_weights(plain), trained_weights(amp)) < 0.1


def test_profile_prints_a_breakdown_and_writes_nothing(tmp_path, capsys):
    tr = make_trainer(tmp_path / "run", "train.steps=100", profile=2)
    assert tr.fit() == 0 and tr.step == 2
    out = capsys.readouterr().out
    for phase in ("data", "G forward", "G step", "D step", "R1", "EMA", "total"):
        assert f"  {phase} " in out
    assert not (tmp_path / "run").exists()
