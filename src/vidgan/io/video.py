"""Read and write videos: mp4 (H.264 via PyAV), gif (Pillow) and folders of png frames.

Two in-memory layouts are accepted everywhere: uint8 `[T, H, W, 3]` (what decoders return) and
float `[3, T, H, W]` in [-1, 1] (one video of a model batch `[B, 3, T, H, W]`). Floats map to
uint8 with the StyleGAN-V / FVD convention `(x * 127.5 + 128).clamp(0, 255)` (see `to_uint8`).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidgan.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")

ArrayLike = np.ndarray | torch.Tensor


def natural_key(name: str) -> list[object]:
    """Sort key that orders embedded numbers by value: frame2 before frame10."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def to_uint8(video: ArrayLike) -> ArrayLike:
    """Map floats in [-1, 1] to uint8 as the official code does: (x*127.5+128).clamp(0,255).

    Exact inverse of `x = u / 127.5 - 1` (u + 0.5 truncates back to u). Keeps the container type
    (numpy in, numpy out) and the layout.
    """
    if isinstance(video, np.ndarray):
        if video.dtype == np.uint8:
            return video
        return np.clip(video.astype(np.float32) * 127.5 + 128.0, 0, 255).astype(np.uint8)
    if video.dtype == torch.uint8:
        return video
    return (video.float() * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)


def as_thwc_uint8(video: ArrayLike) -> np.ndarray:
    """uint8 `[T, H, W, 3]` numpy from uint8 `[T, H, W, 3]` or float `[3, T, H, W]` in [-1, 1]."""
    arr = video.detach().cpu() if isinstance(video, torch.Tensor) else video
    if isinstance(arr, torch.Tensor):
        arr = arr.numpy()
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
            raise DataError(f"a uint8 video must be [T, H, W, 3], got shape {tuple(arr.shape)}.")
        return np.ascontiguousarray(np.broadcast_to(arr, (*arr.shape[:3], 3)))
    if arr.ndim != 4 or arr.shape[0] not in (1, 3):
        raise DataError(f"a float video must be [3, T, H, W] in [-1, 1], got {tuple(arr.shape)}.")
    u8 = to_uint8(arr)
    u8 = np.broadcast_to(u8, (3, *u8.shape[1:]))
    return np.ascontiguousarray(u8.transpose(1, 2, 3, 0))  # (T, H, W, 3)


def _as_hwc_uint8(image: ArrayLike) -> np.ndarray:
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype == np.uint8:
        if arr.ndim == 2:
            arr = arr[..., None].repeat(3, -1)
        if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
            raise DataError(f"a uint8 image must be [H, W, 3], got shape {tuple(arr.shape)}.")
        return np.ascontiguousarray(arr)
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise DataError(f"a float image must be [3, H, W] in [-1, 1], got {tuple(arr.shape)}.")
    u8 = np.broadcast_to(to_uint8(arr), (3, *arr.shape[1:]))
    return np.ascontiguousarray(u8.transpose(1, 2, 0))


