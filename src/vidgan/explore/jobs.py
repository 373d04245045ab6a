"""Background jobs for the explorer: ids, progress, and "a newer request cancels a stale one".

Every render runs on a worker thread, never on the web server's event loop. Jobs belong to a
channel ("video", "frame", "load"); submitting a job cancels the unfinished job of the same
channel. Cancellation is cooperative: the job function calls `job.step(progress)` between
chunks of work, which raises `Cancelled` once a newer job has superseded it.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vidgan.errors import VidganError

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "error"


class Cancelled(Exception):
    """Raised inside a job function when a newer job of its channel superseded it."""


@dataclass(eq=False)
class Job:
    """One unit of background work and what the page may ask about it."""

    id: str
    channel: str
    state: str = QUEUED
    progress: float = 0.0  # fraction of the work done, 0..1
    message: str = ""
    error: str | None = None
    result: Any = None
    future: Future | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self.state in (DONE, CANCELLED, FAILED)

    def step(self, progress: float, message: str = "") -> None:
        """Report progress and stop here if a newer job superseded this one."""
        if self._cancel.is_set():
            raise Cancelled
        self.progress = max(0.0, min(1.0, float(progress)))
        if message:
            self.message = message

    def status(self) -> dict[str, Any]:
        """The JSON the page polls."""
        return {
            "id": self.id,
            "channel": self.channel,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
        }


class JobRunner:
    """A small thread pool with per-channel supersession and a bounded memory of finished jobs.

    Args:
        workers: worker threads (2 lets a scrubbed frame run while a long video renders).
        keep: finished jobs kept for polling and downloads (their results hold frames).
    """

    def __init__(self, *, workers: int = 2, keep: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidgan-explore")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._current: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._token = secrets.token_hex(3)  # ids differ between server runs (browser caches)
        self._keep = keep

    def submit(self, channel: str, fn: Callable[[Job], Any]) -> Job:
        """Run `fn(job)` in the background, cancelling the unfinished job of `channel`."""
        with self._lock:
            job = Job(id=f"{channel[0]}{next(self._ids)}-{self._token}", channel=channel)
            stale = self._current.get(channel)
            if stale is not None and not stale.finished:
                stale.cancel()
            self._current[channel] = job
            self._jobs[job.id] = job
            self._forget_old()
        job.future = self._pool.submit(self._run, job, fn)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.finished]
        for key in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[key]

    @staticmethod
    def _run(job: Job, fn: Callable[[Job], Any]) -> Any:
        try:
            job.step(0.0)  # superseded while queued: never start
            job.state = RUNNING
            job.result = fn(job)
            job.progress, job.state = 1.0, DONE
        except Cancelled:
            job.state, job.message = CANCELLED, "superseded by a newer request"
        except VidganError as e:
            job.state, job.error = FAILED, str(e)
        except Exception as e:  # a bug must reach the page, not kill the worker
            traceback.print_exc()
            job.state, job.error = FAILED, f"internal error: {type(e).__name__}: {e}"
        return job.result
