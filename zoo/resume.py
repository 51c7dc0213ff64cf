"""Where a training run resumes: the Keras backup, or an intact epoch checkpoint when the backup
is unreadable — never silently from scratch over an existing run."""
from __future__ import annotations

import dataclasses
import time
import uuid

from absl import logging

from zoo.files import checkpoint_reader
from zoo.run_dir import EPOCH_PREFIX, RunDir


class ResumeError(RuntimeError):
    """No intact checkpoint to resume from in a model_dir that holds a run."""


@dataclasses.dataclass
class ResumePoint:
    epoch: int = 0                  # 0-based epoch to start at
    step: int = 0                   # steps of that epoch already done
    weights: str | None = None      # an epoch checkpoint to load; None: BackupAndRestore restores
    source: str = ""                # the checkpoint it comes from

    @property
    def resumed(self) -> bool:
        return bool(self.epoch or self.step)


def unreadable(prefix: str) -> str | None:
    """Why the checkpoint at `prefix` can't be read in full (checksums included), or None."""
    import tensorflow as tf

    try:
        reader = checkpoint_reader(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a short read
        return str(e).strip().splitlines()[0][:200]
    return None


def _backup_point(latest: str, steps_per_epoch: int) -> ResumePoint:
    reader = checkpoint_reader(latest)
    value = lambda name: int(reader.get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))
    epoch, batch = value("ckpt_saved_epoch"), value("ckpt_saved_batch")
    # the way BackupAndRestore continues: after the saved batch, or at the next epoch
    if 0 <= batch < steps_per_epoch - 1:
        return ResumePoint(epoch, batch + 1, source=latest)
    return ResumePoint(epoch + 1, 0, source=latest)


def find(model_dir, steps_per_epoch: int, chief: bool = True) -> ResumePoint:
    """The resume point of the run in `model_dir` (a path, URL or RunDir; a fresh start when it
    holds none). Only the `chief` moves an unreadable backup aside; other workers only read
    (shared storage)."""
    import tensorflow as tf

    gfile, run_dir = tf.io.gfile, RunDir(model_dir)
    backup = run_dir.chief_backup
    had_backup = gfile.isdir(backup) and bool(gfile.listdir(backup))
    if had_backup:
        latest = tf.train.latest_checkpoint(backup)
        why = unreadable(latest) if latest else "no checkpoint state file"
        if why is None:
            return _backup_point(latest, steps_per_epoch)
        if chief:  # a name of its own: two restarts in one second don't collide
            aside = f"{backup}.unreadable-{int(time.time())}-{uuid.uuid4().hex[:8]}"
            gfile.rename(backup, aside)
            logging.warning("backup %s is unreadable (%s); moved it to %s", latest or backup,
                            why, aside)
        else:
            logging.warning("backup %s is unreadable (%s)", latest or backup, why)
    epochs = sorted(gfile.glob(f"{run_dir.checkpoints}/{EPOCH_PREFIX}*.index"), reverse=True)
    for index in epochs:
        prefix = index[:-len(".index")]
        why = unreadable(prefix)
        if why is None:
            epoch = int(prefix.rsplit("/", 1)[-1].removeprefix(EPOCH_PREFIX))
            logging.warning("resuming from the epoch checkpoint %s", prefix)
            return ResumePoint(epoch, 0, weights=prefix, source=prefix)
        logging.warning("epoch checkpoint %s is unreadable (%s)", prefix, why)
    if had_backup or epochs:
        raise ResumeError(f"{run_dir} holds a run but no intact checkpoint to resume from; "
                          "move it away to start over")
    return ResumePoint()
