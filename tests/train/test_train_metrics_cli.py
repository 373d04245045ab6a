"""Periodic metrics from the CLI: computed on G_ema at checkpoints, logged, best kept."""

from __future__ import annotations

import json

import pytest

from cli_runs import train_tiny_fmr
from vidgan.cli import main


@pytest.mark.slow
def test_train_computes_metrics_at_checkpoints(tmp_path):
    _, run = train_tiny_fmr(
        tmp_path,
        "train.checkpoint_every=1",
        "train.metrics=motion_speed_toy",
        "train.metric_clips=6",
        "train.best_metric=motion_speed_toy",
        frames=16,
    )
    rows = [json.loads(x) for x in (run / "metric-motion_speed_toy.jsonl").read_text().splitlines()]
    assert len(rows) == 2  # one per checkpoint
    for row in rows:
        assert row["value"] >= 0 and row["options"]["protocol"]["num_fake"] == 6
    state = json.loads(next((run / "checkpoints").glob("step-*/state.json")).read_text())
    assert [m["step"] for m in state["metrics"]][:1] == [1]


def test_unknown_metric_is_refused_before_training(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--preset",
            "fmr-tiny",
            "--data",
            str(tmp_path),
            "--outdir",
            str(tmp_path / "r"),
            "train.metrics=fvd_typo",
        ]
    )
    assert rc == 2
    assert "unknown metric 'fvd_typo'" in capsys.readouterr().err