def write_image(path: str | Path, image: ArrayLike) -> Path:
    """Write one image (uint8 `[H, W, 3]` or float `[3, H, W]` in [-1, 1]); format from suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_as_hwc_uint8(image)).save(path)
    return path


def write_video(
    path: str | Path, video: ArrayLike, fps: float = 8.0, *, crf: int = 18, loop: bool = True
) -> Path:
    """Write a video as .mp4 (H.264, yuv420p), .gif, or a folder of png frames (no suffix).

    mp4 needs even sizes for yuv420p: odd sizes are padded by repeating the last row/column.
    `crf` is the H.264 quality (lower is better; 18 is visually lossless).
    """
    with VideoWriter(path, fps, crf=crf, loop=loop) as writer:
        writer.write(video)
    return writer.path


class VideoWriter:
    """Write a video piece by piece, so a long one never has to be in memory at once.

    Same formats and pixels as `write_video` (.mp4/.mkv/.mov streamed through H.264, a folder of
    png frames for no suffix); .gif has no streaming encoder here, so it keeps the uint8 frames
    until `close`. Use as a context manager; `write` takes uint8 `[T, H, W, 3]` or float
    `[3, T, H, W]` in [-1, 1] pieces of any length.
    """

    def __init__(
        self, path: str | Path, fps: float = 8.0, *, crf: int = 18, loop: bool = True
    ) -> None:
        self.path = Path(path)
        self.fps, self.crf, self.loop = fps, crf, loop
        self.suffix = self.path.suffix.lower()
        if self.suffix not in ("", ".gif", ".mp4", ".mkv", ".mov"):
            raise DataError(
                f"cannot write video {self.path}: unknown suffix {self.suffix!r} "
                "(use .mp4, .gif or none)."
            )
        self.count = 0
        self._gif: list[np.ndarray] = []
        self._container = self._stream = None
        self._size: tuple[int, int] | None = None
        if self.suffix == "":
            self.path.mkdir(parents=True, exist_ok=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.suffix not in ("", ".gif"):
            # the codec libraries (~16 MB resident) load now, before the caller renders its
            # first chunk, so they do not add to the peak of every later chunk only
            import av  # noqa: F401

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, piece: ArrayLike) -> None:
        """Append the frames of `piece` (all pieces of one video must share H and W)."""
        frames = as_thwc_uint8(piece)
        if self._size is None:
            self._size = frames.shape[1:3]
        elif frames.shape[1:3] != self._size:
            raise DataError(f"{self.path}: frame size changed from {self._size} mid-video.")
        if self.suffix == "":
            for k, frame in enumerate(frames):
                Image.fromarray(frame).save(self.path / f"{self.count + k:06d}.png")
        elif self.suffix == ".gif":
            self._gif.extend(frames)
        else:
            self._encode(frames)
        self.count += len(frames)

    def _encode(self, frames: np.ndarray) -> None:
        import av

        h, w = self._size
        ph, pw = h + h % 2, w + w % 2
        if (ph, pw) != (h, w):
            frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        if self._container is None:
            self._container = av.open(str(self.path), mode="w")
            rate = Fraction(self.fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = pw, ph
            self._stream.pix_fmt = "yuv420p"
            # rc-lookahead 8 (medium: 40): a 16-frame clip fills x264's lookahead, so the
            # encoder's memory is the same for any longer video (flat chunked generation)
            self._stream.options = {"crf": str(self.crf), "preset": "medium", "rc-lookahead": "8"}
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in self._stream.encode(vf):
                self._container.mux(packet)

    def close(self) -> Path:
        """Finish the file (flush the encoder / save the gif); returns its path."""
        if self.suffix == "":
            for old in self.path.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
                if int(old.stem) >= self.count:
                    old.unlink()  # frames of a longer video written here before
        elif self.suffix == ".gif" and self._gif:
            images = [Image.fromarray(f) for f in self._gif]
            images[0].save(
                self.path,
                save_all=True,
                append_images=images[1:],
                duration=max(1, round(1000 / self.fps)),
                loop=0 if self.loop else 1,
                optimize=False,
            )
            self._gif = []
        elif self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
        return self.path


def read_video(path: str | Path) -> np.ndarray:
    """Decode a whole video file (any PyAV format, gif) or a folder of frames to uint8 [T,H,W,3]."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"video {path} does not exist.")
    if path.is_dir():
        names = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: natural_key(p.name),
        )
        if not names:
            raise DataError(f"frame folder {path} holds no image files.")
        frames = []
        for p in names:
            try:
                with Image.open(p) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except OSError as e:
                raise DataError(f"frame {p} is corrupt or truncated ({e}).") from None
        if len({f.shape for f in frames}) > 1:
            raise DataError(
                f"frame folder {path} mixes frame sizes {sorted({f.shape for f in frames})}."
            )
        return np.stack(frames)
    if path.suffix.lower() == ".gif":
        try:
            with Image.open(path) as im:
                frames = []
                for k in range(getattr(im, "n_frames", 1)):
                    im.seek(k)
                    frames.append(np.asarray(im.convert("RGB")))
        except OSError as e:
            raise DataError(f"gif {path} is corrupt or truncated ({e}).") from None
        return np.stack(frames)
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError, ValueError) as e:
        raise DataError(f"video {path} is corrupt or unreadable ({e}).") from None
    if not frames:
        raise DataError(f"video {path} has no decodable video frames.")
    return np.stack(frames)
