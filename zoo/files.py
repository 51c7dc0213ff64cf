"""Small file helpers shared by training, models and export."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str):
    """Writes `text` to `path` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
