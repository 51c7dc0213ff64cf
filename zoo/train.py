"""`python -m zoo.train --model=NAME`: training as a sequence of phases, then the CLI.

`run(cfg, model_dir)` is preflight -> runtime -> load_data -> prepare_run_dir -> build_model ->
resume_point -> input_batches -> make_callbacks -> fit_or_evaluate -> run_metrics ->
write_metrics; each phase takes the config section or the values it needs. `model_dir` is laid
out by `zoo.run_dir.RunDir`: `config.yaml`, `checkpoints/` (weights per epoch), `backup/`
(training state for resuming after a crash), `logs/` (TensorBoard), `assets/` and
`metrics.json`. Rerunning the same command resumes from the last backup. The CLI (flags ->
config -> run) is the last part of the module.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from absl import app, flags, logging

from zoo import files, registry
from zoo.config import ConfigError, ExperimentConfig, load_config, read_yaml, set_field
from zoo.data import FORMS, DataError
from zoo.files import resolved_path, run_file_keys, stored_path, write_atomic
from zoo.parts import Parts, split_preprocessing
from zoo.resume import ResumeError, ResumePoint
from zoo.run_dir import RunDir


def saved_run(model_dir: str | Path, model_name: str) -> dict | None:
    """The model section of the run already in `model_dir`; another model's run is refused."""
    run_dir = RunDir(model_dir)
    if not files.isfile(run_dir.config):
        return None
    saved = read_yaml(run_dir.config).get("model") or {}
    if saved.get("name") != model_name:
        raise ConfigError(f"{run_dir} holds a run of model {saved.get('name')!r}, not "
                          f"{model_name!r}; choose another --model_dir")
    return {key: resolved_path(value, run_dir) if key.endswith("_file") else value
            for key, value in saved.items()}


# what decides which batches each step of a run sees: a run resumed with another value would
# go on as if nothing changed (only train.epochs may grow)
RESUME_KEYS = ("data.dataset", "data.train_split", "data.eval_split", "data.max_examples",
               "data.synthetic_examples", "train.batch_size", "train.batch_scaling_examples",
               "train.steps_per_epoch")


def check_same_training(run_dir: RunDir, cfg: ExperimentConfig):
    """Refuses to continue the run in `run_dir` with another RESUME_KEYS value."""
    saved = read_yaml(run_dir.config)
    for key in RESUME_KEYS:
        section, name = key.split(".")
        if name not in (saved.get(section) or {}):
            continue  # a run written before the key existed
        old, new = saved[section][name], getattr(getattr(cfg, section), name)
        if old != new:
            raise ConfigError(f"{run_dir} holds a run with {key}={old!r}, not {new!r}; "
                              "resume it as it was or choose another --model_dir")


def stored_yaml(cfg: ExperimentConfig, run_dir: RunDir) -> str:
    """config.yaml's text: the run's files relative to the run's root (see `stored_path`)."""
    files = {key: stored_path(getattr(cfg.model, key), run_dir)
             for key in run_file_keys(cfg.model)}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **files)).to_yaml()


