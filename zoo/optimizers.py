"""Optimizer pieces that tf-keras lacks: a warm-up schedule, an Adam on TensorFlow's fused
kernel and a sparse ("lazy") Adam."""
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


class FusedAdam(keras.optimizers.Adam):
    """Adam whose dense update is TensorFlow's fused `ResourceApplyAdam` kernel.

    tf-keras runs Adam's update as separate element-wise ops, each a pass over the variable
    or a moment; it fuses them only with XLA, which it enables only on GPUs. The kernel
    computes the same formula in one pass. A sparse gradient (an embedding's) is made dense
    first: Adam decays every row's moments at every step anyway, and tf-keras's sparse path
    does that in several dense passes. Weight decay (AdamW) stays the base class's decoupled
    step; AMSGrad takes Adam's own update."""

    def step_terms(self, variable):
        """This step's (m, v, beta_1, beta_2, beta_1**t, beta_2**t, learning rate) for
        `variable`, in its dtype."""
        dtype = variable.dtype
        index = self._index_dict[self._var_key(variable)]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        return (self._momentums[index], self._velocities[index], beta_1, beta_2,
                tf.pow(beta_1, step), tf.pow(beta_2, step), tf.cast(self.learning_rate, dtype))

    def update_step(self, gradient, variable):
        if self.amsgrad:
            return super().update_step(gradient, variable)
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        m, v, beta_1, beta_2, beta_1_power, beta_2_power, lr = self.step_terms(variable)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
            beta2_power=beta_2_power, lr=lr, beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, variable.dtype), grad=gradient)


class LazyAdam(FusedAdam):
    """Adam whose sparse updates (embedding gradients) touch only the rows in the batch.

    Plain Adam decays its moments and updates every row of an embedding table at every step:
    with a 100k-row table that dense work is most of a bag-of-words model's step time. Dense
    gradients take the fused update."""

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        m, v, beta_1, beta_2, beta_1_power, beta_2_power, lr = self.step_terms(variable)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        rows, position = tf.unique(gradient.indices)  # a row repeated in the batch sums up
        grad = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(
            alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
