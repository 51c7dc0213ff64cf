"""Atomic publishing: build a version in a temporary directory inside EXPORT_DIR, then rename.

Layout: `serving/<model>/<version>/` (the SavedModel TF Serving loads) and
`artifacts/<model>/<version>/` (TFLite, XLA, Edge TPU audit, manifest.json). The serving rename
comes last, so TF Serving never sees a version whose other artifacts are missing.

Concurrent exports into one EXPORT_DIR (from one machine or several sharing it): the stage
`.tmp-<model>-<version>` is created with `mkdir`, which fails when it exists, so it claims
the version; a second export moves on to the next one. A published version is replaced
only with `overwrite`. Before its first rename an export writes a journal into its stage: an
export killed between the renames is finished by the next export into EXPORT_DIR, never
left half published. An export holds a lock on its stage for its lifetime; a stage whose
lock is free belongs to an export that ended (where the filesystem has no locks: a stage
untouched for `STALE_AFTER_S`).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

from export.source import ExportError

STAGE_PREFIX = ".tmp-"
PARTS = ("artifacts", "serving")  # the order of the renames: serving last
LOCK, JOURNAL = ".lock", ".publishing"
STALE_AFTER_S = 24 * 3600  # only where the filesystem can't lock


def versions(base: Path) -> set[int]:
    """The numeric version directories under `base`."""
    if not base.is_dir():
        return set()
    return {int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def _stage_version(stage: Path, model: str) -> int | None:
    """The version a stage of `model` claims, or None for another model's stage."""
    rest = stage.name.removeprefix(f"{STAGE_PREFIX}{model}-")
    return int(rest) if rest != stage.name and rest.isdigit() else None


