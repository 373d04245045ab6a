"""vidgan: continuous-time video GANs (DIGAN, FMR, G3AN) in one PyTorch library.

Tensors are `[B, C, T, H, W]` videos in [-1, 1]; every generator follows the contract in
`vidgan.models.base`. See README.md for the command line and the Python API.
"""

__version__ = "0.1.0"
