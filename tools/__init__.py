"""Developer tools: `python -m tools.bench` and the classic recipes it compares against."""
