"""Learning-rate schedules that tf-keras lacks."""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then `after(step - warmup_steps)`."""

    def __init__(self, peak: float, warmup_steps: int, after):
        super().__init__()
        self.peak, self.warmup_steps, self.after = peak, warmup_steps, after

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * step / float(self.warmup_steps)
        after = self.after(step - self.warmup_steps) if callable(self.after) else self.after
        return tf.where(step < self.warmup_steps, warm, tf.cast(after, tf.float32))

    def get_config(self):
        after = (keras.optimizers.schedules.serialize(self.after) if callable(self.after)
                 else self.after)
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "after": after}
