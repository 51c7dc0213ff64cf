"""`python -m export --model_dir=DIR --out=EXPORT_DIR`: export, evaluate, gate, publish.

Defaults come from the run's config.yaml `export` section; the dataset (calibration and
evaluation) defaults to its `data.dataset`. Usage errors exit 2, a failed accuracy gate 1.
"""
from __future__ import annotations

import os
import sys

from absl import flags

from zoo.schema import FORMATS, QUANTIZATIONS, canonical_formats

# Flags of their own, not absl's global FLAGS: a program importing this module keeps its own.
FLAGS = flags.FlagValues()
flags.DEFINE_string("model_dir", None, "trained model directory (python -m zoo.train output)",
                    flag_values=FLAGS)
flags.DEFINE_string("out", None, "export directory (serving/, artifacts/, manifest.json)",
                    flag_values=FLAGS)
flags.DEFINE_list("formats", None, f"{','.join(FORMATS)} (default: config.yaml)",
                  flag_values=FLAGS)
flags.DEFINE_list("quantize", None, f"TFLite quantizations: {','.join(QUANTIZATIONS)}",
                  flag_values=FLAGS)
flags.DEFINE_string("dataset", None, "dataset spec for calibration and evaluation",
                    flag_values=FLAGS)
flags.DEFINE_float("max_accuracy_drop", None, "largest accuracy loss allowed per artifact",
                   flag_values=FLAGS)
flags.DEFINE_integer("calibration_examples", None, "training examples calibrating int8",
                     flag_values=FLAGS)
flags.DEFINE_integer("xla_batch_size", None, "fixed batch of the `xla` SavedModel",
                     flag_values=FLAGS)
flags.DEFINE_integer("tpu_batch_size", None, "the name of --xla_batch_size before 0.2",
                     flag_values=FLAGS)
flags.DEFINE_integer("eval_examples", 1000, "evaluation examples per artifact",
                     flag_values=FLAGS)
flags.DEFINE_integer("version", None, "version number (default: one above the latest)",
                     flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "replace an existing version", flag_values=FLAGS)
flags.DEFINE_string("serving_base_path", "/models", "where the tensorflow/serving container "
                    "mounts serving/ (models.config's base paths)", flag_values=FLAGS)


def parse_flags(argv):
    """absl parsing into our FlagValues; a bad flag is `error: ...` and exit 2."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def options(export_cfg):
    """Export options: flags over the config's `export` section."""
    from export.pipeline import Options

    pick = lambda flag, default: default if getattr(FLAGS, flag) is None else getattr(FLAGS, flag)
    return Options(
        formats=pick("formats", export_cfg.formats), quantize=pick("quantize", export_cfg.quantize),
        max_accuracy_drop=pick("max_accuracy_drop", export_cfg.max_accuracy_drop),
        calibration_examples=pick("calibration_examples", export_cfg.calibration_examples),
        xla_batch_size=pick("xla_batch_size", export_cfg.xla_batch_size),
        eval_examples=FLAGS.eval_examples, version=FLAGS.version, overwrite=FLAGS.overwrite,
        serving_base_path=FLAGS.serving_base_path)


def main(argv):
    from zoo.config import ConfigError, ExportConfig
    from zoo.data import DataError
    from export.pipeline import AccuracyGateError
    from export.source import ExportError

    def fail(message, code):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(code)

    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}; flags take the form --name=value", 2)
    try:
        if not FLAGS.model_dir or not FLAGS.out:
            raise ExportError("--model_dir and --out are required")
        from zoo.files import isdir
        if not isdir(FLAGS.model_dir):
            raise ExportError(f"model_dir not found: {FLAGS.model_dir}")
        if FLAGS.formats:
            FLAGS.formats = canonical_formats(FLAGS.formats)  # one note per old name
        if FLAGS.tpu_batch_size is not None:
            print("note: --tpu_batch_size is now called --xla_batch_size", file=sys.stderr)
            if FLAGS.xla_batch_size is None:
                FLAGS.xla_batch_size = FLAGS.tpu_batch_size
        options(ExportConfig()).check()  # bad flags fail before TensorFlow loads
        from export import pipeline, source

        loaded = source.load(FLAGS.model_dir, FLAGS.dataset)
        manifest = pipeline.run(loaded, FLAGS.out, options(loaded.export_cfg))
    except (ExportError, ConfigError, DataError) as e:
        fail(e, 2)
    except AccuracyGateError as e:
        fail(e, 1)
    except KeyboardInterrupt:
        fail("interrupted; nothing was published", 130)
    except Exception as e:
        from zoo.files import storage_failure
        if storage_failure(e) is None:
            raise
        fail(storage_failure(e), 2)
    print(f"published {manifest['model']} version {manifest['version']} to {FLAGS.out}")


if __name__ == "__main__":
    from zoo import environment
    environment.use_cli_settings()  # before anything imports TensorFlow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(parse_flags(sys.argv))
