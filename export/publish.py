"""Atomic publishing: build a version in a temporary directory inside EXPORT_DIR, then rename.

Layout: `serving/<model>/<version>/` (the SavedModel TF Serving loads) and
`artifacts/<model>/<version>/` (TFLite, TPU, Edge TPU, manifest.json). The serving rename
comes last, so TF Serving never sees a version whose other artifacts are missing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from export.source import ExportError

STAGE_PREFIX = ".tmp-"


def versions(base: Path) -> set[int]:
    """The numeric version directories under `base`."""
    if not base.is_dir():
        return set()
    return {int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_stages(out: Path):
    """Deletes temporary directories left by exports that were killed."""
    for stage in out.glob(f"{STAGE_PREFIX}*"):
        pid = stage.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)


class Publisher:
    """Chooses the version, owns the temporary directory and moves it into place."""

    def __init__(self, out: str | Path, model: str, version: int | None, overwrite: bool):
        self.out = Path(out)
        self.targets = {"artifacts": self.out / "artifacts" / model,
                        "serving": self.out / "serving" / model}
        taken = set().union(*(versions(base) for base in self.targets.values()))
        if version is None:
            version = max(taken, default=0) + 1
        elif version in taken and not overwrite:
            raise ExportError(f"version {version} of {model} already exists in {self.out}; "
                              "pass --overwrite or choose another --version")
        self.version = version
        self.stage = self.out / f"{STAGE_PREFIX}{model}-{version}-{os.getpid()}"

    def __enter__(self) -> "Publisher":
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_stages(self.out)
        self.stage.mkdir()
        for part in self.targets:
            (self.stage / part).mkdir()
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.stage, ignore_errors=True)

    def path(self, part: str) -> Path:
        """Where `part` ('artifacts' or 'serving') is built before publishing."""
        return self.stage / part

    def final_path(self, staged: Path) -> str:
        """Where a path built under the stage ends up, relative to EXPORT_DIR."""
        part, *rest = staged.relative_to(self.stage).parts
        return str(Path(part, self.targets[part].name, str(self.version), *rest))

    def publish(self) -> dict[str, Path]:
        """Renames each built part into place (serving last); replaces an old version."""
        published = {}
        for part in ("artifacts", "serving"):
            built, final = self.stage / part, self.targets[part] / str(self.version)
            if not any(built.iterdir()):
                continue
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                os.replace(final, self.stage / f"replaced-{part}")
            os.replace(built, final)
            published[part] = final
        return published
