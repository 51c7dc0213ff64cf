"""The layout of a model_dir, in one place: every file and folder a training run writes there
and the export reads back.

Paths are strings joined with "/", so a URL ("gs://bucket/run") keeps its "//" where
`pathlib.Path` would collapse it; a local path is normalized as `Path` does.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from zoo.files import join

EPOCH_PREFIX = "ckpt-"  # an epoch checkpoint's name: the prefix, then the epoch


@dataclasses.dataclass(frozen=True)
class RunDir:
    """A model_dir's paths: `RunDir("runs/mnist").backup == "runs/mnist/backup"`. It is
    path-like (`Path(run_dir)`, `os.fspath`) and prints as its root."""
    root: str

    def __post_init__(self):
        root = os.fspath(self.root)
        object.__setattr__(self, "root", root.rstrip("/") if "://" in root else str(Path(root)))

    def __fspath__(self) -> str:
        return self.root

    def __str__(self) -> str:
        return self.root

    @property
    def config(self) -> str:
        """config.yaml: the run's resolved config, its files relative to the root."""
        return join(self.root, "config.yaml")

    @property
    def metrics(self) -> str:
        """metrics.json: the final evaluation, throughput and how the run was set up."""
        return join(self.root, "metrics.json")

    @property
    def checkpoints(self) -> str:
        """checkpoints/: the weights at each epoch's end (what the export loads)."""
        return join(self.root, "checkpoints")

    @property
    def checkpoint_state(self) -> str:
        """checkpoints/checkpoint: the state file naming the latest epoch checkpoint."""
        return join(self.checkpoints, "checkpoint")

    @property
    def epoch_checkpoint_pattern(self) -> str:
        """checkpoints/ckpt-{epoch:04d}: the prefix Keras' ModelCheckpoint fills in with the
        1-based epoch (`EPOCH_PREFIX` then the number)."""
        return join(self.checkpoints, EPOCH_PREFIX + "{epoch:04d}")

    @property
    def backup(self) -> str:
        """backup/: the training state BackupAndRestore resumes from."""
        return join(self.root, "backup")

    @property
    def chief_backup(self) -> str:
        """backup/chief: the folder of the chief's (or a single worker's) backups."""
        return join(self.backup, "chief")

    @property
    def logs(self) -> str:
        """logs/: TensorBoard's event files."""
        return join(self.root, "logs")

    @property
    def assets(self) -> str:
        """assets/: the files the model depends on (vocabularies) and labels.txt."""
        return join(self.root, "assets")

    @property
    def labels(self) -> str:
        """assets/labels.txt: the class names, one a line."""
        return join(self.assets, "labels.txt")
