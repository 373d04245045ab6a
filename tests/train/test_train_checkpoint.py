"""Checkpoint files: atomic writes, verification, pruning, optimizer round trip, bad resumes."""

import errno
import json

import pytest
import safetensors.torch
import torch
from train_tiny import OTHER, make_trainer, state_close

from vidgan.errors import CheckpointError, DataError
from vidgan.train import checkpoint as ck


def test_optimizer_state_round_trip_continues_identically():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 4)).square().mean().backward()
        opt.step()
    tensors, meta = ck.flatten_optimizer(opt.state_dict())
    meta = json.loads(json.dumps(meta))  # through JSON and bytes, as in a checkpoint
    tensors = safetensors.torch.load(safetensors.torch.save(tensors))
    net2 = torch.nn.Linear(4, 3)
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.Adam(net2.parameters(), lr=1.0)
    opt2.load_state_dict(ck.unflatten_optimizer(tensors, meta))
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.0, 0.99)
    x = torch.randn(5, 4)
    for o, n in ((opt, net), (opt2, net2)):
        o.zero_grad()
        n(x).square().mean().backward()
        o.step()
    assert state_close(net.state_dict(), net2.state_dict()) == 0.0


def test_save_verify_prune_and_truncation(tmp_path):
    root = tmp_path / "ckpt"
    for step in (1, 2, 3, 4):
        ck.save_checkpoint(
            root, step, tensors={"w": {"a": torch.full((3,), float(step))}}, state={"step": step}
        )
    data = ck.read_checkpoint(root / "step-00000004")
    assert data.step == 4 and torch.equal(data.tensors["w"]["a"], torch.full((3,), 4.0))
    ck.prune_checkpoints(root, keep_last=2, keep=[root / "step-00000001"])
    assert [s for s, _ in ck.list_checkpoints(root)] == [4, 3, 1]
    # truncate the newest: auto resume passes over it with a warning
    f = root / "step-00000004" / "w.safetensors"
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.warns(UserWarning, match="truncated or damaged"):
        latest = ck.find_latest(root)
    assert latest is not None and latest.step == 3
    with pytest.raises(CheckpointError, match="truncated"):
        ck.read_checkpoint(root / "step-00000004")
    (root / "step-00000003" / ck.MARKER).unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        ck.read_checkpoint(root / "step-00000003")


def test_disk_full_during_save_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    root = tmp_path / "ckpt"
    ck.save_checkpoint(root, 1, tensors={"w": {"a": torch.ones(2)}}, state={"step": 1})
    real_write = ck._write_file
    calls = {"n": 0}

    def full(path, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(ck, "_write_file", full)
    with pytest.raises(CheckpointError, match=r"No space left on device.*untouched"):
        ck.save_checkpoint(root, 2, tensors={"w": {"a": torch.ones(2)}}, state={"step": 2})
    assert [p.name for p in root.iterdir()] == ["step-00000001"]  # no partial folder left
    assert ck.read_checkpoint(root / "step-00000001").step == 1


def test_loading_never_unpickles(tmp_path, monkeypatch):
    tr = make_trainer(tmp_path, "train.steps=2", "train.checkpoint_every=2")
    tr.fit()

    def boom(*a, **k):
        raise AssertionError("torch.load must not be used for checkpoints")

    monkeypatch.setattr(torch, "load", boom)
    tr2 = make_trainer(tmp_path, "train.steps=3", resume="auto")
    assert tr2.step == 2
    assert state_close(tr.G_ema.state_dict(), tr2.G_ema.state_dict()) == 0.0
    saved = json.loads((tmp_path / "checkpoints/step-00000002/state.json").read_text())
    assert saved["run"]["model_name"] == "tiny-test" and saved["kimg"] == pytest.approx(0.016)
    assert not any(k.startswith("module.") for k in tr2.G.state_dict())


def test_resume_from_another_model_or_config_is_one_sentence(tmp_path):
    make_trainer(tmp_path, "train.steps=1").fit()
    path = str(tmp_path / "checkpoints" / "step-00000001")
    with pytest.raises(CheckpointError, match="already holds checkpoints; pass --resume auto"):
        make_trainer(tmp_path, "train.steps=1")
    with pytest.raises(CheckpointError, match="model config \\(hidden differ\\)"):
        make_trainer(tmp_path / "b", "train.steps=2", "model.hidden=32", resume=path)

    from train_tiny import SynthClips

    from vidgan.train.config import resolve_run_config
    from vidgan.train.loop import Trainer

    run = resolve_run_config(OTHER, overrides=["train.batch=8", "train.workers=0"])
    with pytest.raises(
        CheckpointError, match="belongs to model 'tiny-test', not 'tiny-test-other'"
    ):
        Trainer(run, outdir=tmp_path / "c", dataset=SynthClips(20), resume=path, progress=False)


def test_bad_outdir_and_too_little_data(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write to --outdir"):
        make_trainer(blocker / "run", "train.steps=1")
    from train_tiny import SynthClips

    with pytest.raises(DataError, match="has 5 clips, fewer than one batch of 8"):
        make_trainer(tmp_path / "run", "train.steps=1", dataset=SynthClips(5))


def test_keep_last_k_plus_the_best_by_metric(tmp_path):
    scores = iter([5.0, 1.0, 3.0, 4.0])  # best (lowest) at the 2nd checkpoint, step 2
    tr = make_trainer(
        tmp_path,
        "train.steps=4",
        "train.checkpoint_every=1",
        "train.keep_last=2",
        "train.best_metric=fake_fvd",
        metrics={"fake_fvd": lambda G: next(scores)},
    )
    tr.fit()
    assert [s for s, _ in ck.list_checkpoints(tmp_path / "checkpoints")] == [4, 3, 2]
    state = ck.read_checkpoint(tmp_path / "checkpoints" / "step-00000004").state
    assert [m["fake_fvd"] for m in state["metrics"]] == [5.0, 1.0, 3.0, 4.0]


def test_auto_resume_passes_over_a_truncated_checkpoint(tmp_path, capsys):
    make_trainer(tmp_path, "train.steps=2", "train.checkpoint_every=1").fit()
    g = tmp_path / "checkpoints" / "step-00000002" / "G.safetensors"
    g.write_bytes(g.read_bytes()[:100])  # an interrupted copy / crash mid-write
    leftover = tmp_path / "checkpoints" / ".tmp-step-00000003-999"
    leftover.mkdir()  # a save that died before its rename
    tr = make_trainer(tmp_path, "train.steps=3", resume="auto")
    assert tr.step == 1
    err = capsys.readouterr().err
    assert "skipping checkpoint" in err and "step-00000002 is truncated" in err
    tr.fit()
    assert not leftover.exists()
    assert ck.read_checkpoint(tmp_path / "checkpoints" / "step-00000003").step == 3
