"""End to end: `vidgan explore` on the bundled FMR checkpoint, driven by headless Chromium.

Debian's chromium (installed by `make test`'s dev step) is driven by Playwright with
executable_path, so no browser is downloaded. Set VIDGAN_EXPLORER_SCREENSHOT=PATH (or 1 for
docs/explorer.png) to keep the screenshot; it is always saved in the test's tmp dir.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
from explorehelp import BUNDLED_FMR, ROOT
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (make test installs it)",
    ),
]


@pytest.fixture
def server(tmp_path):
    """`vidgan explore` on a free port; yields the address it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "vidgan", "explore", str(BUNDLED_FMR), "--port", "0"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*cmd, "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        address, deadline = None, time.monotonic() + 60
        while address is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", log.read_text())
            address = found and found.group(1)
        assert address, f"vidgan explore printed no address: {log.read_text()}"
        yield address
        assert proc.poll() is None, f"the server died: {log.read_text()}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _canvas_url(page) -> str:
    return page.evaluate("document.getElementById('screen').toDataURL()")


def _scrub(page, t: float) -> str:
    """Move the time slider like a user would, wait for the rendered frame, return the canvas."""
    page.evaluate(
        "t => { const s = document.getElementById('time'); s.value = t;"
        " s.dispatchEvent(new Event('input', {bubbles: true})); }",
        t,
    )
    page.wait_for_function(f"document.getElementById('screen').dataset.t === '{t:g}'")
    return _canvas_url(page)


def test_page_generates_scrubs_and_downloads(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            accept_downloads=True,
            viewport={"width": 1060, "height": 760},
        )
        try:
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(server)
            page.wait_for_function("document.getElementById('model').textContent.includes('fmr')")
            # a sample is generated on load and plays
            page.wait_for_function("document.getElementById('status').textContent === 'done'")
            page.fill("#content", "0-1")
            page.fill("#motion", "0-1")
            page.click("#generate")
            page.wait_for_function(
                "document.getElementById('status').textContent === 'done' &&"
                " document.getElementById('screen').dataset.videos === '4'"
            )
            # the slider renders frames on demand, also past the training range (0..15)
            inside, outside = _scrub(page, 3.5), _scrub(page, 24.25)
            assert inside != outside
            assert "past the training range" in page.inner_text("#time-out")
            pixels = page.evaluate(
                "(() => { const c = document.getElementById('screen');"
                " return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                ".data.filter((_, i) => i % 4 === 0)); })()"
            )
            assert np.std(pixels) > 5  # an image, not a blank canvas
            # a bad value is reported on the page, and the server stays up
            page.fill("#content", "zero")
            page.dispatch_event("#content", "change")
            page.wait_for_selector("#error:not([hidden])")
            assert "not a seed list" in page.inner_text("#error")
            page.fill("#content", "0-1")
            page.fill("#edges", "3")
            page.dispatch_event("#edges", "change")
            page.wait_for_selector("#band-table select")
            page.wait_for_function(
                "document.getElementById('status').textContent === 'done' &&"
                " document.getElementById('error').hidden"
            )
            # downloads are real files
            with page.expect_download() as info:
                page.click("#dl-gif")
            gif = tmp_path / "video.gif"
            info.value.save_as(gif)
            with Image.open(gif) as im:
                # a 2 x 2 grid of 32 px tiles: 2 px padding, 12 px label strips
                assert im.n_frames == 16 and im.size == (2 + 2 * 34, 2 + 2 * 46)
            with page.expect_download() as info:
                page.click("#dl-mp4")
            data = Path(info.value.path()).read_bytes()
            with av.open(io.BytesIO(data)) as container:
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            assert len(frames) == 16
            _scrub(page, 6)
            shot = tmp_path / "explorer.png"
            page.screenshot(path=str(shot))
        finally:
            ctx.close()
    keep = os.environ.get("VIDGAN_EXPLORER_SCREENSHOT")
    if keep:
        dest = ROOT / "docs" / "explorer.png" if keep == "1" else Path(keep)
        with Image.open(shot) as im:  # 256 colours keep the docs' copy small
            im.convert("RGB").quantize(colors=256).save(dest, optimize=True)
