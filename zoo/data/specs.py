"""Dataset specs, splits and local paths, parsed and checked without TensorFlow: a bad spec
fails before any TensorFlow work."""
from __future__ import annotations

import dataclasses
import re
import os
from pathlib import Path

from zoo.errors import ConfigError, DataError

SCHEMES = ("sample", "tfds", "idx", "folder", "tsv", "csv", "synthetic")
IMAGE_SCHEMES = ("sample", "tfds", "idx", "folder", "synthetic")
TEXT_SCHEMES = ("sample", "tfds", "tsv", "csv", "synthetic")
FORMS = "tfds:NAME[:SPLIT], idx:DIR, folder:DIR, tsv:DIR, csv:DIR, sample or synthetic"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"  # package data


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    scheme: str
    location: str = ""     # TFDS name or a directory
    split: str = ""        # TFDS only: the training split given in the spec


@dataclasses.dataclass
class DatasetInfo:
    num_classes: int
    class_names: list[str]
    train_examples: int
    eval_examples: int
    source: str


def parse_spec(text: str) -> DatasetSpec:
    """'tfds:mnist' -> DatasetSpec('tfds', 'mnist'); errors name the accepted forms."""
    scheme, _, rest = text.partition(":")
    if scheme in ("sample", "synthetic") and not rest:
        return DatasetSpec(scheme)
    if scheme not in SCHEMES or scheme in ("sample", "synthetic") or not rest:
        raise ConfigError(f"bad dataset spec {text!r}; expected {FORMS}")
    if scheme == "tfds":
        name, _, split = rest.partition(":")
        if re.fullmatch(r"[\d.*]+", split or "x"):  # 'mnist:3.*' is a version, not a split
            name, split = rest, ""
        return DatasetSpec("tfds", name, split)
    return DatasetSpec(scheme, rest)


_SPLIT = re.compile(r"^([\w\-/]+)(?:\[(-?\d*%?):(-?\d*%?)\])?$")


def parse_split(text: str) -> tuple[str, str, str]:
    """'train[:8000]' -> ('train', '', '8000'); percentages allowed ('train[80%:]')."""
    match = _SPLIT.match(text.strip())
    if not match:
        raise ConfigError(f"bad split {text!r}; expected NAME or NAME[START:STOP], "
                          "e.g. train, t10k[:8000], train[80%:]")
    name, start, stop = match.groups()
    return name, start or "", stop or ""


def slice_indices(n: int, start: str, stop: str) -> range:
    """The indices of a split slice over `n` items (TFDS slicing semantics)."""
    def bound(text, default):
        if not text:
            return default
        if text.endswith("%"):
            return round(n * int(text[:-1]) / 100)
        return int(text)
    return range(n)[slice(bound(start, 0), bound(stop, n))]


def check_local(text: str):
    """A local spec's directory exists: checked before TensorFlow loads."""
    spec = parse_spec(text)
    if spec.scheme in ("idx", "folder", "tsv", "csv"):
        check_dir(spec.location, spec.scheme)


def check_dir(path: str, what: str) -> str:
    """The directory `path` (a local path, "~" expanded, or a URL), or a DataError naming it."""
    from zoo import files
    path = path if files.is_url(path) else os.path.expanduser(path)
    if not files.isdir(path):
        raise DataError(f"{what}: directory not found: {path}")
    return path
