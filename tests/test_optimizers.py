"""The zoo's Adam variants against tf-keras's Adam: same numbers where they should agree."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from zoo.optimizers import FusedAdam, LazyAdam


def run_steps(optimizer, gradients, initial):
    """The variable after applying each gradient in turn (tf.IndexedSlices or dense)."""
    variable = tf.Variable(initial)
    for gradient in gradients:
        optimizer.apply_gradients([(gradient, variable)])
    return variable.numpy()


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_fused_adam_equals_tf_keras_adam(weight_decay):
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(64, 8)).astype("float32")
    gradients = [tf.constant(rng.normal(size=(64, 8)).astype("float32")) for _ in range(5)]
    schedule = keras.optimizers.schedules.CosineDecay(0.01, 5)
    fused = run_steps(FusedAdam(schedule, weight_decay=weight_decay), gradients, initial)
    plain = run_steps(keras.optimizers.Adam(schedule, weight_decay=weight_decay), gradients,
                      initial)
    assert not np.allclose(fused, initial, atol=1e-3)  # it trained
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-6)


def test_fused_adam_takes_sparse_gradients_as_their_dense_sum():
    rng = np.random.default_rng(2)
    initial = rng.normal(size=(5, 3)).astype("float32")
    rows = [[4, 1, 1], [0, 2, 1]]  # row 1 twice in the first batch
    values = [rng.normal(size=(3, 3)).astype("float32") for _ in rows]
    sparse = [tf.IndexedSlices(tf.constant(v), tf.constant(r), tf.constant([5, 3]))
              for v, r in zip(values, rows)]
    dense = [tf.convert_to_tensor(g) for g in sparse]
    after = run_steps(FusedAdam(0.01), sparse, initial)
    np.testing.assert_array_equal(after, run_steps(FusedAdam(0.01), dense, initial))
    np.testing.assert_allclose(after, run_steps(keras.optimizers.Adam(0.01), dense, initial),
                               rtol=1e-5, atol=1e-6)
    # row 4, in the first batch only, moves on in the second step with its momentum (not lazy)
    assert not np.allclose(after[4], run_steps(LazyAdam(0.01), sparse, initial)[4])


def test_lazy_adam_touches_only_the_batch_rows_and_equals_adam_on_full_batches():
    rng = np.random.default_rng(1)
    initial = rng.normal(size=(6, 3)).astype("float32")

    def sparse(rows):
        values = rng.normal(size=(len(rows), 3)).astype("float32")
        return tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([6, 3]))

    # every row once per step: lazy and plain Adam agree
    full = [sparse([5, 0, 3, 1, 2, 4]) for _ in range(3)]
    np.testing.assert_allclose(run_steps(LazyAdam(0.01), full, initial),
                               run_steps(keras.optimizers.Adam(0.01), full, initial),
                               rtol=1e-5, atol=1e-6)
    # rows 1 and 2 (repeated) only: the rest stay as they were, moments included
    optimizer = LazyAdam(0.01)
    after = run_steps(optimizer, [sparse([1, 2, 2]), sparse([2, 1])], initial)
    untouched = [0, 3, 4, 5]
    np.testing.assert_array_equal(after[untouched], initial[untouched])
    assert not np.allclose(after[[1, 2]], initial[[1, 2]])
    np.testing.assert_array_equal(optimizer._momentums[0].numpy()[untouched], 0)
