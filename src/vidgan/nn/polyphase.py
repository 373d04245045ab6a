"""Stride-2 transposed 3x3 convolution as four polyphase regular convolutions.

A stride-2 transposed conv with a 3x3 kernel gives output row 2m from taps {0, 2} of input rows
{m, m-1} and row 2m+1 from tap 1 of row m; likewise for columns. The four (row, col) parities are
ordinary convolutions with 2x2, 2x1, 1x2 and 1x1 kernels (9 taps, the same FLOPs), which run
through the fast regular-conv kernels on CPU instead of the slower transposed path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def conv_transpose2d_stride2_polyphase(x: Tensor, weight: Tensor) -> Tensor:
    """F.conv_transpose2d(x, weight, stride=2), weight [Cin, Cout, 3, 3]: H, W -> 2H+1, 2W+1."""
    n, _, h, w = x.shape
    if weight.shape[2:] != (3, 3):
        raise ValueError(f"polyphase path needs a 3x3 kernel, got {tuple(weight.shape)}")
    wt = weight.transpose(0, 1)  # conv2d layout [Cout, Cin, 3, 3]
    even, odd = [2, 0], [1]  # correlation taps: even outputs see rows (m-1, m) via taps (2, 0)
    fmt = (
        torch.channels_last
        if x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
        else torch.contiguous_format
    )
    out = torch.empty(
        (n, wt.shape[0], 2 * h + 1, 2 * w + 1), dtype=x.dtype, device=x.device, memory_format=fmt
    )
    for r0, rows, pr in ((0, even, 1), (1, odd, 0)):
        for c0, cols, pc in ((0, even, 1), (1, odd, 0)):
            k = wt[:, :, rows][:, :, :, cols].contiguous()
            out[:, :, r0::2, c0::2] = F.conv2d(x, k, padding=(pr, pc))
    return out
