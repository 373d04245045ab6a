"""`vidgan bench`: model speed, FLOPs, fraction of the machine's GEMM peak, memory, cost curves.

Public API (heavy modules are imported where used, so `vidgan --help` stays fast):

* `vidgan.bench.gemm`: `gemm_flops(m, n, k)`, `measure_gemm_peak(dtype, ...) -> GemmPeak`.
* `vidgan.bench.measure`: `Task` (one measurement as plain data), `run_task(task)`,
  `count_flops(fn)`, `MemoryProbe`, `build_generator(preset, model_fields)`.
* `vidgan.bench.suite`: `BenchOptions`, `plan(options)`, `run_bench(options) -> report`,
  `format_table(report)`, `write_json(report, path)`, `run_isolated(task)` (fresh process).
* `vidgan.bench.curves`: `CurveOptions`, `run_curves(options)`, `write_curves(report, out)`.

See docs/bench.md for what each number means.
"""
