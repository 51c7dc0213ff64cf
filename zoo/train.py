"""`python -m zoo.train --model=NAME`: flags -> config -> strategy -> data -> model -> fit.

`model_dir` receives `config.yaml`, `checkpoints/` (weights per epoch), `backup/` (training
state for resuming after a crash), `logs/` (TensorBoard), `assets/` and `metrics.json`.
Rerunning the same command resumes from the last backup.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from absl import app, flags, logging

from zoo import registry
from zoo.config import ConfigError, ExperimentConfig, load_config, read_yaml, set_field
from zoo.data import FORMS, DataError
from zoo.files import resolved_path, run_file_keys, stored_path, write_atomic
from zoo.parts import split_preprocessing
from zoo.resume import ResumeError

FLAGS = flags.FLAGS
def define_flags():
    """Defines the CLI's flags in absl's FLAGS: when the CLI starts, not when zoo.train is
    imported, so a program importing it keeps its own flags."""
    flags.DEFINE_string("model", None, "registered model name (python -m zoo.models lists them)")
    flags.DEFINE_string("config", None, "YAML config (default: zoo/configs/<model>.yaml)")
    flags.DEFINE_string("dataset", None, f"{FORMS} (default: the config's data.dataset; `sample` "
                        "is real data shipped in the package: MNIST's test digits for image "
                        "models, SST-2 for text models)")
    flags.DEFINE_string("model_dir", None, "output directory (default: runs/<model>)")
    flags.DEFINE_string("strategy", None, "auto, cpu, gpu, mirrored, multi_worker or tpu")
    flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu (or auto)")
    flags.DEFINE_integer("epochs", None, "number of epochs")
    flags.DEFINE_integer("batch_size", None, "global batch size, split over replicas, at any "
                         "training-set size (sets train.batch_scaling_examples=0)")
    flags.DEFINE_integer("steps_per_epoch", None, "steps per epoch (0 = one pass over the data)")
    flags.DEFINE_multi_string("set", [], "config override SECTION.KEY=VALUE, repeatable")
    flags.DEFINE_bool("verbose", False, "also log the INFO lines of TensorFlow and other libraries")


FLAG_KEYS = {"dataset": "data.dataset", "strategy": "train.strategy", "tpu": "train.tpu",
             "epochs": "train.epochs", "batch_size": "train.batch_size",
             "steps_per_epoch": "train.steps_per_epoch"}

CONFIG_FILE, METRICS_FILE = "config.yaml", "metrics.json"


def config_from_flags() -> ExperimentConfig:
    """The resolved config: defaults <- YAML <- --set <- explicit flags."""
    if not FLAGS.model:
        raise ConfigError("--model is required; known models: " + ", ".join(registry.names()))
    overrides = list(FLAGS.set)
    for flag, key in FLAG_KEYS.items():
        value = getattr(FLAGS, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if FLAGS.batch_size is not None:  # the batch asked for, not a scaled one
        overrides.append("train.batch_scaling_examples=0")
    return load_config(FLAGS.model, FLAGS.config, overrides)


def saved_run(model_dir: Path, model_name: str) -> dict | None:
    """The model section of the run already in `model_dir`; another model's run is refused."""
    saved_path = model_dir / CONFIG_FILE
    if not saved_path.is_file():
        return None
    saved = read_yaml(saved_path).get("model") or {}
    if saved.get("name") != model_name:
        raise ConfigError(f"{model_dir} holds a run of model {saved.get('name')!r}, not "
                          f"{model_name!r}; choose another --model_dir")
    return {key: resolved_path(value, model_dir) if key.endswith("_file") else value
            for key, value in saved.items()}


# what decides which batches each step of a run sees: a run resumed with another value would
# go on as if nothing changed (only train.epochs may grow)
RESUME_KEYS = ("data.dataset", "data.train_split", "data.eval_split", "data.max_examples",
               "data.synthetic_examples", "train.batch_size", "train.batch_scaling_examples",
               "train.steps_per_epoch")


def check_same_training(model_dir: Path, cfg: ExperimentConfig):
    """Refuses to continue the run in `model_dir` with another RESUME_KEYS value."""
    saved = read_yaml(model_dir / CONFIG_FILE)
    for key in RESUME_KEYS:
        section, name = key.split(".")
        if name not in (saved.get(section) or {}):
            continue  # a run written before the key existed
        old, new = saved[section][name], getattr(getattr(cfg, section), name)
        if old != new:
            raise ConfigError(f"{model_dir} holds a run with {key}={old!r}, not {new!r}; "
                              "resume it as it was or choose another --model_dir")


