"""Run the tiny model under torchrun (used by test_train_ddp.py): OUTDIR [key=value ...]."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_tiny

from vidgan.train.dist import init_distributed, shutdown

if __name__ == "__main__":
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    try:
        train_tiny.make_trainer(sys.argv[1], *sys.argv[2:], env=env).fit()
    finally:
        shutdown(env)
