"""`vidgan data prepare`: videos (or frame folders) -> StyleGAN-V frame folders or a zip.

Each frame is centre-cropped to a square and resized with Lanczos to `size`, then saved as JPEG
quality 95 or PNG under dst/<video>/<frame:06d>.<fmt>. A video is written to
`<name>.partial/` and renamed when complete, so an interrupted run resumes where it stopped
(finished videos are skipped). A manifest (`.vidgan-prepare.json`) records the settings; an
existing output made with other settings, or not made by this tool, is never overwritten
without `force`. With `zip=True` the folders are staged next to dst and zipped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from vidgan.data.clips import resize_crop
from vidgan.data.sources import LABELS_FILE, Source, VideoFileSource, open_source
from vidgan.errors import DataError

MANIFEST = ".vidgan-prepare.json"


@dataclass(frozen=True)
class PrepareSettings:
    size: int
    fmt: str = "jpg"
    quality: int = 95


@dataclass
class PrepareReport:
    dst: Path
    written: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # already complete, skipped
    failed: list[tuple[str, str]] = field(default_factory=list)  # (video, reason), skip_bad


def _output_names(source: Source) -> list[str]:
    """Flat video folder names: the file stem, or the path joined by '__' if stems clash."""
    names = [PurePosixPath(v.name) for v in source.videos]
    stems = [str(n.with_suffix("")) if n.suffix else str(n) for n in names]
    flat = [PurePosixPath(s).name for s in stems]
    if len(set(flat)) == len(flat):
        return flat
    return [s.replace("/", "__") for s in stems]


def _save(img, path: Path, settings: PrepareSettings) -> None:
    if settings.fmt == "jpg":
        img.save(path, format="JPEG", quality=settings.quality)
    else:
        img.save(path, format="PNG", compress_level=6)


_SOURCE: Source | None = None  # set once per worker process by _init_worker


def _init_worker(source: Source) -> None:
    global _SOURCE
    _SOURCE = source


def _prepare_one(job: tuple[int, str, str, PrepareSettings]) -> tuple[str, int, str | None]:
    """Write one video's frames; returns (name, frames written, error sentence or None)."""
    i, out_root, name, settings = job
    source = _SOURCE
    assert source is not None
    final = Path(out_root) / name
    tmp = Path(out_root) / (name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    entry = source.videos[i]
    n = 0
    try:
        if isinstance(source, VideoFileSource):
            import av

            try:
                with av.open(entry.location) as container:
                    stream = container.streams.video[0]
                    stream.thread_type = "AUTO"
                    for frame in container.decode(stream):
                        img = resize_crop(frame.to_image(), settings.size)
                        _save(img, tmp / f"{n:06d}.{settings.fmt}", settings)
                        n += 1
            except (av.error.FFmpegError, OSError, ValueError, IndexError) as e:
                raise DataError(f"video {entry.location} is corrupt or truncated ({e}).") from None
            if n == 0:
                raise DataError(f"video {entry.location} has no decodable frames.")
        else:
            from PIL import Image

            for k in range(entry.num_frames):
                arr = source.read(i, [k], settings.size)[0]
                _save(Image.fromarray(arr), tmp / f"{k:06d}.{settings.fmt}", settings)
                n += 1
    except DataError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return name, 0, str(e)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return name, n, None


def _check_dst(dst: Path, settings: PrepareSettings, force: bool) -> None:
    """Refuse to touch output that is not ours or was made with other settings."""
    if not dst.exists():
        return
    if force:
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        return
    if dst.is_file():
        raise DataError(f"output {dst} already exists; pass --force to replace it.")
    manifest = dst / MANIFEST
    if not manifest.is_file():
        if any(dst.iterdir()):
            raise DataError(
                f"output {dst} already exists and was not made by `vidgan data prepare`; "
                f"pass --force to replace it."
            )
        return
    try:
        old = json.loads(manifest.read_text())["settings"]
    except (ValueError, KeyError, OSError):
        raise DataError(f"output {dst} has an unreadable {MANIFEST}; pass --force.") from None
    if old != asdict(settings):
        raise DataError(
            f"output {dst} was prepared with other settings ({old}, now {asdict(settings)}); "
            f"pass --force to replace it."
        )


def prepare_dataset(
    src: str | Path,
    dst: str | Path,
    *,
    size: int,
    fmt: str = "jpg",
    to_zip: bool = False,
    workers: int = 1,
    force: bool = False,
    skip_bad: bool = False,
    progress: bool = True,
    on_video: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Convert every video of `src` to resized frames in `dst` (a folder, or a .zip)."""
    if fmt not in ("jpg", "png"):
        raise DataError(f"--format must be jpg or png, got {fmt!r}.")
    if size < 1:
        raise DataError(f"--size must be a positive number of pixels, got {size}.")
    dst = Path(dst)
    if to_zip and dst.suffix.lower() != ".zip":
        dst = dst.with_name(dst.name + ".zip")
    settings = PrepareSettings(size=size, fmt=fmt)
    source = open_source(src)
    if source.bad and not skip_bad:
        raise DataError(f"{source.bad[0].reason.rstrip('.')} (pass --skip-bad to skip it).")
    if to_zip:
        if dst.exists() and not force:
            raise DataError(f"output {dst} already exists; pass --force to replace it.")
        if dst.exists():
            dst.unlink()
        out_root = dst.with_name(dst.name + ".frames")  # staging folders, resumable
        _check_dst(out_root, settings, force)
    else:
        out_root = dst
        _check_dst(out_root, settings, force)
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / MANIFEST).write_text(
        json.dumps({"settings": asdict(settings), "source": str(Path(src).resolve())})
    )
    report = PrepareReport(dst=dst)
    report.failed = [(b.name, b.reason) for b in source.bad]
    names = _output_names(source)
    jobs = []
    for i, name in enumerate(names):
        if (out_root / name).is_dir():
            report.resumed.append(name)
        else:
            jobs.append((i, str(out_root), name, settings))
    _run_jobs(source, jobs, workers, progress, report, skip_bad, on_video)
    _write_labels(source, names, out_root, settings, report)
    if to_zip:
        _zip_folder(out_root, dst)
        shutil.rmtree(out_root)
    return report


def _run_jobs(source, jobs, workers, progress, report, skip_bad, on_video) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="prepare", unit="video", disable=not progress or not jobs)
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.Pool(workers, initializer=_init_worker, initargs=(source,)) as pool:
            results = pool.imap_unordered(_prepare_one, jobs)
            _collect(results, bar, report, skip_bad, on_video, pool)
    else:
        _init_worker(source)
        _collect(map(_prepare_one, jobs), bar, report, skip_bad, on_video, None)
    bar.close()


def _collect(results, bar, report, skip_bad, on_video, pool) -> None:
    for name, _n, err in results:
        bar.update(1)
        if err is not None:
            if not skip_bad:
                if pool is not None:
                    pool.terminate()
                raise DataError(f"{err.rstrip('.')} (pass --skip-bad to skip it).")
            report.failed.append((name, err))
            continue
        report.written.append(name)
        if on_video is not None:
            on_video(name)


def _write_labels(source, names, out_root, settings, report) -> None:
    """dataset.json in the StyleGAN-V format when the source has labels (class folders or its
    own dataset.json); one entry per video, keyed by its first frame as StyleGAN-V expects."""
    if not any(v.label >= 0 for v in source.videos):
        return
    done = set(report.written) | set(report.resumed)
    labels = [
        [f"{name}/{0:06d}.{settings.fmt}", v.label]
        for name, v in zip(names, source.videos)
        if name in done and v.label >= 0
    ]
    payload: dict = {"labels": labels}
    if source.class_names:
        payload["class_names"] = source.class_names
    (Path(out_root) / LABELS_FILE).write_text(json.dumps(payload))


def _zip_folder(root: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                if f == MANIFEST:
                    continue
                full = Path(dirpath) / f
                zf.write(full, full.relative_to(root).as_posix())
    tmp.replace(dst)
