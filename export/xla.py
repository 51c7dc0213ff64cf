"""`xla`: an XLA-compiled fixed-batch SavedModel, the form a TPU (or any XLA device) runs."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from export.serving import call_core, core_input_specs, named_outputs, raw_input_spec


def xla_module(source, batch_size: int) -> tf.Module:
    """`serving_default` pads each request to a multiple of `batch_size`, runs the model
    through an XLA-compiled fixed-shape function chunk by chunk and slices the results.
    A text model's tokenizer (string ops XLA can't compile) runs before the compiled part."""
    module = tf.Module()
    module.model = source.model
    preprocessor, core = source.parts()
    if preprocessor is None:
        specs = [tf.TensorSpec([batch_size, *core.inputs[0].shape[1:]], core.inputs[0].dtype)]
        run_core = lambda flat: core(flat[0], training=False)
    else:
        specs = core_input_specs(core, batch_size)
        run_core = lambda flat: call_core(core, flat)

    @tf.function(jit_compile=True, input_signature=specs)
    def compiled(*flat):
        return run_core(flat)

    def pad_and_chunk(x):
        n = tf.shape(x)[0]
        padded = tf.pad(x, [[0, (-n) % batch_size]] + [[0, 0]] * (x.shape.rank - 1))
        return tf.reshape(padded, [-1, batch_size, *x.shape[1:]])

    @tf.function(input_signature=[raw_input_spec(source.model)])
    def serve(inputs):
        flat = tf.nest.flatten(preprocessor(inputs) if preprocessor is not None else inputs)
        n = tf.shape(flat[0])[0]
        chunks = [pad_and_chunk(x) for x in flat]
        probabilities = tf.map_fn(lambda c: compiled(*c), chunks,
                                  fn_output_signature=tf.float32)
        probabilities = tf.reshape(probabilities, [-1, probabilities.shape[-1]])[:n]
        return named_outputs(probabilities, source.labels)

    module.compiled, module.serve = compiled, serve
    return module


def write_xla_saved_model(source, path: Path, batch_size: int):
    """Saves the XLA-compiled fixed-batch SavedModel to `path`."""
    module = xla_module(source, batch_size)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
