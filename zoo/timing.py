"""Throughput from step timestamps: the median rate over windows of training steps.

Pure Python (no TensorFlow), shared by zoo's ThroughputMeter and the classic baselines in
`tools/baselines/`, so both sides of a benchmark are timed the same way.
"""
from __future__ import annotations

import statistics
import time

WINDOWS_PER_EPOCH = 5


def window_rates(marks: list[tuple[int, float]], batch_size: int,
                 windows: int = WINDOWS_PER_EPOCH) -> list[float]:
    """Examples/second of up to `windows` consecutive windows of one epoch; `marks` are
    (steps done, seconds) in order, the first one the epoch's start."""
    n = len(marks) - 1
    if n < 1:
        return []
    k = min(windows, n)
    bounds = [round(i * n / k) for i in range(k + 1)]
    rates = []
    for a, b in zip(bounds, bounds[1:]):
        (s0, t0), (s1, t1) = marks[a], marks[b]
        if t1 > t0 and s1 > s0:
            rates.append((s1 - s0) * batch_size / (t1 - t0))
    return rates


def median_rate(epochs: list[list[tuple[int, float]]], batch_size: int) -> float | None:
    """The median window rate over the given epochs' marks, or None without any."""
    rates = [r for marks in epochs for r in window_rates(marks, batch_size)]
    return statistics.median(rates) if rates else None


class StepMarks:
    """The (steps done, seconds) marks of each epoch's training steps, for a Keras callback
    of any Keras version to fill: `begin()` at an epoch's start, `step(n)` after each step (or
    execution of steps), `end()` when its training steps are over (validation excluded)."""

    def __init__(self, batch_size: int, first_step: int = 0):
        self.batch_size, self.first_step = batch_size, first_step
        self.epochs: list[list[tuple[int, float]]] = []
        self._marks = None

    def begin(self):
        self._marks = [(self.first_step if not self.epochs else 0, time.perf_counter())]

    def step(self, steps_done: int):
        if self._marks is not None:
            self._marks.append((steps_done, time.perf_counter()))

    def end(self):
        if self._marks is not None:
            self.epochs.append(self._marks)
            self._marks = None

    def examples_per_sec(self) -> float | None:
        """The median window rate, leaving out the first epoch (warm-up) when a later one ran."""
        rate = median_rate(self.epochs[1:] or self.epochs, self.batch_size)
        return None if rate is None else round(rate, 1)


def step_timer_class(keras):
    """A Keras callback class (for the given Keras module: tf-keras or Keras 3) that fills a
    `StepMarks`; `StepTimer(batch_size, first_step=0).examples_per_sec()`."""

    class StepTimer(keras.callbacks.Callback):
        _supports_tf_logs = True  # never forces the step's logs to NumPy

        def __init__(self, batch_size: int, first_step: int = 0):
            super().__init__()
            self.marks = StepMarks(batch_size, first_step)

        def on_epoch_begin(self, epoch, logs=None):
            self.marks.begin()

        def on_train_batch_end(self, batch, logs=None):
            self.marks.step(batch + 1)

        def on_test_begin(self, logs=None):
            self.marks.end()

        def on_epoch_end(self, epoch, logs=None):
            self.marks.end()

        def examples_per_sec(self) -> float | None:
            return self.marks.examples_per_sec()

    return StepTimer
