"""Cost-curve planning and summaries (no measurement runs here)."""

from __future__ import annotations

import pytest

from vidgan.bench.curves import (
    CHUNK,
    CurveOptions,
    _digan_at,
    _fmr_at,
    format_curves,
    plan_curves,
    summarize,
)
from vidgan.bench.measure import build_generator


def test_plan_covers_frames_modes_and_resolutions():
    pts = plan_curves(CurveOptions(models=("fmr", "g3an"), quick=True))
    fmr = [(s, t.kind, t.frames, t.chunk) for s, t, lab in pts if lab["model"] == "fmr"]
    assert fmr == [
        *[("frames", "sample", n, CHUNK) for n in (16, 32, 64)],
        *[("frames", "stream", n, CHUNK) for n in (16, 32, 64)],
        ("resolution", "sample", 16, 0),
        ("resolution", "sample", 16, 0),
    ]
    g3an = [(s, t.kind, t.frames, t.chunk) for s, t, lab in pts if lab["model"] == "g3an"]
    # G3AN: only the lengths it supports, no chunks, one native-resolution point
    assert g3an == [("frames", "sample", n, 0) for n in (16, 32, 48)] + [
        ("resolution", "sample", 16, 0)
    ]
    assert all(t.preset == "g3an-toy-64" for _, t, lab in pts if lab["model"] == "g3an")


@pytest.mark.parametrize("res", [32, 128])
def test_resolution_configs_build_generators_of_that_size(res):
    for preset, fields in (("fmr-toy-64", _fmr_at(res)), ("digan-toy-64", _digan_at(res))):
        G = build_generator(preset, fields).eval()
        lat = G.sample_latents(1, n_frames=1)
        assert G.generate(lat, G.frame_times(1)).shape[-2:] == (res, res)


def _row(model, mode, frames, s, work, out=0.0):
    return {
        "series": "frames", "model": model, "mode": mode, "preset": f"{model}-toy-64",
        "frames": frames, "height": 64, "best_s": s, "s_per_frame": s / frames,
        "peak_mem_mb": 300 + work, "work_mem_mb": work, "output_mb": out,
    }  # fmt: skip


def test_summary_reports_linearity_and_memory_growth():
    report = {
        "machine": {"load_average_end": [1.0, 1.0, 1.0]},
        "machine_line": "m",
        "options": {"chunk": 16},
        "command": "vidgan bench --curves",
        "elapsed_s": 1.0,
        "points": [
            _row("fmr", "sample", 16, 0.1, 2.0, 0.75),
            _row("fmr", "sample", 1024, 7.2, 150.0, 48.0),
            _row("fmr", "stream", 16, 0.1, 2.0),
            _row("fmr", "stream", 1024, 7.0, 3.0),
        ],
    }
    s = summarize(report)["fmr"]
    assert s["frames"] == (16, 1024)
    assert s["time_per_frame_ratio"] == pytest.approx((7.2 / 1024) / (0.1 / 16))
    assert s["sample_work_mb"] == (2.0, 150.0) and s["stream_work_mb"] == (2.0, 3.0)
    md = format_curves(report)
    assert "| fmr | fmr-toy-64 | 64 | 1024 | 7.200 | 7.03 | 450 (+150) | 48.0 | 7.000 | 3 |" in md
    assert "time per frame x1.12" in md and "streamed +work 2 -> 3 MB" in md
