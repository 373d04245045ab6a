"""`vidgan explore`: a local web page to sample, scrub and edit the videos of one checkpoint.

`view.Explorer` holds the loaded generator and turns checked requests (`View`) into frames
through the public sampling and editing APIs; `jobs.JobRunner` runs them off the request thread
with progress and supersession; `app.create_app` is the Starlette app serving the static page in
`static/` (plain HTML/JS/CSS, no build step). See docs/explorer.md.
"""

from vidgan.explore.app import create_app
from vidgan.explore.jobs import Cancelled, Job, JobRunner
from vidgan.explore.view import Explorer, Rendered, RequestError, View, parse_seeds

__all__ = [
    "Cancelled",
    "Explorer",
    "Job",
    "JobRunner",
    "Rendered",
    "RequestError",
    "View",
    "create_app",
    "parse_seeds",
]
