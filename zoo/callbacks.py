"""Training callbacks: throughput measurement and progress lines for logs."""
from __future__ import annotations

import contextlib
import signal
import tempfile

import tf_keras as keras
from absl import logging

from zoo.timing import step_timer_class


class ThroughputMeter(step_timer_class(keras)):
    """Training examples/second, validation excluded: the median rate over windows of steps
    (see `zoo.timing`); the first epoch run is warm-up (tracing) and is left out whenever a
    later epoch exists."""

    def includes_warmup(self) -> bool:
        return len(self.marks.epochs) < 2


class ProgressLogger(keras.callbacks.Callback):
    """One log line every `every` steps and at each epoch's end, for logs that aren't a TTY."""

    def __init__(self, every: int, steps_per_epoch: int, epochs: int):
        super().__init__()
        self.every, self.steps_per_epoch, self.total_epochs = every, steps_per_epoch, epochs
        self._epoch, self._last = 0, -1

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._last = epoch, -1

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) // self.every > (self._last + 1) // self.every:  # crossed a multiple
            logging.info("epoch %d/%d step %d/%d %s", self._epoch + 1, self.total_epochs,
                         batch + 1, self.steps_per_epoch, _fmt(logs))
        self._last = batch

    def on_epoch_end(self, epoch, logs=None):
        logging.info("epoch %d/%d done: %s", epoch + 1, self.total_epochs, _fmt(logs))


def _fmt(logs) -> str:
    return " ".join(f"{k}={float(v):.4f}" for k, v in (logs or {}).items())


class StepBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that records the last step a backup holds.

    tf-keras 2.21 records the step at `on_train_batch_begin`, the first step of an execution:
    with `steps_per_execution` > 1 a backup taken after steps 40..47 said 40, and the resumed
    run trained steps 41..47 again on other data. Recording the execution's last step at its
    end makes the resume exact (and an epoch's last backup resume at the next epoch).

    With an integer `save_freq` tf-keras takes no backup at an epoch's end and never resets its
    step count there; this class does both, so a backup is taken every `save_freq` executions
    of each epoch and at its end (unless its last execution just took one)."""

    _last_batch = -1
    _backed_up = None

    def on_train_batch_end(self, batch, logs=None):
        self._training_state._ckpt_saved_batch.assign(batch)
        self._last_batch = batch
        super().on_train_batch_end(batch, logs)

    def _backup(self, epoch, batch=0):
        super()._backup(epoch, batch)
        self._backed_up = (epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # the backup of save_freq="epoch"
        if self.save_freq != "epoch":
            self._batches_count = 0
            if self._backed_up != (epoch, self._last_batch):
                self._backup(epoch=epoch, batch=self._last_batch)


class EpochCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint of each finished epoch only: an epoch a signal cut short gets no epoch
    checkpoint (a resume that fell back to it would skip the epoch's remaining steps); its
    backup holds it."""

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.stop_training:  # set mid-epoch only by the signal stops below
            super().on_epoch_end(epoch, logs)


class GracefulStop(keras.callbacks.Callback):
    """On SIGTERM or SIGINT: finish the current step, write a backup, stop training.

    `stopped_at` is the (epoch, batch) of the backup; `signal` the signal that asked."""

    def __init__(self, backup: StepBackup):
        super().__init__()
        self.backup = backup
        self.signal = None
        self.stopped_at = None
        self._epoch = 0

    @contextlib.contextmanager
    def installed(self):
        """Routes SIGTERM and SIGINT to this callback while the block runs."""
        previous = {s: signal.signal(s, self._ask) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _ask(self, signum, frame):
        self.signal = signum

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.signal and not self.stopped_at:
            # BackupAndRestore's own save routine (tf-keras 2.21), at this exact batch
            self.backup._backup(epoch=self._epoch, batch=batch)
            self.stopped_at = (self._epoch, batch)
            self.model.stop_training = True


class ClusterStop(GracefulStop):
    """GracefulStop for MultiWorkerMirrored: SIGTERM or SIGINT on any worker stops every worker
    after the same step, with one backup.

    TensorFlow's PreemptionCheckpointHandler does the agreeing: it watches this worker's
    signal flag, tells the other workers through the coordination service, and at the agreed
    step calls `_save` (the backup, which every worker writes its part of) and `_exit` on each
    worker. A worker that wasn't signalled stops with `signal` None."""

    def __init__(self, backup: StepBackup, cluster_resolver):
        super().__init__(backup)
        self.cluster_resolver = cluster_resolver
        self._handler = None
        self._batch = 0

    @contextlib.contextmanager
    def installed(self):
        """Starts TensorFlow's handler and routes SIGTERM and SIGINT to it while the block
        runs; where that handler does nothing (GCE CPU and TPU VMs, as TensorFlow says in
        its log), signals keep their default action: the worker dies and its peers fail fast."""
        import tensorflow as tf
        config = tf.distribute.experimental.TerminationConfig(
            termination_watcher_fn=lambda: self.signal is not None,
            exit_fn=self._exit, save_fn=self._save)
        with tempfile.TemporaryDirectory() as scratch:  # the handler's own checkpoint: unused
            self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                self.cluster_resolver, tf.train.Checkpoint(), scratch + "/unused", config)
            if self._handler._platform_device.name in ("GCE_CPU", "GCE_TPU"):
                yield self
            else:
                with super().installed():
                    yield self

    def _save(self):
        self.backup._backup(epoch=self._epoch, batch=self._batch)

    def _exit(self):
        self.stopped_at = (self._epoch, self._batch)

    def on_train_batch_end(self, batch, logs=None):
        self._batch = batch
        self._handler.save_checkpoint_if_preempted()
        if self.stopped_at:
            self.model.stop_training = True
