"""The benchmark harness: methods x a dataset x a noise -> per-image records, a summary table, JSON and CSV.

``run_bench`` follows the evaluation protocol of SPEC §1 (see :mod:`diffdenoise.bench.runner`); datasets are folders
of clean images or of real noisy/clean pairs (:mod:`diffdenoise.bench.datasets`).
"""
from .datasets import BenchData, BenchItem, load_benchmark, read_u8
from .runner import device_name, format_table, run_bench, write_csv, write_json, write_text

__all__ = ["BenchData", "BenchItem", "load_benchmark", "read_u8", "run_bench", "format_table", "write_json",
           "write_csv", "write_text", "device_name"]
