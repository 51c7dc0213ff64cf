"""zoo: a TensorFlow model zoo — registry, training under tf.distribute, export."""
__version__ = "0.1.0"
