"""Files of a run, local or at a URL (gs://bucket/run, TensorFlow's ram:// in the tests).

A local path is read and written with Python's own functions, so the checks before
TensorFlow loads stay fast; a URL goes through `tf.io.gfile`. Paths are strings: `pathlib`
would turn "gs://bucket" into "gs:/bucket".
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def is_url(path) -> bool:
    """True for "scheme://..." (gs://, s3://, ram://), False for a local path."""
    return "://" in os.fspath(path)


def join(root, *names: str) -> str:
    """`root` and `names` joined with "/" (a URL keeps its "//"); under "." the names alone."""
    root = os.fspath(root)
    return "/".join(names if root == "." else [root.rstrip("/"), *names])


def name(path) -> str:
    """The last component of `path`."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def _gfile(path):
    """tf.io.gfile for a URL, None for a local path."""
    if not is_url(path):
        return None
    import tensorflow as tf
    return tf.io.gfile


def exists(path) -> bool:
    gfile = _gfile(path)
    return gfile.exists(os.fspath(path)) if gfile else os.path.exists(path)


def isdir(path) -> bool:
    gfile = _gfile(path)
    return gfile.isdir(os.fspath(path)) if gfile else os.path.isdir(path)


def isfile(path) -> bool:
    gfile = _gfile(path)
    if gfile:
        return gfile.exists(os.fspath(path)) and not gfile.isdir(os.fspath(path))
    return os.path.isfile(path)


def listdir(path) -> list[str]:
    """The sorted names in directory `path` (without a URL's trailing "/" on folders)."""
    gfile = _gfile(path)
    names = gfile.listdir(os.fspath(path)) if gfile else os.listdir(path)
    return sorted(n.rstrip("/") for n in names)


def makedirs(path):
    """Creates `path` and its parents; an existing directory is fine."""
    gfile = _gfile(path)
    gfile.makedirs(os.fspath(path)) if gfile else os.makedirs(path, exist_ok=True)


def read_bytes(path) -> bytes:
    gfile = _gfile(path)
    if gfile:
        with gfile.GFile(os.fspath(path), "rb") as f:
            return f.read()
    return Path(path).read_bytes()


def read_text(path) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path, data: bytes):
    """Writes `data` to `path` through a temporary file and a rename."""
    path = os.fspath(path)
    # a name of its own: writers racing on one path (concurrent exports' models.config)
    # each rename a whole file
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    gfile = _gfile(path)
    if gfile:
        with gfile.GFile(tmp, "wb") as f:
            f.write(data)
        gfile.rename(tmp, path, overwrite=True)
    else:
        Path(tmp).write_bytes(data)
        os.replace(tmp, path)


def write_atomic(path, text: str):
    """Writes `text` (UTF-8) to `path` through a temporary file and a rename."""
    write_bytes(path, text.encode("utf-8"))


def copy(source, target):
    """Copies the file `source` to `target` (either may be a URL), replacing it."""
    if is_url(source) or is_url(target):
        import tensorflow as tf
        tf.io.gfile.copy(os.fspath(source), os.fspath(target), overwrite=True)
    else:
        shutil.copyfile(source, target)


def copy_tree(source: str, target: str, last: tuple[str, ...] = ()):
    """Copies the local directory `source` to `target` (a URL or a path), file by file; the
    files named in `last` are copied after all others, so a reader that waits for them (TF
    Serving for saved_model.pb) never finds the tree half written."""
    files = sorted(os.path.relpath(os.path.join(folder, f), source)
                   for folder, _, names in os.walk(source) for f in names)
    for rel in sorted(files, key=lambda r: name(r) in last):
        makedirs(join(target, *Path(rel).parent.parts))
        copy(os.path.join(source, rel), join(target, *Path(rel).parts))


def rmtree(path):
    """Removes the directory `path` and everything under it."""
    gfile = _gfile(path)
    gfile.rmtree(os.fspath(path)) if gfile else shutil.rmtree(path)


def checkpoint_reader(prefix: str):
    """A reader of the TensorFlow checkpoint at `prefix` (a path or a URL). Unlike
    `tf.train.load_checkpoint` it never takes the prefix for a directory (ram:// calls
    "ckpt-2" a directory when "ckpt-2.index" exists)."""
    import tensorflow as tf
    return tf.compat.v1.train.NewCheckpointReader(os.fspath(prefix))


def storage_failure(error: BaseException) -> str | None:
    """One line for a filesystem error at a URL (no network, no credentials, no bucket), or
    None for any other error."""
    import sys
    tf = sys.modules.get("tensorflow")
    text = " ".join(str(error).split())
    if not (tf and isinstance(error, tf.errors.OpError) and "://" in text):
        return None
    return f"storage at a URL failed: {text[:300]}; check the URL, the network and credentials"


def run_file_keys(model_cfg) -> list[str]:
    """The model config's `*_file` fields: files a run depends on (its vocabulary)."""
    import dataclasses
    return [f.name for f in dataclasses.fields(model_cfg) if f.name.endswith("_file")]


def stored_path(value: str, model_dir) -> str:
    """How config.yaml stores a file of the run: relative to `model_dir` when it lies inside
    (a moved or copied run keeps working), else absolute."""
    if not value:
        return value
    if is_url(value) or is_url(model_dir):
        root = os.fspath(model_dir).rstrip("/") + "/"
        return value[len(root):] if value.startswith(root) else value
    path, root = Path(value).resolve(), Path(model_dir).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def resolved_path(value: str, model_dir) -> str:
    """A file path config.yaml stores, usable from here: relative ones are under model_dir."""
    if not value or is_url(value) or Path(value).is_absolute():
        return value
    inside = join(model_dir, *value.split("/"))
    if not is_url(model_dir) and not exists(inside) and Path(value).exists():
        return value  # a run written when paths were stored relative to the working directory
    return inside
