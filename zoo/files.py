"""Small file helpers shared by training, models and export."""
from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomic(path: Path, text: str):
    """Writes `text` to `path` through a temporary file and a rename."""
    path = Path(path)
    # a name of its own: writers racing on one path (concurrent exports' models.config)
    # each rename a whole file
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_file_keys(model_cfg) -> list[str]:
    """The model config's `*_file` fields: files a run depends on (its vocabulary)."""
    import dataclasses
    return [f.name for f in dataclasses.fields(model_cfg) if f.name.endswith("_file")]


def stored_path(value: str, model_dir) -> str:
    """How config.yaml stores a file of the run: relative to `model_dir` when it lies inside
    (a moved or copied run keeps working), else absolute."""
    if not value or "://" in value:
        return value
    path, root = Path(value).resolve(), Path(model_dir).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def resolved_path(value: str, model_dir) -> str:
    """A file path config.yaml stores, usable from here: relative ones are under model_dir."""
    if not value or "://" in value or Path(value).is_absolute():
        return value
    inside = Path(model_dir) / value
    if not inside.exists() and Path(value).exists():
        return value  # a run written when paths were stored relative to the working directory
    return str(inside)
