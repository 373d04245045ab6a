"""Data: frame folders / zips / video files as clip datasets, frame pairs, the FMR toy set.

from vidgan.data import ClipSpec, open_dataset
ds = open_dataset("ucf101/train", ClipSpec(frames=16, stride=(2, 3), size=64, flip=True))
"""

from vidgan.data import pairs, toy
from vidgan.data.clips import ClipSpec, clip_indices, clip_rng, clip_span, sample_clip
from vidgan.data.dataset import VideoDataset, open_dataset
from vidgan.data.sources import open_source

__all__ = [
    "ClipSpec",
    "VideoDataset",
    "clip_indices",
    "clip_rng",
    "clip_span",
    "open_dataset",
    "open_source",
    "pairs",
    "sample_clip",
    "toy",
]
