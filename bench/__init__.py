"""Benchmarks: `python -m bench <name>` runs bench/<name>.py; results are in bench/README.md."""
