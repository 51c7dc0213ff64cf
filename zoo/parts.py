"""The two parts of a model with in-graph preprocessing: the only place that knows how a model
marks them.

A text model's builder names its tokenizer layer `PREPROCESSOR` and the rest, a sub-model, `CORE`.
Training maps the preprocessor over the input pipeline and fits the core (checkpoints hold the
core); the export compiles or converts the core and runs the preprocessor beside it; the
benchmark counts the core's FLOPs. An image model is its own core.
"""
from __future__ import annotations

from typing import NamedTuple

PREPROCESSOR, CORE = "preprocessor", "core"


class Parts(NamedTuple):
    """`preprocessor` (a layer, or None) maps the model's inputs to what `core` takes."""
    preprocessor: object | None
    core: object


def split_preprocessing(model) -> Parts:
    """The model's parts: its preprocessor and core, or (None, model) without preprocessing."""
    names = {layer.name for layer in model.layers}
    if {PREPROCESSOR, CORE} <= names:
        return Parts(model.get_layer(PREPROCESSOR), model.get_layer(CORE))
    return Parts(None, model)
