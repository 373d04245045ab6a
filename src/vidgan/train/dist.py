"""Device choice and torch.distributed plumbing (torchrun env vars; gloo on CPU, NCCL on CUDA).

The same code path runs as one plain process (world size 1, no process group) and as N
processes under `torchrun --nproc_per_node N -m vidgan train ...`. Gradients are averaged with
one flat all-reduce per network after backward instead of wrapping modules in DDP: a GAN step
runs G under several losses and R1 needs double backward, which DDP's hooks handle badly
(StyleGAN2-ADA does the same).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from vidgan.errors import ConfigError


def pick_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """ "auto" -> CUDA (this rank's GPU) when present, else CPU; other names are checked."""
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"train.device {name!r} is not a device name (try auto or cpu)."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device {name!r} asks for CUDA, but no CUDA device is present."
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: rank among world_size, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Read torchrun's env vars (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank=local)
    if world > 1 and not torch_dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch_dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world, local_rank=local, device=dev)


def shutdown(env: DistEnv) -> None:
    if env.distributed and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        torch_dist.barrier()


def broadcast_module(module: nn.Module, env: DistEnv) -> None:
    """Copy rank 0's parameters and buffers to every rank (same start everywhere)."""
    if not env.distributed:
        return
    for t in [*module.parameters(), *module.buffers()]:
        torch_dist.broadcast(t.data, src=0)


def average_gradients(params: Iterable[nn.Parameter], env: DistEnv, extra: Tensor) -> Tensor:
    """Average grads over ranks in one flat all-reduce; `extra` (losses) rides along.

    Returns `extra` averaged over ranks.
    """
    params = [p for p in params if p.requires_grad]
    if not env.distributed:
        return extra
    # a parameter without grad has none on every rank (same graph): it is sent as zeros, kept None
    flat = [
        p.grad.flatten() if p.grad is not None else torch.zeros_like(p).flatten() for p in params
    ]
    buf = torch.cat([*flat, extra.flatten().to(params[0].dtype if params else extra.dtype)])
    torch_dist.all_reduce(buf, op=torch_dist.ReduceOp.SUM)
    buf /= env.world_size
    offset = 0
    for p in params:
        n = p.numel()
        if p.grad is not None:
            p.grad.copy_(buf[offset : offset + n].view_as(p))
        offset += n
    return buf[offset:].view_as(extra).to(extra.dtype)


def all_reduce_max(value: float, env: DistEnv) -> float:
    """The largest `value` over ranks (used to agree on stopping)."""
    if not env.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=env.device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return float(t.item())
