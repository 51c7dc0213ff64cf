"""zoo: a TensorFlow model zoo — registry, training under tf.distribute, export.

Importing zoo changes nothing in the process: TensorFlow keeps its defaults. The CLIs make
their measured TensorFlow choices for their own process (`zoo.environment`), and a library
user opts in with `zoo.environment.use_cli_settings()` before importing TensorFlow.
"""

__version__ = "0.1.0"