def _hold_lock(stage: Path):
    """Creates and locks the lock file of our own `stage` (its byte says the lock is held);
    None where the filesystem has no locks."""
    import fcntl
    fd = os.open(stage / LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    os.write(fd, b"locked\n")
    return fd


def _ended(stage: Path):
    """(True, fd holding its lock or None) when the export owning `stage` has ended;
    (False, None) while it runs. An export locks its stage for its lifetime; where there is
    no lock to go by (no locks on this filesystem, a stage not yet locked) a stage touched
    within STALE_AFTER_S is taken to be running."""
    import fcntl
    try:
        fd = os.open(stage / LOCK, os.O_RDWR)
    except OSError:
        fd = None
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_size:  # it was locked and now isn't: its owner ended
                return True, fd
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                return False, None
        os.close(fd)
    try:
        return time.time() - stage.stat().st_mtime > STALE_AFTER_S, None
    except FileNotFoundError:  # removed meanwhile
        return False, None


def _finish(stage: Path):
    """Completes the renames the journal in `stage` lists, serving last (after moving the
    version they replace aside when overwriting); can run again after a crash."""
    journal = json.loads((stage / JOURNAL).read_text())
    for part in PARTS:
        built = stage / part
        if part not in journal or not built.exists():
            continue
        final = Path(journal[part])
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            if not journal["overwrite"]:
                raise ExportError(f"{final} appeared while publishing it; not replaced")
            os.rename(final, stage / f"replaced-{part}")
        os.rename(built, final)


def remove_stale_stages(out: Path, log=print):
    """Removes the stages of exports that ended without cleaning up (killed, crashed), first
    finishing a publish one was killed in the middle of."""
    for stage in out.glob(f"{STAGE_PREFIX}*"):
        ended, fd = _ended(stage)
        if not ended:
            continue
        try:
            if (stage / JOURNAL).is_file():
                try:
                    _finish(stage)
                    log(f"finished publishing {stage.name.removeprefix(STAGE_PREFIX)}, which "
                        "an export killed while publishing had left")
                except (ExportError, OSError, ValueError) as e:
                    log(f"warning: could not finish the publish {stage} had left: {e}")
            shutil.rmtree(stage, ignore_errors=True)
        finally:
            if fd is not None:
                os.close(fd)


class Publisher:
    """Chooses and claims the version, owns the temporary directory and moves it into place."""

    def __init__(self, out: str | Path, model: str, version: int | None, overwrite: bool):
        self.out, self.model, self.overwrite = Path(out), model, overwrite
        self.targets = {"artifacts": self.out / "artifacts" / model,
                        "serving": self.out / "serving" / model}
        self.requested = version
        if version is not None and version in self.published() and not overwrite:
            raise self._taken(version)
        self.version = version
        self.stage = None
        self._lock = None

    def published(self) -> set[int]:
        return set().union(*(versions(base) for base in self.targets.values()))

    def _taken(self, version: int) -> ExportError:
        return ExportError(f"version {version} of {self.model} already exists in {self.out}; "
                           "pass --overwrite or choose another --version")

    def _claim(self):
        """Creates the stage of the first free version (or the requested one)."""
        claimed = {_stage_version(p, self.model) for p in self.out.glob(f"{STAGE_PREFIX}*")}
        version = (self.requested if self.requested is not None else
                   max(self.published() | (claimed - {None}), default=0) + 1)
        while True:
            stage = self.out / f"{STAGE_PREFIX}{self.model}-{version}"
            try:
                stage.mkdir()
            except FileExistsError:
                if self.requested is not None:
                    raise ExportError(f"version {version} of {self.model} is being exported "
                                      f"into {self.out} by another export ({stage.name})")
                version += 1
                continue
            # a concurrent export may have published this version and removed its stage
            # between the listing above and the mkdir
            if version in self.published() and not (self.requested is not None and self.overwrite):
                stage.rmdir()
                if self.requested is not None:
                    raise self._taken(version)
                version += 1
                continue
            self.stage, self.version = stage, version
            return

    def __enter__(self) -> "Publisher":
        self.out.mkdir(parents=True, exist_ok=True)
        remove_stale_stages(self.out)
        self._claim()
        self._lock = _hold_lock(self.stage)
        for part in PARTS:
            (self.stage / part).mkdir()
        return self

    def __exit__(self, *exc):
        try:
            if not (self.stage / JOURNAL).is_file():
                shutil.rmtree(self.stage, ignore_errors=True)
            # else: a publish that failed halfway; the next export finishes it
        finally:
            if self._lock is not None:
                os.close(self._lock)

    def path(self, part: str) -> Path:
        """Where `part` ('artifacts' or 'serving') is built before publishing."""
        return self.stage / part

    def final_path(self, staged: Path) -> str:
        """Where a path built under the stage ends up, relative to EXPORT_DIR."""
        part, *rest = staged.relative_to(self.stage).parts
        return str(Path(part, self.targets[part].name, str(self.version), *rest))

    def publish(self) -> dict[str, Path]:
        """Renames each built part into place (serving last); replaces an existing version
        only when overwriting."""
        finals = {part: self.targets[part] / str(self.version) for part in PARTS
                  if any((self.stage / part).iterdir())}
        if not self.overwrite and any(final.exists() for final in finals.values()):
            raise self._taken(self.version)
        # from here on the version is complete in the stage: this export finishes it, or the
        # next one does if this one dies
        journal = self.stage / JOURNAL
        from zoo.files import write_atomic
        write_atomic(journal, json.dumps({"overwrite": self.overwrite,
                                          **{part: str(f) for part, f in finals.items()}}))
        _finish(self.stage)
        journal.unlink()
        return finals


def into_url(out: str, model: str, version: int | None, overwrite: bool, export_into) -> dict:
    """Publishes into a URL (gs://bucket/models): `export_into(local_dir, version)` builds,
    gates and publishes the version into a local folder, which is then copied up, artifacts
    first and serving last; in each, the file its reader looks for (manifest.json,
    saved_model.pb) is copied last, so TF Serving never loads half a version.

    An object store has no atomic mkdir to claim a version with: two exports of one model
    into one URL at the same time may choose the same version, and the later copy is then
    refused (or, with `overwrite`, replaces the other)."""
    from zoo import files

    def published() -> set[int]:
        found = set()
        for part in PARTS:
            base = files.join(out, part, model)
            if files.isdir(base):
                found |= {int(n) for n in files.listdir(base) if n.isdigit()}
        return found

    taken = published()
    version = version if version is not None else max(taken, default=0) + 1
    if version in taken and not overwrite:
        raise ExportError(f"version {version} of {model} already exists in {out}; pass "
                          "--overwrite or choose another --version")
    import tempfile
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as local:
        manifest = export_into(local, version)
        for part in PARTS:
            built = os.path.join(local, part, model, str(version))
            if not os.path.isdir(built):
                continue
            final = files.join(out, part, model, str(version))
            if files.exists(final):
                if not overwrite:
                    raise ExportError(f"{final} appeared while exporting it; not replaced")
                files.rmtree(final)
            files.copy_tree(built, final, last=("manifest.json", "saved_model.pb"))
    return manifest
