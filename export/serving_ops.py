"""Which op types the stock `tensorflow/serving` image runs, and a SavedModel audit against them.

The stock image embeds TensorFlow's own ops and tensorflow-text 2.12.1's ops: a SavedModel
exported with the newer tensorflow-text installed here can use ops that image lacks.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from export.source import ExportError

TENSORFLOW_TEXT_VERSION = "2.12.1"
TENSORFLOW_TEXT_OPS_FILE = Path(__file__).with_name("tensorflow_text_2_12_1_ops.txt")


def _op_names(serialized_op_list: bytes) -> set[str]:
    """The op names of a serialized OpList."""
    from tensorflow.core.framework import op_def_pb2

    return {op.name for op in op_def_pb2.OpList.FromString(serialized_op_list).op}


def registered_ops() -> set[str]:
    """Every op type registered in this process (TensorFlow's and loaded libraries')."""
    from tensorflow.python.client import pywrap_tf_session as c_api

    buffer = c_api.TF_GetAllOpList()
    try:
        return _op_names(c_api.TF_GetBuffer(buffer))
    finally:
        c_api.TF_DeleteBuffer(buffer)


def library_ops(path: str) -> set[str]:
    """The op types of the op library at `path`, loading it unless it is loaded. TensorFlow
    records them under the path string it first loaded the library from."""
    from tensorflow.python.client import pywrap_tf_session as c_api

    handle = c_api.TF_LoadLibrary(path)
    try:
        return _op_names(c_api.TF_GetOpList(handle))
    finally:
        c_api.TF_DeleteLibraryHandle(handle)


@functools.cache
def tensorflow_text_ops() -> frozenset[str]:
    """The op types the installed tensorflow-text registers: those of its op libraries, at the
    paths it loads them from (os.path.join beside its modules); a library with no ops means the
    paths differ and fails."""
    from tensorflow_text.python import metrics, ops

    names = set()
    for package in (ops, metrics):
        directory = os.path.dirname(package.__file__)
        for library in sorted(f for f in os.listdir(directory)
                              if f.startswith("_") and f.endswith(".so")):
            path = os.path.join(directory, library)
            found = library_ops(path)
            if not found:
                raise RuntimeError(f"could not list the ops of {path}")
            names |= found
    return frozenset(names)


@functools.cache
def tensorflow_ops() -> frozenset[str]:
    """TensorFlow's own op types: those registered here that tensorflow-text did not add."""
    return frozenset(registered_ops() - tensorflow_text_ops())


def tensorflow_text_2_12_1_ops() -> set[str]:
    """tensorflow-text 2.12.1's op types, from the list shipped beside this module."""
    lines = TENSORFLOW_TEXT_OPS_FILE.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@functools.cache
def allowed_ops() -> frozenset[str]:
    """The op types of the stock tensorflow/serving image."""
    return tensorflow_ops() | tensorflow_text_2_12_1_ops()


def op_types(saved_model_dir: str | Path) -> set[str]:
    """Op types of every node of a SavedModel: its graphs and all their library functions
    (calls of a library function by name are not op types)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString(
        (Path(saved_model_dir) / "saved_model.pb").read_bytes())
    used = set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        functions = {f.signature.name for f in graph.library.function}
        nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
        used |= {node.op for node in nodes} - functions
    return used


def audit(saved_model_dir: str | Path) -> list[str]:
    """The SavedModel's op types missing from the stock tensorflow/serving image, sorted."""
    return sorted(op_types(saved_model_dir) - allowed_ops())


def check(saved_model_dir: str | Path):
    """Raises ExportError naming the SavedModel's ops the stock tensorflow/serving image lacks."""
    missing = audit(saved_model_dir)
    if missing:
        raise ExportError(
            f"the SavedModel uses op(s) {', '.join(missing)} missing from the stock "
            f"tensorflow/serving image (TensorFlow + tensorflow-text {TENSORFLOW_TEXT_VERSION})")
