"""Where frames come from: a frame-folder tree, a zip of one, or video files decoded by PyAV.

Every source lists its videos once (names, frame counts, labels) and then reads any subset of
frames of one video as uint8 `[K, H, W, 3]`, already centre-cropped and resized. Sources are
picklable for DataLoader workers: open file handles (the zip) are per process and reopened
after a fork.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidgan.data.clips import draft_open, resize_crop
from vidgan.errors import DataError
from vidgan.io.video import IMAGE_SUFFIXES, natural_key

try:  # fast JPEG decoding (libjpeg-turbo); Pillow is the fallback
    import simplejpeg
except ImportError:  # pragma: no cover
    simplejpeg = None

VIDEO_FILE_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")
LABELS_FILE = "dataset.json"

_IMAGE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, zipfile.BadZipFile)


@dataclass
class VideoEntry:
    """One video of a source: its name, where it lives and what it holds."""

    name: str  # relative name, used in messages and in dataset.json
    location: str  # frame folder, video file, or zip folder prefix
    num_frames: int
    label: int = -1
    frames: list[str] = field(default_factory=list)  # frame files (folder / zip sources)


@dataclass
class BadEntry:
    """A video that cannot be used, with the one-sentence reason."""

    name: str
    reason: str


def decode_image(data: bytes, what: str, size: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode image bytes to uint8 [H, W, 3], cropped/resized to `size`; DataError if broken.

    Also returns the stored (width, height), so callers can check a video's frames agree.
    JPEGs go through libjpeg-turbo via simplejpeg when it is installed (about 8x faster than
    Pillow's Python-level parsing at 64 px; same pixels), with DCT-domain downscaling to the
    smallest size >= `size`; anything it rejects falls back to Pillow, which names the problem.
    """
    if simplejpeg is not None and data[:2] == b"\xff\xd8":
        try:
            h, w, _, _ = simplejpeg.decode_jpeg_header(data)
            scale = {"min_height": size, "min_width": size} if size and min(w, h) > size else {}
            arr = simplejpeg.decode_jpeg(data, colorspace="RGB", **scale)
        except ValueError:
            pass
        else:
            if size is not None and arr.shape[:2] != (size, size):
                arr = np.asarray(resize_crop(Image.fromarray(arr), size))
            return arr, (w, h)
    try:
        img = Image.open(io.BytesIO(data))
        stored = img.size
        img = draft_open(img, size)
        if img.mode != "RGB":
            img = img.convert("RGB")
        img = resize_crop(img, size)
        return np.asarray(img), stored
    except UnidentifiedImageError:
        raise DataError(f"frame {what} is corrupt or truncated (not a readable image).") from None
    except _IMAGE_ERRORS as e:
        raise DataError(f"frame {what} is corrupt or truncated ({e}).") from None


