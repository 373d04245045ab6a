"""A closed-form generator that follows the contract, for tests of contract-only code."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidgan.models.base import Latents, VideoGenerator, expand_times


class AnalyticGenerator(VideoGenerator):
    """video[b,c,t,y,x] = tanh(content[b,c] + sin(motion[b,c] * t + x - y)); frames independent."""

    def __init__(self, *, size: int = 4, continuous: bool = True) -> None:
        super().__init__()
        self.size = size
        self.scale = nn.Parameter(torch.ones(()))
        if not continuous:
            self.continuous_time = False
            self.supported_lengths = (4, 8)

    def sample_latents(self, batch, *, n_frames=16, generator=None, labels=None) -> Latents:
        z = torch.randn(batch, 6, generator=generator)
        return Latents(content=z[:, :3].to(self.device), motion=z[:, 3:].to(self.device))

    def frame_times(self, n_frames: int) -> Tensor:
        return torch.arange(n_frames, dtype=torch.float32) / 8

    def forward(self, z_content, z_motion, t, *, labels=None, noise=None) -> Tensor:
        b = z_content.shape[0]
        t = expand_times(t, b)  # (B, T)
        grid = torch.arange(self.size, dtype=torch.float32)
        xy = grid[None, :] - grid[:, None]  # (H, W): x - y
        phase = z_motion[:, :, None, None, None] * t[:, None, :, None, None] + xy
        return torch.tanh(self.scale * (z_content[:, :, None, None, None] + torch.sin(phase)))
