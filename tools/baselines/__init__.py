"""The classic recipes, written as a user writes them, that `tools.bench` compares zoo with.

Each module has `run(data_dir, ...) -> dict` with `examples_per_sec` (median over windows of
steps after the first epoch, timed like zoo's own meter: `zoo.timing`), `accuracy` on the
evaluation split and `epochs`; `python -m tools.baselines.NAME --data=DIR` runs one alone.
"""