def check_same_model(run_dir: RunDir, saved: dict, model_cfg):
    """Refuses to continue a run whose model config differs; `*_file` assets compare by
    content (a vocabulary learned again from the same data is the same vocabulary)."""
    for key, value in dataclasses.asdict(model_cfg).items():
        old = saved.get(key)
        if key.endswith("_file") and old and value and files.isfile(old):
            same = files.isfile(value) and files.read_bytes(old) == files.read_bytes(value)
        else:
            same = old == value
        if not same:
            raise ConfigError(
                f"{run_dir} holds a run with model.{key}={old!r}, not {value!r}; choose "
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


def make_optimizer(t, total_steps: int):
    """The optimizer of the train section `t` with its learning-rate schedule (warm-up, then
    constant/cosine/linear)."""
    import tf_keras as keras
    from zoo.optimizers import FusedAdam, LazyAdam, WarmUp

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


# the phases of a run, in the order `run` calls them


@dataclasses.dataclass
class Runtime:
    """Where the run computes: the strategy, why it was chosen and the precision policy."""
    strategy: object    # a tf.distribute.Strategy
    name: str           # the strategy in words (zoo.distribute.describe)
    why: str
    precision: str      # the Keras precision policy; "none" runs in float32
    replicas: int
    chief: bool         # this worker writes the run's files


@dataclasses.dataclass
class TrainingData:
    """The unbatched (input, label) datasets, what they hold, and the global batch and steps
    per epoch they are trained at."""
    train: object       # tf.data.Dataset
    eval: object
    info: object        # zoo.data.DatasetInfo
    batch_size: int
    steps_per_epoch: int


@dataclasses.dataclass
class Batches:
    """The batched pipelines: training from where the run resumes, evaluation in full."""
    train: object
    eval: object
    eval_steps: int     # steps_per_execution needs a count


@dataclasses.dataclass
class Callbacks:
    """fit's callbacks, with the two the run reads back."""
    all: list
    meter: object       # zoo.callbacks.ThroughputMeter
    stopper: object     # zoo.callbacks.GracefulStop (ClusterStop under MultiWorkerMirrored)


@dataclasses.dataclass
class Outcome:
    """What fitting (or evaluating a finished run) gave."""
    results: dict       # the evaluation split's metrics
    digest: str         # weights_digest of the final weights
    wall_time_s: float


def preflight(cfg: ExperimentConfig, run_dir: RunDir) -> dict | None:
    """The checks that need no TensorFlow: a run already in `run_dir` is this model's and
    trains the same batches, the local dataset and the strategy asked for exist. Returns the
    saved run's model section (see `saved_run`)."""
    from zoo import data, distribute
    saved = saved_run(run_dir, cfg.model_name)
    if saved is not None:
        check_same_training(run_dir, cfg)
    data.check_local(cfg.data.dataset)  # fail fast: before TensorFlow's import
    distribute.check_request(cfg.train.strategy, cfg.train.tpu)
    return saved


def runtime(t) -> Runtime:
    """The process's settings from the train section `t` (threads, CPU devices, seeds, op
    determinism, GPU memory growth), then the strategy and the precision policy."""
    from zoo import distribute
    set_threads(t.intra_op_threads, t.inter_op_threads)
    if t.cpu_devices:
        distribute.split_cpu(t.cpu_devices)
    import tensorflow as tf
    import tf_keras as keras

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
    name = distribute.describe(strategy)
    logging.info("strategy: %s with %d replica(s), because %s", name, replicas, why)
    return Runtime(strategy, name, why, precision, replicas,
                   chief=strategy.extended.should_checkpoint)


def load_data(cfg: ExperimentConfig, task: str, rt: Runtime) -> TrainingData:
    """The datasets of `cfg.data` for the model's `task`, cut to data.max_examples and
    data.max_eval_examples, with the batch (`scaled_batch_size`) and the steps per epoch;
    sets model.num_classes to the dataset's where the model takes any."""
    from zoo import data
    t = cfg.train
    train_ds, eval_ds, info = data.load(cfg, task)
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
    if batch_size % rt.replicas:
        raise ConfigError(f"{batch_text} is not divisible by the {rt.replicas} replicas of "
                          f"{rt.name}")
    steps_per_epoch = t.steps_per_epoch or info.train_examples // batch_size
    if steps_per_epoch < 1:
        raise ConfigError(f"{batch_text} is larger than the {info.train_examples} training "
                          "examples")
    logging.info("data: %s, %d train / %d eval examples, %d classes; batch %d", info.source,
                 info.train_examples, info.eval_examples, info.num_classes, batch_size)
    return TrainingData(train_ds, eval_ds, info, batch_size, steps_per_epoch)


@contextlib.contextmanager
def prepare_run_dir(cfg: ExperimentConfig, prepare, data: TrainingData, run_dir: RunDir,
                    saved: dict | None, chief: bool):
    """Creates `run_dir`, has the model's `prepare` (if any) write its assets (a vocabulary)
    and, on the chief, writes assets/labels.txt and config.yaml. A rerun goes on with the
    run's own assets (checked to match); it and another worker prepare into a scratch folder,
    removed on leaving the block, once the model is built (the model holds what it read)."""
    import shutil
    import tempfile
    files.makedirs(run_dir)
    fresh = chief and saved is None  # only a fresh run's chief writes model_dir/assets
    scratch = None if fresh else tempfile.mkdtemp(prefix="zoo-assets-")
    assets_dir = run_dir.assets if fresh else scratch
    files.makedirs(assets_dir)
    try:
        if prepare:
            cfg.model = prepare(cfg.model, data.train, assets_dir)
        if saved is not None:
            check_same_model(run_dir, saved, cfg.model)
            for key in saved:  # keep the run's own assets
                if key.endswith("_file"):
                    setattr(cfg.model, key, saved[key])
        if chief:
            files.makedirs(run_dir.assets)
            write_atomic(run_dir.labels, "\n".join(data.info.class_names) + "\n")
            write_atomic(run_dir.config, stored_yaml(cfg, run_dir))
        yield
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def build_model(entry, model_cfg, t, strategy, steps_per_epoch: int) -> Parts:
    """The registry `entry`'s model of `model_cfg` under `strategy` (pretrained weights loaded
    where it has them), its core compiled with the optimizer of the train section `t`."""
    import tf_keras as keras
    with strategy.scope():
        model = entry.build(model_cfg)
        if entry.load_pretrained:
            entry.load_pretrained(model, model_cfg)
        parts = split_preprocessing(model)
        track_random_state(parts.core)
        binary = parts.core.output_shape[-1] == 1
        parts.core.compile(
            optimizer=make_optimizer(t, t.epochs * steps_per_epoch),
            loss=("binary_crossentropy" if binary else "sparse_categorical_crossentropy"),
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy") if binary
                     else keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            steps_per_execution=t.steps_per_execution, jit_compile=t.jit_compile)
    return parts


def resume_point(trainable, run_dir: RunDir, t, steps_per_epoch: int,
                 chief: bool) -> tuple[ResumePoint, bool]:
    """Where the run in `run_dir` goes on (`zoo.resume.find`), with `trainable` holding an
    epoch checkpoint's weights where it resumes from one; and whether it is finished (nothing
    left of t.epochs to train: the same command rerun), its final weights then loaded."""
    import tensorflow as tf
    from zoo import resume
    start = resume.find(run_dir, steps_per_epoch, chief=chief)
    finished = start.epoch >= t.epochs
    if start.weights:
        trainable.load_weights(start.weights)
    elif finished:  # no fit, whose BackupAndRestore restores the backup
        tf.train.Checkpoint(model=trainable).read(start.source).expect_partial()
    if finished:
        logging.info("%s holds a finished run (%d epochs); evaluating its final weights",
                     run_dir, t.epochs)
    elif start.resumed:
        logging.info("resumed from epoch %d, step %d of %s", start.epoch + 1, start.step,
                     run_dir)
    return start, finished


def input_batches(data: TrainingData, data_cfg, seed: int, preprocess,
                  start: ResumePoint) -> Batches:
    """The pipelines of the data section `data_cfg`: training repeated, shuffled and started at
    the batches an uninterrupted run would see next; evaluation in order."""
    from zoo.data import batched
    pipeline = dict(cache=data_cfg.cache, seed=seed, preprocess=preprocess,
                    prefetch=data_cfg.prefetch)
    train = batched(data.train, data.batch_size, True, repeat=True,
                    shuffle_buffer=data_cfg.shuffle_buffer, **pipeline)
    train = train.skip(start.epoch * data.steps_per_epoch + start.step)
    return Batches(train, batched(data.eval, data.batch_size, False, **pipeline),
                   eval_steps=-(-data.info.eval_examples // data.batch_size))


def make_callbacks(run_dir: RunDir, t, strategy, data: TrainingData,
                   start: ResumePoint) -> Callbacks:
    """Throughput, backups (every t.checkpoint_every_steps or each epoch), epoch checkpoints,
    TensorBoard, the stop on a signal (agreed across workers under MultiWorkerMirrored) and,
    when the output is no TTY, progress lines."""
    import tensorflow as tf
    import tf_keras as keras
    from zoo.callbacks import (ClusterStop, EpochCheckpoint, GracefulStop, ProgressLogger,
                               StepBackup, ThroughputMeter)
    steps_per_epoch = data.steps_per_epoch
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    every = min(t.checkpoint_every_steps or steps_per_epoch, steps_per_epoch)
    backup = StepBackup(  # a backup at least at every epoch's end, in executions rounded up;
        # batch-level always, so a backup a signal asks for mid-epoch resumes there
        run_dir.backup, delete_checkpoint=False,
        save_freq=max(1, -(-every // t.steps_per_execution)))
    meter = ThroughputMeter(data.batch_size, start.step)
    stopper = (ClusterStop(backup, strategy.cluster_resolver) if multi_worker
               else GracefulStop(backup))
    callbacks = [
        meter,  # first: an epoch's last mark precedes the backup taken at its last step, so
                # that backup counts as epoch-end work, like validation and the epoch's
                # checkpoint (a mid-epoch backup still falls in a timed window)
        backup,
        EpochCheckpoint(run_dir.epoch_checkpoint_pattern, save_weights_only=True),
        keras.callbacks.TensorBoard(run_dir.logs, profile_batch=0),
        stopper,
    ]
    if not sys.stdout.isatty():
        callbacks.append(ProgressLogger(t.log_every_steps, steps_per_epoch, t.epochs))
    return Callbacks(callbacks, meter, stopper)


def fit_or_evaluate(trainable, batches: Batches, callbacks: Callbacks, t, start: ResumePoint,
                    finished: bool, steps_per_epoch: int, run_dir: RunDir) -> Outcome:
    """Fits `trainable` from `start` to t.epochs (raising Stopped when a signal stopped it),
    or evaluates a finished run; the results are the evaluation split's."""
    started = time.time()
    if finished:
        results = trainable.evaluate(batches.eval, steps=batches.eval_steps, return_dict=True,
                                     verbose=0)
    else:
        stopper = callbacks.stopper
        with stopper.installed():
            history = trainable.fit(batches.train, epochs=t.epochs, initial_epoch=start.epoch,
                                    steps_per_epoch=steps_per_epoch, validation_data=batches.eval,
                                    validation_steps=batches.eval_steps,
                                    callbacks=callbacks.all,
                                    verbose=1 if sys.stdout.isatty() else 0)
        if stopper.stopped_at:
            raise Stopped(stopper.signal, *stopper.stopped_at, run_dir)
        # the last epoch's validation: these weights on the evaluation split
        results = {key[len("val_"):]: values[-1] for key, values in history.history.items()
                   if key.startswith("val_")}
    digest = weights_digest(trainable)
    logging.info("final weights digest %s", digest)
    return Outcome(results, digest, round(time.time() - started, 3))


def run_metrics(model_name: str, epochs: int, outcome: Outcome, meter, rt: Runtime,
                data: TrainingData, start: ResumePoint) -> dict:
    """metrics.json's content: the results, throughput and how the run was set up."""
    import tensorflow as tf
    return {
        "model": model_name,
        **{k: float(v) for k, v in outcome.results.items()},
        "examples_per_sec": meter.examples_per_sec(),
        "throughput_includes_warmup": meter.includes_warmup(),
        "wall_time_s": outcome.wall_time_s,
        "strategy": rt.name,
        "strategy_reason": rt.why,
        "mixed_precision": rt.precision,
        "replicas": rt.replicas,
        "epochs": epochs,
        "global_batch_size": data.batch_size,
        "steps_per_epoch": data.steps_per_epoch,
        "train_examples": data.info.train_examples,
        "eval_examples": data.info.eval_examples,
        "resumed_from": ({"epoch": start.epoch + 1, "step": start.step} if start.resumed
                         else None),
        "weights_sha256": outcome.digest,
        "tensorflow": tf.__version__,
    }


def write_metrics(run_dir: RunDir, metrics: dict, finished: bool, chief: bool) -> dict:
    """Writes metrics.json (on the chief) and returns the metrics; a finished run's rerun
    keeps how the run trained (throughput, wall time, where it resumed)."""
    if finished and files.isfile(run_dir.metrics):
        kept = ("examples_per_sec", "throughput_includes_warmup", "wall_time_s", "resumed_from")
        earlier = json.loads(files.read_text(run_dir.metrics))
        metrics.update({k: v for k, v in earlier.items() if k in kept})
    if chief:
        write_atomic(run_dir.metrics, json.dumps(metrics, indent=2) + "\n")
    logging.info("accuracy %.4f, %.0f examples/s, %.1f s; wrote %s", metrics.get("accuracy", 0),
                 metrics["examples_per_sec"] or 0, metrics["wall_time_s"], run_dir)
    return metrics


def run(cfg: ExperimentConfig, model_dir: str | Path) -> dict:
    """Trains `cfg` into `model_dir` (resuming if a backup is there); returns the metrics.
    The process's precision policy and op determinism are as they were after it returns or
    raises (models built later in the process don't inherit the run's)."""
    run_dir, t = RunDir(model_dir), cfg.train
    with process_settings_restored():
        entry = registry.get(cfg.model_name)
        saved = preflight(cfg, run_dir)
        rt = runtime(t)
        data = load_data(cfg, entry.task, rt)
        with prepare_run_dir(cfg, entry.prepare, data, run_dir, saved, rt.chief):
            model = build_model(entry, cfg.model, t, rt.strategy, data.steps_per_epoch)
        start, finished = resume_point(model.core, run_dir, t, data.steps_per_epoch, rt.chief)
        batches = input_batches(data, cfg.data, t.seed, model.preprocessor, start)
        callbacks = make_callbacks(run_dir, t, rt.strategy, data, start)
        outcome = fit_or_evaluate(model.core, batches, callbacks, t, start, finished,
                                  data.steps_per_epoch, run_dir)
        metrics = run_metrics(cfg.model_name, t.epochs, outcome, callbacks.meter, rt, data,
                              start)
        return write_metrics(run_dir, metrics, finished, rt.chief)


class Stopped(Exception):
    """Training stopped on a signal after writing a backup. `signum` is None on a worker that
    stopped because another worker of its cluster was signalled; it exits as after SIGTERM
    (143, which Kubeflow's ExitCode restart policy retries)."""

    def __init__(self, signum, epoch, step, model_dir):
        import signal
        self.exit_code = 128 + (signum or signal.SIGTERM)
        why = (f"by {signal.Signals(signum).name}" if signum
               else "because another worker was signalled")
        super().__init__(f"stopped {why} at epoch {epoch + 1}, step {step + 1}: backup written "
                         f"to {RunDir(model_dir).backup}; rerun the same command to resume")


DISK_ERRORS = ("No space left on device", "File too large", "Disk quota exceeded")


def failure_message(error: BaseException, model_dir: str) -> str | None:
    """A one-line explanation of a run-time failure the user can act on, or None."""
    text = str(error)
    reason = next((r for r in DISK_ERRORS if r in text), None)
    if reason:
        return (f"can't write to {model_dir}: {reason}; the last complete checkpoint is kept: "
                "free space and rerun the same command to resume")
    if files.storage_failure(error):
        return files.storage_failure(error)
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


# the CLI: flags -> config -> run

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


ZOO_DIR = str(Path(__file__).resolve().parent) + os.sep


def own_info_only(record) -> bool:
    """A log filter: warnings and errors pass, INFO lines only from zoo's own modules, so
    TensorFlow's (a `Sharding callback duration` line per checkpoint, ...) wait for --verbose."""
    import logging as std_logging
    if record.pathname.endswith("deprecation.py") and "failure_handling" in record.getMessage():
        return False  # TensorFlow's preemption handler calling its own deprecated property
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
