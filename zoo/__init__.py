"""zoo: a TensorFlow model zoo — registry, training under tf.distribute, export."""
import os
import platform

__version__ = "0.1.0"

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# set beside it, so that child processes, which inherit the variable, know it was zoo's choice
ONEDNN_SET_BY_ZOO_VARIABLE = "ZOO_SET_TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> bool:
    """Turns TensorFlow's oneDNN CPU kernels on for x86 CPUs where TensorFlow leaves them off.

    TensorFlow enables them by itself only on CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or
    AMX; on a 2-core AVX2 CPU they trained mnist_cnn 1.6x and imgcls and bert 1.16x faster
    (README, Benchmark). TensorFlow reads the choice once, when it is imported, so this runs
    when zoo is imported: a process that imported TensorFlow first keeps TensorFlow's choice.
    An explicit TF_ENABLE_ONEDNN_OPTS wins (0 turns them off). True when zoo set it, in this
    process or in a parent whose environment this one inherited."""
    if os.environ.get(ONEDNN_SET_BY_ZOO_VARIABLE) == os.environ.get(ONEDNN_VARIABLE) == "1":
        return True
    if platform.machine().lower() not in ("x86_64", "amd64") or ONEDNN_VARIABLE in os.environ:
        return False
    os.environ[ONEDNN_VARIABLE] = os.environ[ONEDNN_SET_BY_ZOO_VARIABLE] = "1"
    return True


ONEDNN_SET_BY_ZOO = prefer_onednn()


def caller_onednn_env() -> dict:
    """Environment changes (None unsets a variable) that start a child process from the
    caller's oneDNN choice instead of the one zoo made: TensorFlow's own unless the caller
    set TF_ENABLE_ONEDNN_OPTS."""
    return dict.fromkeys([ONEDNN_VARIABLE, ONEDNN_SET_BY_ZOO_VARIABLE]) if ONEDNN_SET_BY_ZOO \
        else {}
