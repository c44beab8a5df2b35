"""Benchmark scripts and their data: the synthetic province generator and the
hand-written baselines (a Python loop, DuckDB SQL).  Not part of the shipped
package: a source checkout only, DuckDB from the ``bench`` extra."""
