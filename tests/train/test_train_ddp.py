"""2 CPU processes (gloo) with per-rank batch B end where 1 process with batch 2B ends."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_tiny import FP32, make_trainer, state_close

from vidgan.train.checkpoint import read_checkpoint

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_whole_batch(tmp_path):
    torch.set_num_threads(1)
    # R1 at steps 0 and 2, EMA every step
    args = [FP32, "train.steps=3", "train.checkpoint_every=100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1] / "src")}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(HERE / "train_ddp_worker.py"), str(tmp_path / "ddp"), *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = read_checkpoint(tmp_path / "ddp" / "checkpoints" / "step-00000003")
    assert ddp.state["world_size"] == 2

    single = make_trainer(tmp_path / "one", *args)
    single.fit()
    assert single.local_batch == 8 and ddp.state["run"]["train"]["batch"] == 8
    for name, module in [
        ("G", single.G),
        ("G_ema", single.G_ema),
        *[(f"D.{k}", d) for k, d in single.Ds.items()],
    ]:
        assert state_close(module.state_dict(), ddp.tensors[name]) < 1e-5, name
    # the weights moved: the comparison is not between two untouched inits
    fresh = make_trainer(tmp_path / "fresh", *args)
    assert state_close(fresh.G.state_dict(), ddp.tensors["G"]) > 1e-3
