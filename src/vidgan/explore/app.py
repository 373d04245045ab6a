"""The explorer's web app (Starlette): a static page and a small JSON API over `Explorer`.

API (every error is JSON `{"error": "one sentence"}` with a 4xx status; the page shows it):

    GET  /api/info                       the model and what the page may ask of it
    POST /api/render      {view}         start a video job (cancels the previous one) -> job
    GET  /api/jobs/{id}                  job state and progress; the frame list once done
    GET  /api/jobs/{id}/frames/{k}       frame k of a finished video job (PNG)
    GET  /api/jobs/{id}/download?format=mp4|gif&fps=F     the video file
    POST /api/frame       {view, t}      one frame at frame index t (PNG); a newer one wins (409)
    GET  /api/spectrum?edges=3,5&ratio=0 FMR: learned frequencies and band counts
    POST /api/load        {path, from}   load another checkpoint in the background -> job

Renders run on `JobRunner` threads, never on the event loop. POST bodies must be JSON
(`Content-Type: application/json`), which a foreign web page cannot send without a CORS
preflight that this app never answers.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vidgan.errors import VidganError
from vidgan.explore.jobs import CANCELLED, DONE, FAILED, Job, JobRunner
from vidgan.explore.view import (
    Explorer,
    Rendered,
    RequestError,
    encode_png,
    encode_video,
)

STATIC = resources.files("vidgan.explore") / "static"

Handler = Callable[[Request], Awaitable[Response]]


class NotFound(VidganError):
    """A job or frame the page asked for does not exist (any more)."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _api(fn: Handler) -> Handler:
    """Bad requests become 4xx JSON with the error's sentence; bugs become 500 JSON."""

    @wraps(fn)
    async def handler(request: Request) -> Response:
        try:
            return await fn(request)
        except NotFound as e:
            return _error(404, str(e))
        except VidganError as e:
            return _error(400, str(e))
        except Exception as e:  # never let a bug take the server down
            traceback.print_exc()
            return _error(500, f"internal error: {type(e).__name__}: {e}")

    return handler


async def _json(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise RequestError("POST bodies must be JSON (Content-Type: application/json).")
    try:
        data = await request.json()
    except ValueError:
        raise RequestError("the request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object.")
    return data


def _job_json(job: Job) -> dict[str, Any]:
    out = job.status()
    if job.state == DONE and isinstance(job.result, Rendered):
        r = job.result
        out["result"] = {
            "frames": len(r.frames),
            "size": list(r.frames.shape[1:3]),
            "indices": r.indices,
            "names": r.names,
        }
    return out


def create_app(
    explorer: Explorer,
    *,
    allowed_hosts: list[str] | None = None,
    runner: JobRunner | None = None,
    device: str = "cpu",
) -> Starlette:
    """The explorer app around a loaded checkpoint.

    Args:
        explorer: the checkpoint the page starts with (`/api/load` can replace it).
        allowed_hosts: Host header values accepted (None = any; the CLI passes the loopback
            names when it binds to loopback, against DNS rebinding).
        runner: background job runner (a fresh one by default).
        device: device for checkpoints loaded from the page.
    """
    jobs = runner or JobRunner()
    state = {"explorer": explorer}

    def current() -> Explorer:
        return state["explorer"]

    def find(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist (any more); render again.")
        return job

    def finished_render(job_id: str) -> Rendered:
        job = find(job_id)
        if job.state != DONE or not isinstance(job.result, Rendered):
            raise RequestError(f"job {job_id} has no video (state: {job.state}).")
        return job.result

    async def index(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"))

    @_api
    async def info(request: Request) -> Response:
        return JSONResponse(current().info())

    @_api
    async def render(request: Request) -> Response:
        ex = current()
        view = ex.parse(await _json(request))
        job = jobs.submit("video", lambda job: ex.render(view, job))
        return JSONResponse(_job_json(job), status_code=202)

    @_api
    async def job_status(request: Request) -> Response:
        return JSONResponse(_job_json(find(request.path_params["job_id"])))

    @_api
    async def job_frame(request: Request) -> Response:
        r = finished_render(request.path_params["job_id"])
        k = request.path_params["k"]
        if not 0 <= k < len(r.frames):
            raise NotFound(f"frame {k} does not exist: the video has {len(r.frames)} frames.")
        png = await run_in_threadpool(encode_png, r.frames[k])
        return Response(
            png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
        )

    @_api
    async def download(request: Request) -> Response:
        r = finished_render(request.path_params["job_id"])
        fmt = request.query_params.get("format", "mp4")
        try:
            fps = float(request.query_params.get("fps", "8"))
        except ValueError:
            raise RequestError("fps must be a number.") from None
        data = await run_in_threadpool(encode_video, r, fmt, fps)
        media = {"mp4": "video/mp4", "gif": "image/gif"}[fmt]
        name = f"vidgan-{current().loaded.spec.name}-{request.path_params['job_id']}.{fmt}"
        disposition = f'attachment; filename="{name}"'
        return Response(data, media_type=media, headers={"Content-Disposition": disposition})

    @_api
    async def frame(request: Request) -> Response:
        ex = current()
        data = await _json(request)
        if "t" not in data:
            raise RequestError("a frame request needs t, the frame index to render.")
        t = data.pop("t")
        view = ex.parse(data)
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise RequestError(f"t must be a number (a frame index), got {t!r}.")
        lim = view.frames + 4 * ex.clip_frames + abs(view.start)
        if not abs(float(t)) <= lim:
            raise RequestError(f"t must be within +-{lim:g} frames, got {t!r}.")
        job = jobs.submit("frame", lambda job: ex.render_frame(view, float(t), job))
        assert job.future is not None
        await asyncio.wrap_future(job.future)
        if job.state == CANCELLED:
            return _error(409, "superseded by a newer frame request.")
        if job.state == FAILED:
            raise RequestError(job.error or "the frame could not be rendered.")
        png = await run_in_threadpool(encode_png, job.result)
        return Response(png, media_type="image/png")

    @_api
    async def spectrum(request: Request) -> Response:
        ex = current()
        q = request.query_params
        probe = {"edges": q.get("edges", ""), "ratio": q.get("ratio", "0") in ("1", "true")}
        if not ex.has_bands:
            raise RequestError(f"{type(ex.G).__name__} has no learned motion frequencies.")
        view = ex.parse(probe)
        result = await run_in_threadpool(ex.spectrum, view.edges, view.ratio)
        return JSONResponse(result)

    @_api
    async def load(request: Request) -> Response:
        data = await _json(request)
        path, source = data.get("path"), data.get("from") or None
        if not isinstance(path, str) or not path.strip():
            raise RequestError("load needs path, the checkpoint to open.")
        if source is not None and not isinstance(source, str):
            raise RequestError("from must be digan, fmr or g3an.")
        if not Path(path.strip()).exists():
            raise RequestError(f"checkpoint {path.strip()} does not exist.")

        def work(job: Job) -> dict[str, Any]:
            job.step(0.0, f"loading {path}")
            new = Explorer.load(path.strip(), source=source, device=device)
            job.step(1.0)
            state["explorer"] = new
            return new.info()

        return JSONResponse(jobs.submit("load", work).status(), status_code=202)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/render", render, methods=["POST"]),
        Route("/api/jobs/{job_id}", job_status),
        Route("/api/jobs/{job_id}/frames/{k:int}", job_frame),
        Route("/api/jobs/{job_id}/download", download),
        Route("/api/frame", frame, methods=["POST"]),
        Route("/api/spectrum", spectrum),
        Route("/api/load", load, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    middleware = []
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.jobs = jobs
    app.state.explorer = state
    return app
