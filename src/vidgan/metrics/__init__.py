"""Metrics: FVD/KVD (I3D), frame FID (Inception-v3), G3AN's video FID (3D ResNeXt-101) and
network-free motion metrics, selected by protocol-stating names from `METRICS`.

    from vidgan.metrics import METRICS, compute_metric, open_data
    real = open_data("data/sky", METRICS.get("fvd2048_16f").protocol)
    result = compute_metric("fvd2048_16f", real=real, fake=open_data("samples/", ...))

Heavy weights load lazily, only when a metric that needs them runs.
"""

from vidgan.metrics.frechet import FeatureStats, frechet_distance, polynomial_mmd
from vidgan.metrics.fvd import (
    METRICS,
    ClipProtocol,
    DataRef,
    MetricSpec,
    append_result,
    compute_metric,
    evaluate_generator,
    open_data,
)

__all__ = [
    "METRICS",
    "ClipProtocol",
    "DataRef",
    "FeatureStats",
    "MetricSpec",
    "append_result",
    "compute_metric",
    "evaluate_generator",
    "frechet_distance",
    "open_data",
    "polynomial_mmd",
]