def image_size(data: bytes, what: str) -> tuple[int, int]:
    """(width, height) from an image header, without decoding the pixels."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except UnidentifiedImageError:
        raise DataError(f"frame {what} is not a readable image.") from None
    except _IMAGE_ERRORS as e:
        raise DataError(f"frame {what} is not a readable image ({e}).") from None


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _parse_labels(raw: bytes, where: str, names: Sequence[str]) -> list[int] | None:
    """Video labels from a StyleGAN-V dataset.json: {"labels": [[file or video, int], ...]}."""
    try:
        labels = json.loads(raw)["labels"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{where} is not a dataset.json with a 'labels' list ({e}).") from None
    if labels is None:
        return None
    pairs = labels.items() if isinstance(labels, dict) else labels
    by_video: dict[str, int] = {}
    for item in pairs:
        try:
            key, value = item
            value = int(value) if float(value) == int(value) else None
        except (TypeError, ValueError):
            value = None
        if value is None:
            raise DataError(f"{where} has a non-integer label entry {item!r}.")
        parent = str(PurePosixPath(str(key).replace("\\", "/")).parent)
        video = parent if parent not in ("", ".") else str(key)
        if by_video.setdefault(video, value) != value:
            raise DataError(
                f"{where} gives video {video!r} two labels ({by_video[video]}, {value})."
            )
    missing = [n for n in names if n not in by_video]
    if missing:
        raise DataError(f"{where} has no label for video {missing[0]!r} ({len(missing)} missing).")
    return [by_video[n] for n in names]


class Source:
    """Base class: a list of videos and a way to read frames of one of them."""

    kind = "source"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.videos: list[VideoEntry] = []
        self.bad: list[BadEntry] = []
        self.class_names: list[str] | None = None

    def frame_size(self, i: int) -> tuple[int, int]:
        """(width, height) of video i as stored."""
        raise NotImplementedError

    def read(self, i: int, indices: Sequence[int], size: int | None) -> np.ndarray:
        """Frames `indices` of video i as uint8 [K, H, W, 3]."""
        raise NotImplementedError

    def _check_sizes(
        self, frames: list[np.ndarray], stored: list[tuple[int, int]], i: int
    ) -> np.ndarray:
        sizes = sorted(set(stored))
        if len(sizes) > 1:
            shown = ", ".join(f"{w}x{h}" for w, h in sizes)
            raise DataError(
                f"video {self.videos[i].name} in {self.path} mixes frame sizes ({shown})."
            )
        return np.stack(frames)


class _FrameSource(Source):
    """Shared logic of folder and zip sources (videos = folders of image frames)."""

    def _read_bytes(self, entry: VideoEntry, frame: str) -> bytes:
        raise NotImplementedError

    def _frame_name(self, entry: VideoEntry, frame: str) -> str:
        return f"{self.path}/{entry.location}/{frame}"

    def frame_size(self, i: int) -> tuple[int, int]:
        e = self.videos[i]
        return image_size(self._read_bytes(e, e.frames[0]), self._frame_name(e, e.frames[0]))

    def read(self, i: int, indices: Sequence[int], size: int | None) -> np.ndarray:
        e = self.videos[i]
        out, stored = [], []
        for k in indices:
            name = e.frames[int(k)]
            try:
                data = self._read_bytes(e, name)
            except (OSError, zipfile.BadZipFile, KeyError) as err:
                raise DataError(
                    f"frame {self._frame_name(e, name)} cannot be read ({err})."
                ) from None
            arr, wh = decode_image(data, self._frame_name(e, name), size)
            out.append(arr)
            stored.append(wh)
        return self._check_sizes(out, stored, i)

    def _build(self, groups: dict[str, list[str]], labels_raw: bytes | None) -> None:
        for name in sorted(groups, key=natural_key):
            frames = sorted(groups[name], key=natural_key)
            if not frames:
                self.bad.append(BadEntry(name, f"video folder {self.path}/{name} holds no frames"))
                continue
            self.videos.append(VideoEntry(name, name, len(frames), frames=frames))
        if labels_raw is not None and self.videos:
            where = f"{self.path}/{LABELS_FILE}"
            labels = _parse_labels(labels_raw, where, [v.name for v in self.videos])
            if labels is not None:
                for v, lab in zip(self.videos, labels):
                    v.label = lab


class FolderSource(_FrameSource):
    """StyleGAN-V frame folders: root/<video>/<frame>.{jpg,png}."""

    kind = "frame folders"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        groups: dict[str, list[str]] = {}
        loose_images: list[str] = []
        with os.scandir(path) as it:
            top = sorted(it, key=lambda d: natural_key(d.name))
        for d in top:
            if d.is_dir():
                frames, subdirs = [], []
                with os.scandir(d.path) as it2:
                    for f in it2:
                        if f.is_dir():
                            subdirs.append(f.name)
                        elif _is_image(f.name):
                            frames.append(f.name)
                if subdirs and not frames:
                    raise DataError(
                        f"{path}/{d.name} holds folders, not frames: frame datasets must be "
                        f"exactly two levels deep (root/<video>/<frame>.jpg)."
                    )
                groups[d.name] = frames
            elif _is_image(d.name):
                loose_images.append(d.name)
        if loose_images:
            raise DataError(
                f"{path} has image files directly inside (e.g. {loose_images[0]}): frame datasets "
                f"must be two levels deep (root/<video>/<frame>.jpg)."
            )
        labels = path / LABELS_FILE
        self._build(groups, labels.read_bytes() if labels.is_file() else None)

    def _read_bytes(self, entry: VideoEntry, frame: str) -> bytes:
        with open(os.path.join(self.path, entry.location, frame), "rb") as f:
            return f.read()


class ZipSource(_FrameSource):
    """A zip of the frame-folder layout (<video>/<frame>.jpg, optionally under one top folder).

    Members are read with `os.pread` at offsets taken from the central directory (parsed once),
    so reads need no shared file position and cost one or two system calls; each process
    (DataLoader worker) opens its own descriptor. Stored and deflated members are supported.
    """

    kind = "zip of frame folders"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._fd = -1
        self._pid = -1
        try:
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
                names = {i.filename for i in infos}
                label_name = next((n for n in names if n.endswith(LABELS_FILE)), None)
                labels_raw = zf.read(label_name) if label_name else None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataError(f"zip {path} is corrupt or not a zip file ({e}).") from None
        images = [i.filename for i in infos if _is_image(i.filename)]
        if not images:
            raise DataError(f"zip {path} holds no image files (expected <video>/<frame>.jpg).")
        parts = [PurePosixPath(n).parts for n in images]
        self._prefix = ""
        tops = {p[0] for p in parts}
        if all(len(p) == 3 for p in parts) and len(tops) == 1:
            self._prefix = parts[0][0] + "/"  # a zip of the root folder itself
            parts = [p[1:] for p in parts]
        bad_depth = [n for n, p in zip(images, parts) if len(p) != 2]
        if bad_depth:
            raise DataError(
                f"zip {path} has the wrong layout: {bad_depth[0]} is not <video>/<frame> "
                f"(frame datasets are exactly two levels deep)."
            )
        if label_name is not None and label_name != self._prefix + LABELS_FILE:
            labels_raw = None  # a dataset.json deeper down belongs to something else
        groups: dict[str, list[str]] = defaultdict(list)
        for video, frame in parts:
            groups[video].append(frame)
        # name -> (local header offset, compressed size, compression method, data offset or -1)
        self._members = {
            i.filename: [i.header_offset, i.compress_size, i.compress_type, -1]
            for i in infos
            if _is_image(i.filename)
        }
        self._build(groups, labels_raw)

    def _descriptor(self) -> int:
        if self._fd < 0 or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDONLY)  # one per process (workers fork)
            self._pid = os.getpid()
        return self._fd

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _fd=-1, _pid=-1)

    def __del__(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)

    def _frame_name(self, entry: VideoEntry, frame: str) -> str:
        return f"{self.path}:{self._prefix}{entry.location}/{frame}"

    def _read_bytes(self, entry: VideoEntry, frame: str) -> bytes:
        name = f"{self._prefix}{entry.location}/{frame}"
        member = self._members[name]
        header_offset, size, method, data_offset = member
        fd = self._descriptor()
        if data_offset < 0:
            header = os.pread(fd, 30, header_offset)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            data_offset = member[3] = header_offset + 30 + name_len + extra_len
        raw = os.pread(fd, size, data_offset)
        if len(raw) != size:
            raise zipfile.BadZipFile("member data is truncated")
        if method == zipfile.ZIP_STORED:
            return raw
        if method == zipfile.ZIP_DEFLATED:
            try:
                return zlib.decompress(raw, -15)
            except zlib.error as e:
                raise zipfile.BadZipFile(f"deflate error: {e}") from None
        raise zipfile.BadZipFile(f"unsupported compression method {method}")


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, IndexError, ValueError, StopIteration)


class VideoFileSource(Source):
    """Video files (.mp4/.avi/.webm/.mkv/.mov) in a tree; labels from the first-level folder.

    Reading seeks to the key frame before the first frame a clip needs and decodes only up to
    the last one. Frame index k is the k-th presentation timestamp of the stream, from a packet
    index built (by demuxing, without decoding) the first time a video is read in a process.
    """

    kind = "video files"

    def __init__(self, path: Path, files: Sequence[Path] | None = None) -> None:
        super().__init__(path)
        if files is None:
            files = [path] if path.is_file() else _find_videos(path)
        root = path if path.is_dir() else path.parent
        classes = sorted(
            {f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1}
        )
        self.class_names = classes or None
        class_index = {c: k for k, c in enumerate(classes)}
        self._pts: dict[int, list[int]] = {}
        self._sizes: dict[int, tuple[int, int]] = {}
        for f in sorted(files, key=lambda p: natural_key(str(p.relative_to(root)))):
            rel = f.relative_to(root)
            name = str(PurePosixPath(*rel.parts))
            label = class_index[rel.parts[0]] if len(rel.parts) > 1 else -1
            try:
                n, size = _probe(f)
            except DataError as e:
                self.bad.append(BadEntry(name, str(e)))
                continue
            self._sizes[len(self.videos)] = size
            self.videos.append(VideoEntry(name, str(f), n, label=label))

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _pts={})

    def frame_size(self, i: int) -> tuple[int, int]:
        return self._sizes[i]

    def _frame_pts(self, i: int, container, stream) -> list[int]:
        if i not in self._pts:
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
            self._pts[i] = pts
        return self._pts[i]

    def read(self, i: int, indices: Sequence[int], size: int | None) -> np.ndarray:
        import av

        e = self.videos[i]
        try:
            with av.open(e.location) as container:
                stream = container.streams.video[0]
                pts = self._frame_pts(i, container, stream)
                if not pts:
                    raise DataError(f"video {e.location} has no timestamped video packets.")
                if max(indices) >= len(pts):
                    raise DataError(
                        f"video {e.location} has only {len(pts)} of the {e.num_frames} frames its "
                        f"header lists (truncated?)."
                    )
                targets = [pts[int(k)] for k in indices]
                container.seek(min(targets), stream=stream, backward=True, any_frame=False)
                images = _decode_targets(container, stream, targets)
        except DataError:
            raise
        except _av_errors() as err:
            raise DataError(f"video {e.location} is corrupt or truncated ({err}).") from None
        frames = [np.asarray(resize_crop(img, size)) for img in images]
        return self._check_sizes(frames, [img.size for img in images], i)


def _decode_targets(container, stream, targets: list[int]) -> list[Image.Image]:
    """Decode forward from the current position and pick the frame for each target pts.

    A frame matches a target when its pts equals it; if the decoder skips that pts, the
    closest earlier frame is used (the next one if there is none), so the result never fails
    on odd streams.
    """
    order = sorted(set(targets))
    found: dict[int, Image.Image] = {}
    prev = None
    j = 0
    for frame in container.decode(stream):
        fpts = frame.pts if frame.pts is not None else (prev[0] + 1 if prev else 0)
        while j < len(order) and fpts >= order[j]:
            src = frame if (fpts == order[j] or prev is None) else prev[1]
            found[order[j]] = src.to_image() if not isinstance(src, Image.Image) else src
            j += 1
        if j == len(order):
            break
        prev = (fpts, frame)
    while j < len(order):
        if prev is None:
            raise ValueError("no frame could be decoded")
        found[order[j]] = prev[1].to_image()
        j += 1
    return [found[t] for t in targets]


def _probe(path: Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) from the container header; demux-count if missing."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"video {path} has no video stream.")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            n = stream.frames
            if n <= 0:
                n = sum(1 for p in container.demux(stream) if p.pts is not None and p.size)
    except DataError:
        raise
    except _av_errors() as e:
        raise DataError(f"video {path} is corrupt or unreadable ({e}).") from None
    if n <= 0 or w <= 0 or h <= 0:
        raise DataError(f"video {path} has no decodable frames.")
    return int(n), (int(w), int(h))


def _find_videos(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / f for f in filenames if f.lower().endswith(VIDEO_FILE_SUFFIXES))
    return out


def open_source(path: str | Path) -> Source:
    """Pick the source type from what `path` is (directory, zip, video file) and scan it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset path {path} does not exist.")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return ZipSource(path)
        if suffix in VIDEO_FILE_SUFFIXES:
            return VideoFileSource(path)
        raise DataError(
            f"dataset path {path} is neither a folder, a .zip nor a video file "
            f"({', '.join(VIDEO_FILE_SUFFIXES)})."
        )
    try:
        has_entries = any(True for _ in os.scandir(path))
    except OSError as e:
        raise DataError(f"dataset folder {path} cannot be listed ({e}).") from None
    if not has_entries:
        raise DataError(f"dataset folder {path} is empty.")
    has_frame_dirs = any(
        d.is_dir() and any(_is_image(f.name) for f in os.scandir(d.path)) for d in os.scandir(path)
    )
    if not has_frame_dirs:
        videos = _find_videos(path)
        if videos:
            return VideoFileSource(path, videos)
    source = FolderSource(path)
    if not source.videos and not source.bad:
        raise DataError(
            f"dataset folder {path} holds neither frame folders (root/<video>/<frame>.jpg) "
            f"nor video files ({', '.join(VIDEO_FILE_SUFFIXES)})."
        )
    return source
