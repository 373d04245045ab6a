"""Video I/O: mp4 / gif / png-frame read and write, grids, the float -> uint8 convention."""

from vidgan.io.grid import make_grid
from vidgan.io.video import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    as_thwc_uint8,
    natural_key,
    read_video,
    to_uint8,
    write_image,
    write_video,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "as_thwc_uint8",
    "make_grid",
    "natural_key",
    "read_video",
    "to_uint8",
    "write_image",
    "write_video",
]
