"""JobRunner: progress, supersession between chunks, queued jobs that never start, errors."""

from __future__ import annotations

import threading

from vidgan.errors import VidganError
from vidgan.explore import JobRunner


def test_newer_job_cancels_the_running_one_between_chunks_and_skips_queued_ones():
    runner = JobRunner(workers=1)
    gate, chunks, started = threading.Event(), [], []

    def slow(job):
        started.append(job.id)
        for i in range(1000):
            job.step(i / 1000)
            chunks.append(i)
            gate.wait(0.01)
        return "slow"

    try:
        a = runner.submit("video", slow)
        while not chunks:
            gate.wait(0.001)
        b = runner.submit("video", slow)  # queued behind a, cancels a
        c = runner.submit("video", lambda job: "fresh")  # cancels b before it starts
        assert c.future.result(timeout=30) == "fresh"
        a.future.result(timeout=30)
        assert (a.state, b.state, c.state) == ("cancelled", "cancelled", "done")
        assert 0 < len(chunks) < 1000 and 0 <= a.progress < 1
        assert started == [a.id]  # b never ran
        assert c.progress == 1
    finally:
        runner.shutdown()


def test_channels_do_not_cancel_each_other_and_errors_are_reported():
    runner = JobRunner(workers=2)

    def bad(job):
        raise VidganError("frames must be between 1 and 256, got 0.")

    def bug(job):
        raise ZeroDivisionError("oops")

    try:
        v = runner.submit("video", lambda job: 1)
        e = runner.submit("frame", bad)
        v.future.result(timeout=30)
        e.future.result(timeout=30)
        assert v.state == "done" and v.result == 1
        assert e.state == "error" and e.error == "frames must be between 1 and 256, got 0."
        x = runner.submit("frame", bug)
        x.future.result(timeout=30)
        assert x.state == "error" and "ZeroDivisionError" in x.error
        assert runner.get(v.id) is v and runner.get("nope") is None
    finally:
        runner.shutdown()


def test_only_the_newest_finished_jobs_are_kept():
    runner = JobRunner(workers=1, keep=2)
    try:
        jobs = [runner.submit(f"c{i}", lambda job: 0) for i in range(5)]
        for job in jobs:
            job.future.result(timeout=30)
        runner.submit("c9", lambda job: 0).future.result(timeout=30)
        kept = [j.id for j in jobs if runner.get(j.id) is not None]
        assert kept == [j.id for j in jobs[-2:]]
    finally:
        runner.shutdown()
