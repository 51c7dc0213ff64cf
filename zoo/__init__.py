"""zoo: a TensorFlow model zoo — registry, training under tf.distribute, export."""
import os
import platform
import sys

__version__ = "0.1.0"

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"


def set_by_zoo_variable(variable: str) -> str:
    """The variable zoo sets beside `variable`, so that child processes, which inherit both,
    know the value was zoo's choice and not their caller's."""
    return f"ZOO_SET_{variable}"


def choose_for_tensorflow(variable: str) -> bool:
    """Sets `variable` to "1" for TensorFlow unless the environment already has it; True when
    zoo set it, in this process or in a parent whose environment this one inherited."""
    marker = set_by_zoo_variable(variable)
    if os.environ.get(marker) == os.environ.get(variable) == "1":
        return True
    if variable in os.environ:
        return False
    os.environ[variable] = os.environ[marker] = "1"
    return True


def prefer_onednn() -> bool:
    """Turns TensorFlow's oneDNN CPU kernels on for x86 CPUs where TensorFlow leaves them off.

    TensorFlow enables them by itself only on CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or
    AMX; on a 2-core AVX2 CPU they trained mnist_cnn 1.6x and imgcls and bert 1.16x faster
    (README, Benchmark). TensorFlow reads the choice once, when it is imported, so this runs
    when zoo is imported: a process that imported TensorFlow first keeps TensorFlow's choice.
    An explicit TF_ENABLE_ONEDNN_OPTS wins (0 turns them off). True when zoo set it."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return choose_for_tensorflow(ONEDNN_VARIABLE)


def prefer_tf_keras() -> bool:
    """Makes `tf.keras` tf-keras, the Keras zoo's models are built with, in a process that
    imports zoo before TensorFlow (as TF Model Garden asks its users to): `tf.keras` objects
    then mix with zoo's models, and TensorFlow's import no longer loads Keras 3, which zoo does
    not use (1.5 s of every `python -m zoo.train` start on a 2-core AVX2 CPU). TensorFlow reads
    TF_USE_LEGACY_KERAS when it is imported; an explicit value wins. True when zoo set it."""
    if "tensorflow" in sys.modules and LEGACY_KERAS_VARIABLE not in os.environ:
        return False  # too late for this process: children keep their caller's choice
    return choose_for_tensorflow(LEGACY_KERAS_VARIABLE)


ONEDNN_SET_BY_ZOO = prefer_onednn()
TF_KERAS_SET_BY_ZOO = prefer_tf_keras()


def caller_env() -> dict:
    """Environment changes (None unsets a variable) that start a child process from the
    caller's TensorFlow settings instead of the ones zoo chose for this process: TensorFlow's
    own oneDNN choice and Keras 3 as `tf.keras`, unless the caller set those variables."""
    chosen = [variable for variable, by_zoo in ((ONEDNN_VARIABLE, ONEDNN_SET_BY_ZOO),
                                                (LEGACY_KERAS_VARIABLE, TF_KERAS_SET_BY_ZOO))
              if by_zoo]
    return dict.fromkeys(chosen + [set_by_zoo_variable(variable) for variable in chosen])