def stored_yaml(cfg: ExperimentConfig, model_dir: Path) -> str:
    """config.yaml's text: the run's files relative to model_dir (see `stored_path`)."""
    import dataclasses
    files = {key: stored_path(getattr(cfg.model, key), model_dir)
             for key in run_file_keys(cfg.model)}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **files)).to_yaml()


def check_same_model(model_dir: Path, saved: dict, model_cfg):
    """Refuses to continue a run whose model config differs; `*_file` assets compare by
    content (a vocabulary learned again from the same data is the same vocabulary)."""
    import dataclasses
    for key, value in dataclasses.asdict(model_cfg).items():
        old = saved.get(key)
        if key.endswith("_file") and old and value and Path(old).is_file():
            same = Path(value).is_file() and Path(old).read_bytes() == Path(value).read_bytes()
        else:
            same = old == value
        if not same:
            raise ConfigError(
                f"{model_dir} holds a run with model.{key}={old!r}, not {value!r}; choose "
                "another --model_dir or drop the override")


def weights_digest(model) -> str:
    """SHA-256 over all weights: equal digests mean bit-identical models."""
    import hashlib
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()


def scaled_batch_size(t, train_examples: int) -> int:
    """The global batch: `t.batch_size`, or with `t.batch_scaling_examples` = N set,
    batch_size * sqrt(train_examples / N) rounded to a multiple of 8 (at least 8). Steps per
    epoch then grow with the square root of the data, not in proportion (docs/defaults.md)."""
    if not t.batch_scaling_examples:
        return t.batch_size
    scaled = t.batch_size * (train_examples / t.batch_scaling_examples) ** 0.5
    return max(8, 8 * round(scaled / 8))


def make_optimizer(cfg, total_steps: int):
    """The optimizer with its learning-rate schedule (warm-up, then constant/cosine/linear)."""
    import tf_keras as keras
    from zoo.optimizers import FusedAdam, LazyAdam, WarmUp

    t = cfg.train
    warmup = int(t.warmup_fraction * total_steps)
    decay_steps = max(1, total_steps - warmup)
    lr = {"constant": lambda: t.learning_rate,
          "cosine": lambda: keras.optimizers.schedules.CosineDecay(t.learning_rate, decay_steps),
          "linear": lambda: keras.optimizers.schedules.PolynomialDecay(
              t.learning_rate, decay_steps, end_learning_rate=0.0)}[t.lr_schedule]()
    if warmup:
        lr = WarmUp(t.learning_rate, warmup, lr)
    decay = t.weight_decay or None
    adam = FusedAdam if t.fused_adam else keras.optimizers.Adam
    if t.optimizer == "adam":
        return adam(lr, weight_decay=decay)
    if t.optimizer == "lazy_adam":
        return LazyAdam(lr, weight_decay=decay)
    if t.optimizer == "adamw":  # tf-keras's weight decay is decoupled: this is AdamW
        opt = adam(lr, weight_decay=t.weight_decay, epsilon=1e-6)
        opt.exclude_from_weight_decay(var_names=["bias", "LayerNorm", "layer_norm", "gamma",
                                                 "beta"])
        return opt
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, weight_decay=decay)
    return keras.optimizers.RMSprop(lr, weight_decay=decay)


def track_random_state(model):
    """Adds the random layers' generator states (dropout, augmentation) to the model's
    checkpoints, which tf-keras leaves out, so a resumed run draws what an uninterrupted one
    would have drawn. Needs `enable_tf_random_generator()` before the model is built."""
    model.random_states = [
        layer._random_generator._generator for layer in model.submodules
        if getattr(getattr(layer, "_random_generator", None), "_generator", None) is not None]


def set_threads(intra: int, inter: int):
    """TensorFlow's CPU thread pools (0 keeps its default); they can only be set before the
    first op runs, so a process that already ran one keeps its own and says so."""
    import tensorflow as tf
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as e:
        logging.warning("thread settings not applied (TensorFlow is already running): %s", e)


def precision_policy(name: str, strategy) -> str:
    """The Keras precision policy; `auto` is mixed_bfloat16 on TPUs and on CPUs with bfloat16
    instructions (AVX512-BF16, AMX), mixed_float16 on GPUs, none otherwise."""
    if name != "auto":
        return name
    import tensorflow as tf
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "none"


def run(cfg: ExperimentConfig, model_dir: str | Path) -> dict:
    """Trains `cfg` into `model_dir` (resuming if a backup is there); returns the metrics.
    The process's precision policy and op determinism are as they were after it returns or
    raises (models built later in the process don't inherit the run's)."""
    with process_settings_restored():
        return _train(cfg, model_dir)


@contextlib.contextmanager
def process_settings_restored():
    """Restores the Keras precision policy and TensorFlow's op determinism on exit; before
    TensorFlow's import they are its defaults (float32, off)."""
    def current():
        if "tensorflow" not in sys.modules:
            return "float32", False
        import tf_keras as keras
        from tensorflow.python.framework import config  # the public API can't disable it
        return keras.mixed_precision.global_policy().name, config.is_op_determinism_enabled()

    policy, deterministic = current()
    try:
        yield
    finally:
        if "tensorflow" in sys.modules and current() != (policy, deterministic):
            import tf_keras as keras
            from tensorflow.python.framework import config
            keras.mixed_precision.set_global_policy(policy)
            (config.enable_op_determinism if deterministic else config.disable_op_determinism)()


def _train(cfg: ExperimentConfig, model_dir: str | Path) -> dict:
    model_dir = Path(model_dir)
    entry = registry.get(cfg.model_name)
    saved = saved_run(model_dir, cfg.model_name)
    if saved is not None:
        check_same_training(model_dir, cfg)

    t = cfg.train
    from zoo import data, distribute
    data.check_local(cfg.data.dataset)  # fail fast: before TensorFlow's import
    distribute.check_request(t.strategy, t.tpu)
    set_threads(t.intra_op_threads, t.inter_op_threads)
    if t.cpu_devices:
        distribute.split_cpu(t.cpu_devices)
    import tensorflow as tf
    import tf_keras as keras
    from zoo import resume
    from zoo.callbacks import GracefulStop, ProgressLogger, StepBackup, ThroughputMeter

    keras.utils.set_random_seed(t.seed)
    keras.backend.experimental.enable_tf_random_generator()  # see track_random_state
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)

    strategy, why = distribute.choose(t.strategy, t.tpu)
    precision = precision_policy(t.mixed_precision, strategy)
    keras.mixed_precision.set_global_policy("float32" if precision == "none" else precision)
    replicas = strategy.num_replicas_in_sync
    strategy_name = distribute.describe(strategy)
    logging.info("strategy: %s with %d replica(s), because %s", strategy_name, replicas, why)
    chief = strategy.extended.should_checkpoint

    train_ds, eval_ds, info = data.load(cfg, entry.task)
    if getattr(cfg.model, "num_classes", info.num_classes) != info.num_classes:
        try:
            set_field(cfg.model, "model", "num_classes", info.num_classes)
        except ConfigError:
            raise ConfigError(f"{cfg.data.dataset} has {info.num_classes} classes "
                              f"({', '.join(info.class_names[:10])}); {cfg.model_name} "
                              f"takes model.num_classes={cfg.model.num_classes}")
    if cfg.data.max_examples:
        train_ds = train_ds.take(cfg.data.max_examples)
        info.train_examples = min(info.train_examples, cfg.data.max_examples)
    if cfg.data.max_eval_examples:
        eval_ds = eval_ds.take(cfg.data.max_eval_examples)
        info.eval_examples = min(info.eval_examples, cfg.data.max_eval_examples)
    batch_size = scaled_batch_size(t, info.train_examples)
    batch_text = f"train.batch_size={t.batch_size}" + (
        f" (scaled to {batch_size} for {info.train_examples} examples by "
        f"train.batch_scaling_examples={t.batch_scaling_examples})" if batch_size != t.batch_size
        else "")
    if batch_size % replicas:
        raise ConfigError(f"{batch_text} is not divisible by the {replicas} replicas of "
                          f"{strategy_name}")
    steps_per_epoch = t.steps_per_epoch or info.train_examples // batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"{batch_text} is larger than the {info.train_examples} training "
                          "examples")
    logging.info("data: %s, %d train / %d eval examples, %d classes; batch %d", info.source,
                 info.train_examples, info.eval_examples, info.num_classes, batch_size)

    import shutil
    import tempfile
    model_dir.mkdir(parents=True, exist_ok=True)
    fresh = chief and saved is None  # only a fresh run's chief writes model_dir/assets
    # a rerun or another worker prepares into a scratch folder, removed once the model is
    # built (the model holds what it read; a rerun goes on with the run's own assets)
    scratch = None if fresh else tempfile.mkdtemp(prefix="zoo-assets-")
    assets_dir = model_dir / "assets" if fresh else Path(scratch)
    assets_dir.mkdir(exist_ok=True)
    try:
        if entry.prepare:
            cfg.model = entry.prepare(cfg.model, train_ds, assets_dir)
        if saved is not None:
            check_same_model(model_dir, saved, cfg.model)
            for key in saved:  # keep the run's own assets
                if key.endswith("_file"):
                    setattr(cfg.model, key, saved[key])
        if chief:
            (model_dir / "assets").mkdir(exist_ok=True)
            write_atomic(model_dir / "assets" / "labels.txt", "\n".join(info.class_names) + "\n")
            write_atomic(model_dir / CONFIG_FILE, stored_yaml(cfg, model_dir))

        with strategy.scope():
            model = entry.build(cfg.model)
            if entry.load_pretrained:
                entry.load_pretrained(model, cfg.model)
            preprocess, trainable = split_preprocessing(model)
            track_random_state(trainable)
            binary = trainable.output_shape[-1] == 1
            trainable.compile(
                optimizer=make_optimizer(cfg, t.epochs * steps_per_epoch),
                loss=("binary_crossentropy" if binary else "sparse_categorical_crossentropy"),
                metrics=[keras.metrics.BinaryAccuracy(name="accuracy") if binary
                         else keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                steps_per_execution=t.steps_per_execution, jit_compile=t.jit_compile)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    start = resume.find(model_dir, steps_per_epoch, chief=chief)
    finished = start.epoch >= t.epochs  # nothing left to train: the same command rerun
    if start.weights:
        trainable.load_weights(start.weights)
    elif finished:  # no fit, whose BackupAndRestore restores the backup
        tf.train.Checkpoint(model=trainable).read(start.source).expect_partial()
    if finished:
        logging.info("%s holds a finished run (%d epochs); evaluating its final weights",
                     model_dir, t.epochs)
    elif start.resumed:
        logging.info("resumed from epoch %d, step %d of %s", start.epoch + 1, start.step,
                     model_dir)

    pipeline = dict(cache=cfg.data.cache, seed=t.seed, preprocess=preprocess,
                    prefetch=cfg.data.prefetch)
    train_batches = data.batched(train_ds, batch_size, True, repeat=True,
                                 shuffle_buffer=cfg.data.shuffle_buffer, **pipeline)
    # the batches an uninterrupted run would see next
    train_batches = train_batches.skip(start.epoch * steps_per_epoch + start.step)
    eval_batches = data.batched(eval_ds, batch_size, False, **pipeline)
    eval_steps = -(-info.eval_examples // batch_size)  # steps_per_execution needs a count

    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    every = min(t.checkpoint_every_steps or steps_per_epoch, steps_per_epoch)
    backup = StepBackup(  # a backup at least at every epoch's end, in executions rounded up;
        # batch-level always, so a backup a signal asks for mid-epoch resumes there
        str(model_dir / "backup"), delete_checkpoint=False,
        save_freq=max(1, -(-every // t.steps_per_execution)))
    meter = ThroughputMeter(batch_size, start.step)
    stopper = GracefulStop(backup)
    callbacks = [
        meter,  # first: an epoch's last mark precedes the backup taken at its last step, so
                # that backup counts as epoch-end work, like validation and the epoch's
                # checkpoint (a mid-epoch backup still falls in a timed window)
        backup,
        keras.callbacks.ModelCheckpoint(str(model_dir / "checkpoints" / "ckpt-{epoch:04d}"),
                                        save_weights_only=True),
        keras.callbacks.TensorBoard(str(model_dir / "logs"), profile_batch=0),
    ]
    if not multi_worker:  # there Ctrl-C is a KeyboardInterrupt, SIGTERM the handler's
        callbacks.append(stopper)
    tty = sys.stdout.isatty()
    if not tty:
        callbacks.append(ProgressLogger(t.log_every_steps, steps_per_epoch, t.epochs))

    started = time.time()
    if finished:
        results = trainable.evaluate(eval_batches, steps=eval_steps, return_dict=True,
                                     verbose=0)
    else:
        with contextlib.nullcontext() if multi_worker else stopper.installed():
            history = trainable.fit(train_batches, epochs=t.epochs, initial_epoch=start.epoch,
                                    steps_per_epoch=steps_per_epoch, validation_data=eval_batches,
                                    validation_steps=eval_steps,
                                    callbacks=callbacks, verbose=1 if tty else 0)
        if stopper.stopped_at:
            raise Stopped(stopper.signal, *stopper.stopped_at, model_dir)
        # the last epoch's validation: these weights on the evaluation split
        results = {key[len("val_"):]: values[-1] for key, values in history.history.items()
                   if key.startswith("val_")}
    digest = weights_digest(trainable)
    logging.info("final weights digest %s", digest)

    metrics = {
        "model": cfg.model_name,
        **{k: float(v) for k, v in results.items()},
        "examples_per_sec": meter.examples_per_sec(),
        "throughput_includes_warmup": meter.includes_warmup(),
        "wall_time_s": round(time.time() - started, 3),
        "strategy": strategy_name,
        "strategy_reason": why,
        "mixed_precision": precision,
        "replicas": replicas,
        "epochs": t.epochs,
        "global_batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "train_examples": info.train_examples,
        "eval_examples": info.eval_examples,
        "resumed_from": ({"epoch": start.epoch + 1, "step": start.step} if start.resumed
                         else None),
        "weights_sha256": digest,
        "tensorflow": tf.__version__,
    }
    earlier = model_dir / METRICS_FILE
    if finished and earlier.is_file():  # a finished run's rerun keeps how it trained
        kept = ("examples_per_sec", "throughput_includes_warmup", "wall_time_s", "resumed_from")
        metrics.update({k: v for k, v in json.loads(earlier.read_text()).items() if k in kept})
    if chief:
        write_atomic(model_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    logging.info("accuracy %.4f, %.0f examples/s, %.1f s; wrote %s", metrics.get("accuracy", 0),
                 metrics["examples_per_sec"] or 0, metrics["wall_time_s"], model_dir)
    return metrics


class Stopped(Exception):
    """Training stopped on a signal after writing a backup."""

    def __init__(self, signum, epoch, step, model_dir):
        import signal
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name} at epoch {epoch + 1}, step "
                         f"{step + 1}: backup written to {model_dir / 'backup'}; rerun the same "
                         "command to resume")


DISK_ERRORS = ("No space left on device", "File too large", "Disk quota exceeded")


def failure_message(error: BaseException, model_dir: str) -> str | None:
    """A one-line explanation of a run-time failure the user can act on, or None."""
    text = str(error)
    reason = next((r for r in DISK_ERRORS if r in text), None)
    if reason:
        return (f"can't write to {model_dir}: {reason}; the last complete checkpoint is kept: "
                "free space and rerun the same command to resume")
    tf = sys.modules.get("tensorflow")
    from zoo.distribute import cluster_size
    lost_peer = tf and isinstance(error, (tf.errors.UnavailableError, tf.errors.CancelledError,
                                          tf.errors.DeadlineExceededError,
                                          tf.errors.AbortedError, tf.errors.InternalError))
    if lost_peer and cluster_size() > 1:
        first = text.strip().splitlines()[0][:160] if text.strip() else type(error).__name__
        return ("a worker of the multi-worker cluster stopped answering (" + first + "); "
                f"restart every worker with the same command to resume from {model_dir}")
    return None


ZOO_DIR = str(Path(__file__).resolve().parent) + os.sep


def own_info_only(record) -> bool:
    """A log filter: warnings and errors pass, INFO lines only from zoo's own modules, so
    TensorFlow's (a `Sharding callback duration` line per checkpoint, ...) wait for --verbose."""
    import logging as std_logging
    return record.levelno >= std_logging.WARNING or record.pathname.startswith(ZOO_DIR)


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}; flags take the form --name=value",
              file=sys.stderr)
        sys.exit(2)
    if not FLAGS.verbose:
        logging.get_absl_handler().addFilter(own_info_only)
    model_dir = FLAGS.model_dir or os.path.join("runs", FLAGS.model or "")
    try:
        run(config_from_flags(), model_dir)
    except (ConfigError, DataError, ResumeError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Stopped as e:
        print(str(e), file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last checkpoint",
              file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        message = failure_message(e, model_dir)
        if message is None:
            raise
        logging.info("failure: %r", e)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def entry_point():
    """Console entry: the CLI's TensorFlow settings (zoo.environment), TensorFlow's C++ logs
    quiet unless asked, then absl's app."""
    from zoo import environment
    environment.use_cli_settings()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    logging.set_verbosity(logging.INFO)
    app.run(main)


if __name__ == "__main__":
    entry_point()
