"""`python -m tools.bench [--models=...] [--quick] [--out=DIR]`: zoo against the classic recipes.

Per model, side by side in one run: training examples/second of `zoo.train` and of the classic
script in `tools/baselines/` (same network, same data, same batch size), their accuracy after
the same epochs, the training step's achieved FLOP/s and its fraction of this machine's peak,
the speed features switched one at a time, and per TFLite variant the LiteRT latency (batch 1),
throughput (batch 32), file size and accuracy; peak resident memory of every process.

Every measurement runs in its own child process (`--job=FILE`, fresh TensorFlow, own memory
peak); the parent imports no TensorFlow. Writes `OUT/bench.json`, `OUT/bench.png` and prints
the tables. Data: the real data in `../shared/data` when present, synthetic data of the same
shapes otherwise (`--synthetic` forces it).

Adding a row: an entry in `MODELS` (zoo overrides, a data function, a baseline module).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from zoo.schema import QUANTIZATIONS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# --- machine peak ----------------------------------------------------------------------------
# TensorFlow turns its oneDNN kernels on by itself only on CPUs with one of these (zoo's CLIs
# turn them on everywhere on x86: zoo.environment); the classic recipes run with TensorFlow's.
ONEDNN_CPU_FLAGS = {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
                    "amx_bf16"}
BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}
# the practical peak: the best of PEAK_REPEATS timed PEAK_SIZE x PEAK_SIZE matmuls
PEAK_SIZE, PEAK_REPEATS = 2048, 10


def machine() -> dict:
    """The CPU, its cores and which instructions it has (the peak is measured: `job_peak`)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    field = lambda key: next((line.split(":", 1)[1].strip() for line in info.splitlines()
                              if line.startswith(key)), "")
    flags = set(field("flags").split())
    return {"cpu": field("model name") or platform.processor(),
            "cores": len(os.sched_getaffinity(0)), "avx512_bf16": "avx512_bf16" in flags,
            "bfloat16": bool(BF16_CPU_FLAGS & flags),
            "tensorflow_onednn_default": bool(ONEDNN_CPU_FLAGS & flags)}


def measured_peak(jobs, m: dict) -> dict:
    """This machine's practical peak FLOP/s in this run, fp32 and (on CPUs with bfloat16
    instructions) bf16: `peak_fp32_flops`, `peak_bfloat16_flops`, `peak_rule`."""
    dtypes = ["float32"] + (["bfloat16"] if m["bfloat16"] else [])
    r = jobs("peak", f"peak: {PEAK_SIZE}x{PEAK_SIZE} matmul, {', '.join(dtypes)}",
             size=PEAK_SIZE, repeats=PEAK_REPEATS, dtypes=dtypes)
    return {"peak_fp32_flops": r.get("float32"), "peak_bfloat16_flops": r.get("bfloat16"),
            "peak_rule": f"best of {PEAK_REPEATS} {PEAK_SIZE}x{PEAK_SIZE} tf.matmul "
                         f"({', '.join(dtypes)}) in a zoo process, measured in this run"}


# --- data ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    source: str               # "real: PATH" or "synthetic"
    zoo: list[str]            # config overrides that point zoo.train at it
    baseline: dict            # keyword arguments of the baseline's run()


def data_directory(args, real: Path, needed: list[str], synthetic: Path,
                   write_synthetic) -> tuple[Path, str]:
    """(directory, source): `real` when it holds every `needed` entry and --synthetic is off,
    else `synthetic`, filled by `write_synthetic(synthetic)`."""
    if all((real / name).exists() for name in needed) and not args.synthetic:
        return real, f"real: {real}"
    write_synthetic(synthetic)
    return synthetic, "synthetic"


def mnist_data(work: Path, args) -> Data:
    """The real MNIST test set (8,000 to train, 2,000 to evaluate) or synthetic IDX files."""
    directory, source = data_directory(
        args, SHARED / "data" / "mnist", ["t10k-images-idx3-ubyte.gz"], work / "data" / "mnist",
        lambda d: write_synthetic_idx(d, 10_000))
    n = args.train_examples or 8000
    return Data(source, [f"data.dataset=idx:{directory}", f"data.train_split=t10k[:{n}]",
                         "data.eval_split=t10k[8000:]"],
                {"data_dir": str(directory), "max_train": n})


def write_synthetic_idx(directory: Path, n: int, seed: int = 0):
    """MNIST-shaped IDX files: each class a bright blob at its own place on noise."""
    import gzip
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        top, left = 2 + (k // 4) * 8 + rng.integers(0, 3), 2 + (k % 4) * 6 + rng.integers(0, 3)
        images[i, top:top + 6, left:left + 5] = rng.integers(180, 255)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array, magic in (("t10k-images-idx3-ubyte.gz", images, 3),
                               ("t10k-labels-idx1-ubyte.gz", labels, 1)):
        header = bytes([0, 0, 8, magic]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        with gzip.open(directory / name, "wb") as f:
            f.write(header + array.tobytes())


def imgcls_data(work: Path, args) -> Data:
    """Class folders of 150x150 JPEGs: `../shared/data/cats_vs_dogs` or synthetic ones."""
    n = args.train_examples or (256 if args.quick else 1600)
    directory, source = data_directory(
        args, SHARED / "data" / "cats_vs_dogs", ["train", "validation"], work / "data" / "imgcls",
        lambda d: write_synthetic_folder(d, n, max(64, n // 4)))
    cap = [f"data.max_examples={args.train_examples}"] if args.train_examples else []
    return Data(source, [f"data.dataset=folder:{directory}", "data.train_split=train",
                         "data.eval_split=validation", "data.shuffle_buffer=1000", *cap],
                {"data_dir": str(directory), "max_train": args.train_examples})


def write_synthetic_folder(directory: Path, n_train: int, n_eval: int, size: int = 150):
    """`train/{cat,dog}/*.jpg` and `validation/...`: a bright square, top left for cats and
    bottom right for dogs, on noise. A folder left by a run with other counts is rewritten."""
    import shutil

    from PIL import Image
    marker, made = directory / "done", f"{n_train} {n_eval} {size}\n"
    if marker.is_file() and marker.read_text() == made:
        return
    shutil.rmtree(directory, ignore_errors=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("validation", n_eval)):
        for i in range(n):
            label = i % 2
            image = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
            at = rng.integers(0, size // 2 - 40) + (size // 2 if label else 0)
            image[at:at + 40, at:at + 40] = rng.integers(150, 255, 3, dtype=np.uint8)
            path = directory / split / ("dog" if label else "cat") / f"{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path, quality=90)
    marker.write_text(made)


def sst2_data(work: Path, args) -> Data:
    """GLUE SST-2 (`train.tsv`, `dev.tsv`) or synthetic sentences of the same layout."""
    directory, source = data_directory(args, SHARED / "data" / "sst2", ["train.tsv"],
                                       work / "data" / "sst2", write_synthetic_tsv)
    n = args.train_examples or (16_000 if args.quick else 0)
    cap = [f"data.max_examples={n}"] if n else []
    return Data(source, [f"data.dataset=tsv:{directory}", "data.train_split=train",
                         "data.eval_split=dev", *cap],
                {"data_dir": str(directory), "max_train": n})


def bert_data(work: Path, args) -> Data:
    data = sst2_data(work, args)
    vocab = SHARED / "models" / "all-MiniLM-L6-v2" / "vocab.txt"
    if not vocab.is_file() or args.synthetic:  # every word of the training sentences
        from tools.baselines.textcls_classic import read_tsv
        from zoo.models import wordpiece
        from zoo.models.bert.classifier import RESERVED
        vocab = work / "data" / "vocab.txt"
        sentences, _ = read_tsv(Path(data.baseline["data_dir"]) / "train.tsv")
        words = sorted({w for sentence in sentences for w in sentence.split()})
        wordpiece.write_vocabulary(vocab, RESERVED + words)
    n = args.train_examples or (192 if args.quick else 960)
    n_eval = 64 if args.quick else 256  # both sides evaluate the same first dev sentences
    data.baseline.update(vocab_file=str(vocab), max_train=n, max_eval=n_eval)
    data.zoo = [z for z in data.zoo if not z.startswith("data.max_examples")] + [
        f"data.max_examples={n}", f"data.max_eval_examples={n_eval}", f"model.vocab_file={vocab}"]
    return data


def write_synthetic_tsv(directory: Path, n_train: int = 20_000, n_dev: int = 872):
    """Sentences of filler words with a positive or negative word or two in them."""
    if (directory / "dev.tsv").is_file():
        return
    rng = np.random.default_rng(0)
    filler = [f"w{i}" for i in range(2000)]
    mood = [["dull", "bad", "boring", "awful", "weak"], ["great", "fine", "moving", "fun", "good"]]
    directory.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = ["sentence\tlabel"]
        for _ in range(n):
            label = int(rng.integers(0, 2))
            words = list(rng.choice(filler, rng.integers(4, 20)))
            for _ in range(rng.integers(1, 3)):
                words.insert(int(rng.integers(0, len(words))), str(rng.choice(mood[label])))
            rows.append(" ".join(words) + f"\t{label}")
        (directory / name).write_text("\n".join(rows) + "\n")


# --- the models --------------------------------------------------------------------------------
@dataclasses.dataclass
class Bench:
    """One row: how zoo trains the model, with which data, against which classic recipe."""
    zoo: list[str]                       # config overrides for zoo.train (the same network)
    data: Callable[[Path, argparse.Namespace], Data]
    baseline: str                        # module in tools.baselines with run(data_dir, ...)
    batch_size: int
    epochs: tuple[int, int]              # (--quick, full); the first epoch is warm-up
    features: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)
    baseline_variants: dict[str, dict] = dataclasses.field(default_factory=dict)
    inference: bool = False
    repeats: tuple[int, int] = (1, 2)    # zoo/classic pairs (--quick, full)


# Each speed feature flipped away from the defaults in zoo/configs/<model>.yaml, one at a time:
# (label, config overrides[, environment changes]).
ONEDNN_ON = {"TF_ENABLE_ONEDNN_OPTS": "1"}
MIXED_OFF = "mixed precision off: float32 (default auto = mixed_bfloat16 with AVX512-BF16)"
ONEDNN_OFF = ("oneDNN kernels off: TF_ENABLE_ONEDNN_OPTS=0 (default on: zoo.environment)", [],
              {"TF_ENABLE_ONEDNN_OPTS": "0"})
MNIST_FEATURES = [
    ("tf.data cache + prefetch off", ["data.cache=false", "data.prefetch=false"]),
    ("steps_per_execution=1 (default 32)", ["train.steps_per_execution=1"]),
    (MIXED_OFF, ["train.mixed_precision=none"]),
    ("XLA jit_compile on", ["train.jit_compile=true"]),
    ("threads intra=1 inter=1 (default 0 = TensorFlow's)",
     ["train.intra_op_threads=1", "train.inter_op_threads=1"]),
    ("mid-epoch backups off", ["train.checkpoint_every_steps=0"]),
    ("tf-keras Adam, unfused (default fused kernel)", ["train.fused_adam=false"]),
    ONEDNN_OFF,
]
IMGCLS_FEATURES = [
    ("tf.data cache + prefetch off", ["data.cache=false", "data.prefetch=false"]),
    (MIXED_OFF, ["train.mixed_precision=none"]),
    ONEDNN_OFF,
]
TEXTCLS_FEATURES = [
    ("optimizer lazy_adam (default adam)", ["train.optimizer=lazy_adam"]),
    ("tf-keras Adam, unfused (default fused kernel)", ["train.fused_adam=false"]),
    ("steps_per_execution=1 (default 32)", ["train.steps_per_execution=1"]),
]
BERT_FEATURES = [
    ("mixed_bfloat16 (default none)", ["train.mixed_precision=mixed_bfloat16"]),
    ("tf-keras AdamW, unfused (default fused kernel)", ["train.fused_adam=false"]),
]
SLOW_FEATURES = ("XLA jit_compile on",  # a minute or more each here: full runs only
                 "tf-keras AdamW, unfused (default fused kernel)")

MODELS: dict[str, Bench] = {
    "mnist_cnn": Bench(
        zoo=["model.conv_filters=[32]", "model.convs_per_block=1", "model.dense_units=128",
             "model.dropout=0", "model.batch_norm=false", "model.augment=false"],
        data=mnist_data, baseline="mnist_classic", batch_size=128, epochs=(4, 10),
        features=MNIST_FEATURES, inference=True, repeats=(2, 3),
        # measured only where TensorFlow leaves oneDNN off by itself
        baseline_variants={"TF_ENABLE_ONEDNN_OPTS=1": {"env": ONEDNN_ON}}),
    "imgcls": Bench(
        zoo=["model.conv_filters=[32, 64, 128, 128]", "model.pooling=flatten",
             "model.dense_units=512", "model.dropout=0", "model.batch_norm=false",
             "model.augment=false"],
        data=imgcls_data, baseline="imgcls_classic", batch_size=32, epochs=(2, 4),
        features=IMGCLS_FEATURES),
    # The same network on both sides where the recipes allow: textcls is the zoo's model
    # (whole-word vocabulary) against the classic one, at the same vocabulary (the 10,000 most
    # frequent words, however rare: the zoo's default keeps words seen 3 times or more),
    # pooling (the classic's mean over the padded sequence; the zoo's default pools over the
    # tokens), batch size, sequence length, epochs and hidden Dense(16) (which the zoo's
    # default leaves out); bert is the MiniLM shape on both sides.
    "textcls": Bench(
        zoo=["model.vocab_size=10000", "model.min_word_count=1", "model.max_length=64",
             "model.dense_units=16", "model.pooling=padded_mean"],
        data=sst2_data, baseline="textcls_classic", batch_size=32, epochs=(3, 3),
        features=TEXTCLS_FEATURES),
    "bert": Bench(
        zoo=["model.layers=6", "model.hidden=384", "model.heads=12", "model.intermediate=1536",
             "model.max_length=64"],
        data=bert_data, baseline="bert_classic", batch_size=32, epochs=(2, 3),
        features=BERT_FEATURES,
        baseline_variants={"mixed_bfloat16": {"mixed_precision": "mixed_bfloat16"}}),
}


# --- child processes ------------------------------------------------------------------------------
class Jobs:
    """Runs each measurement in a fresh `python -m tools.bench --job=FILE` process."""

    def __init__(self, work: Path, timeout: int):
        self.dir, self.timeout, self.count = work / "jobs", timeout, 0
        self.dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, kind: str, label: str, env: dict | None = None, **spec) -> dict:
        """`env` changes the child's environment (None unsets a variable)."""
        self.count += 1
        stem = self.dir / f"{self.count:02d}-{kind}"
        spec_path = stem.with_suffix(".json")
        spec_path.write_text(json.dumps(dict(spec, kind=kind, result=str(stem) + ".out.json")))
        child_env = {**os.environ, "PYTHONPATH": str(REPO), "ZOO_OFFLINE": "1",
                     "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow",
                     "PYTHONUNBUFFERED": "1", "TF_CONFIG": None, **(env or {})}
        child_env = {k: v for k, v in child_env.items() if v is not None}
        started = time.time()
        print(f"  {label} ...", end="", flush=True)
        try:
            proc = subprocess.run([sys.executable, "-m", "tools.bench", f"--job={spec_path}"],
                                  capture_output=True, text=True, env=child_env, cwd=REPO,
                                  timeout=self.timeout)
            log, ok = proc.stdout + proc.stderr, proc.returncode == 0
        except subprocess.TimeoutExpired as e:
            log, ok = f"{e.stdout or ''}{e.stderr or ''}\ntimed out after {self.timeout} s", False
        stem.with_suffix(".log").write_text(log if isinstance(log, str) else log.decode())
        took = time.time() - started
        if not ok:
            lines = [l for l in str(log).strip().splitlines() if l.strip()]
            error = lines[-1][:300] if lines else "failed"
            print(f" failed in {took:.0f} s: {error} (log: {stem}.log)")
            return {"error": error, "log": f"{stem}.log"}
        out = json.loads(Path(str(stem) + ".out.json").read_text())
        print(f" {took:.0f} s")
        return out


def child(spec_path: str):
    """Runs one job spec and writes its result JSON, with the process's peak RSS."""
    import resource
    spec = json.loads(Path(spec_path).read_text())
    if spec["kind"] in ZOO_KINDS:  # a zoo process: the CLIs' TensorFlow settings
        from zoo import environment
        environment.use_cli_settings()
    out = {"job_kind": spec["kind"]}
    out.update(JOB_KINDS[spec["kind"]](spec))
    if "tensorflow" in sys.modules:  # which kernels this run had
        from tensorflow.python.util import _pywrap_util_port
        out["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(spec["result"]).write_text(json.dumps(out, indent=2))


def job_peak(spec) -> dict:
    """FLOP/s of the fastest of `repeats` square matmuls per dtype (after a warm-up call)."""
    import tensorflow as tf

    n, out = spec["size"], {}
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    for dtype in spec["dtypes"]:
        a, b = (tf.cast(tf.random.uniform([n, n], seed=s), dtype) for s in (1, 2))
        product(a, b).numpy()
        best = float("inf")
        for _ in range(spec["repeats"]):
            started = time.perf_counter()
            product(a, b).numpy()
            best = min(best, time.perf_counter() - started)
        out[dtype] = 2 * n ** 3 / best
    return out


def job_zoo(spec) -> dict:
    """zoo.train.run on the given overrides; with `flops`, the forward FLOPs per example."""
    from zoo import registry
    from zoo.config import load_config
    from zoo.parts import split_preprocessing
    from zoo.train import run

    cfg = load_config(spec["model"], overrides=spec["overrides"])
    metrics = run(cfg, spec["model_dir"])
    out = {k: metrics.get(k) for k in ("examples_per_sec", "accuracy", "loss", "wall_time_s",
                                       "epochs", "global_batch_size", "steps_per_epoch",
                                       "train_examples", "throughput_includes_warmup",
                                       "mixed_precision")}
    out["config"] = {"train": cfg.to_dict()["train"], "data": cfg.to_dict()["data"]}
    if spec.get("flops"):
        _, core = split_preprocessing(registry.get(spec["model"]).build(cfg.model))
        out["forward_flops_per_example"] = forward_flops(core)
    return out


def forward_flops(model) -> int:
    """FLOPs of one example through `model` (inference mode), counted by TensorFlow's profiler
    on the frozen graph of the forward pass (a multiply-add counts 2)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    specs = [tf.TensorSpec([1, *x.shape[1:]], x.dtype) for x in model.inputs]
    function = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0],
                                             training=False))
    frozen = convert_variables_to_constants_v2(function.get_concrete_function(*specs))
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)


def job_baseline(spec) -> dict:
    import importlib
    module = importlib.import_module(f"tools.baselines.{spec['module']}")
    return module.run(**spec["kwargs"])


def job_export(spec) -> dict:
    """The trained model_dir -> one .tflite per quantization (export.tflite.convert, as
    `python -m export` makes them), plus the evaluation arrays for the LiteRT jobs."""
    from export import artifacts, tflite
    from export.evaluate import accuracy
    from export.pipeline import take_arrays
    from export.source import load

    source = load(spec["model_dir"])
    eval_x, eval_y = take_arrays(source.eval_ds, spec["eval_examples"])
    calibration, _ = take_arrays(source.train_ds, spec["calibration_examples"], 0)
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "eval.npz", x=tflite.rgb(eval_x), y=eval_y)  # app files take RGB frames
    keras_accuracy = accuracy(source.model.predict(eval_x, batch_size=256, verbose=0), eval_y)
    files = {}
    for q in spec["quantizations"]:  # any batch, for the batch-32 throughput
        path = out / f"{source.name}_{q}.tflite"
        path.write_bytes(tflite.convert(source, q, artifacts.calibration_feed(
            source, calibration, False), batch_size=None))
        files[q] = str(path)
    return {"keras_accuracy": keras_accuracy, "files": files, "eval": str(out / "eval.npz")}


def job_litert(spec) -> dict:
    """One .tflite in the LiteRT interpreter alone (no TensorFlow in this process): median
    batch-1 latency, batch-32 throughput (median over timed batches), accuracy."""
    from ai_edge_litert.interpreter import Interpreter

    data = np.load(spec["eval"])
    x, y = data["x"], data["y"]

    def interpreter(batch):
        it = Interpreter(model_path=spec["path"])
        it.resize_tensor_input(it.get_input_details()[0]["index"], [batch, *x.shape[1:]])
        it.allocate_tensors()
        return it, it.get_input_details()[0], it.get_output_details()[0]

    def feed(inp, batch):  # raw pixels -> the model's input type, outside the timing
        scale, zero = inp["quantization"]
        if scale:
            limits = np.iinfo(inp["dtype"])
            batch = np.clip(np.round(batch / scale + zero), limits.min, limits.max)
        return batch.astype(inp["dtype"])

    def call(it, inp, out, batch):
        it.set_tensor(inp["index"], batch)
        it.invoke()
        return it.get_tensor(out["index"])

    def probabilities(it, inp, out, batch):
        result = call(it, inp, out, feed(inp, batch))
        scale, zero = out["quantization"]
        return (result.astype(np.float32) - zero) * scale if scale else result

    def timed(it, inp, out, batches, repeats):
        batches = [feed(inp, b) for b in batches]
        call(it, inp, out, batches[0])
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            call(it, inp, out, batches[i % len(batches)])
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    one, many = interpreter(1), interpreter(32)
    p = np.concatenate([probabilities(*many, x[i:i + 32]) for i in range(0, len(x) - 31, 32)] +
                       [probabilities(*one, x[i:i + 1])
                        for i in range(len(x) - len(x) % 32, len(x))])
    predicted = (p[:, 0] > 0.5).astype(int) if p.shape[-1] == 1 else p.argmax(-1)
    latency = timed(*one, [x[i:i + 1] for i in range(64)], spec["latency_calls"])
    batch_time = timed(*many, [x[i:i + 32] for i in range(0, 256, 32)], spec["batch_calls"])
    return {"accuracy": float((predicted == y).mean()), "latency_us": round(latency * 1e6, 1),
            "batch32_examples_per_sec": round(32 / batch_time, 1),
            "bytes": Path(spec["path"]).stat().st_size}


JOB_KINDS = {"zoo": job_zoo, "baseline": job_baseline, "export": job_export,
             "litert": job_litert, "peak": job_peak}
ZOO_KINDS = ("zoo", "export", "peak")  # the rest run as their users run them


# --- the benchmark ---------------------------------------------------------------------------
def bench_model(name: str, bench: Bench, work: Path, jobs: Jobs, args, m: dict,
                zoo_ready: bool, skip_reason: str) -> dict:
    data = bench.data(work, args)
    epochs = args.epochs or bench.epochs[0 if args.quick else 1]
    row = {"model": name, "data": data.source, "batch_size": bench.batch_size, "epochs": epochs,
           "zoo_overrides": bench.zoo, "baseline": f"tools/baselines/{bench.baseline}.py"}
    base_kwargs = dict(data.baseline, epochs=epochs, batch_size=bench.batch_size)
    common = [*data.zoo, f"train.epochs={epochs}", f"train.batch_size={bench.batch_size}",
              "train.batch_scaling_examples=0"]  # the baseline's batch at any size
    zoo_runs, base_runs = [], []

    def run_zoo(label, extra, flops=False, env=None):
        tag = f"{len(list(work.glob(f'runs/{name}-*')))}"
        return jobs("zoo", f"{name}: zoo {label}", env=env, model=name, flops=flops,
                    overrides=[*bench.zoo, *common, *extra],
                    model_dir=str(work / "runs" / f"{name}-{tag}"))

    def run_baseline(label="", env=None, **extra):
        return jobs("baseline", f"{name}: classic {bench.baseline}{label}",
                    env=env, module=bench.baseline,
                    kwargs=dict(base_kwargs, **extra))

    repeats = (args.repeats or bench.repeats[0 if args.quick else 1]) if zoo_ready else 1
    for i in range(repeats):  # side by side: classic, zoo, ..., zoo, classic
        if i % 2 == 0:
            base_runs.append(run_baseline())
        if zoo_ready:
            zoo_runs.append(run_zoo("defaults", [], flops=(i == 0)))
        if i % 2 == 1:
            base_runs.append(run_baseline())
    if not zoo_ready:
        row["zoo_skipped"] = skip_reason
        print(f"  {name}: zoo side skipped: {skip_reason}")
    row["training"] = training_summary(zoo_runs, base_runs, m)
    row["baseline_variants"] = {
        label: run_baseline(f" ({label})", **extra)
        for label, extra in bench.baseline_variants.items() if args.features != "none"
        and not (extra.get("env") == ONEDNN_ON and m["tensorflow_onednn_default"])
        and not (args.quick and "bfloat16" in label and not m["avx512_bf16"])}
    if zoo_ready and args.features != "none" and bench.features:
        default = row["training"].get("zoo_examples_per_sec")
        row["features"] = []
        for label, extra, *env in bench.features:
            if args.quick and label in SLOW_FEATURES:
                print(f"  {name}: {label}: not measured with --quick (minutes here)")
                continue
            if label == MIXED_OFF and not m["avx512_bf16"]:
                print(f"  {name}: {label}: not measured (auto is float32 on this CPU)")
                continue
            if args.quick and "bfloat16" in label and not m["avx512_bf16"]:
                print(f"  {name}: {label}: not measured with --quick (no AVX512-BF16 here)")
                continue
            paired = default
            if not args.quick:  # a defaults run right before each flip
                paired = run_zoo("defaults (pair)", []).get("examples_per_sec")
            r = run_zoo(label, extra, env=env[0] if env else None)
            row["features"].append({
                "feature": label, "overrides": extra, **({"env": env[0]} if env else {}),
                "examples_per_sec": r.get("examples_per_sec"),
                "paired_defaults_examples_per_sec": paired,
                "vs_defaults": ratio(r.get("examples_per_sec"), paired),
                "accuracy": r.get("accuracy"), "peak_rss_mb": r.get("peak_rss_mb"),
                **({"error": r["error"]} if "error" in r else {})})
    if zoo_ready and bench.inference and zoo_runs and "error" not in zoo_runs[0]:
        row["inference"] = inference(name, zoo_runs[0], work, jobs, args)
    return row


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def median_of(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def training_summary(zoo_runs: list[dict], base_runs: list[dict], m: dict) -> dict:
    """Medians of both sides' runs; with the FLOPs counted, each side's FLOP/s and its share of
    the measured peak of the precision zoo's run computed in (bf16 for mixed_bfloat16)."""
    zoo_eps, base_eps = median_of(zoo_runs, "examples_per_sec"), median_of(
        base_runs, "examples_per_sec")
    flops = next((r["forward_flops_per_example"] for r in zoo_runs
                  if r.get("forward_flops_per_example")), None)
    out = {"zoo_examples_per_sec": zoo_eps, "classic_examples_per_sec": base_eps,
           "ratio": ratio(zoo_eps, base_eps),
           "zoo_runs": [r.get("examples_per_sec") for r in zoo_runs],
           "classic_runs": [r.get("examples_per_sec") for r in base_runs],
           "zoo_accuracy": median_of(zoo_runs, "accuracy"),
           "classic_accuracy": median_of(base_runs, "accuracy"),
           "zoo_train_peak_rss_mb": median_of(zoo_runs, "peak_rss_mb"),
           "classic_train_peak_rss_mb": median_of(base_runs, "peak_rss_mb"),
           "zoo_onednn": next((r["onednn"] for r in zoo_runs if "onednn" in r), None),
           "classic_onednn": next((r["onednn"] for r in base_runs if "onednn" in r), None),
           "errors": [r["error"] for r in zoo_runs + base_runs if "error" in r]}
    bf16 = any(r.get("mixed_precision") == "mixed_bfloat16" for r in zoo_runs)
    peak = (bf16 and m.get("peak_bfloat16_flops")) or m.get("peak_fp32_flops")
    if flops:
        train_flops = 3 * flops  # forward + backward (about twice the forward)
        out.update(forward_flops_per_example=flops, train_flops_per_example=train_flops)
        for side in ("zoo", "classic"):
            eps = out[f"{side}_examples_per_sec"]
            if eps:
                out[f"{side}_gflops_per_sec"] = round(train_flops * eps / 1e9, 2)
            if eps and peak:
                out[f"{side}_fraction_of_peak"] = round(train_flops * eps / peak, 4)
    return out


def inference(name: str, zoo_run: dict, work: Path, jobs: Jobs, args) -> list[dict]:
    exported = jobs("export", f"{name}: export {len(args.quantize)} TFLite variants",
                    model_dir=zoo_run_dir(work, name), out=str(work / "tflite" / name),
                    quantizations=args.quantize, eval_examples=2000, calibration_examples=200)
    if "error" in exported:
        return [{"error": exported["error"]}]
    rows = []
    for q, path in exported["files"].items():
        r = jobs("litert", f"{name}: LiteRT {q}", path=path, eval=exported["eval"],
                 latency_calls=args.latency_calls, batch_calls=max(20, args.latency_calls // 10))
        rows.append({"quantization": q, **r,
                     "keras_accuracy": exported["keras_accuracy"]})
    f32 = next((r for r in rows if r["quantization"] == "float32" and "error" not in r), None)
    for r in rows:
        if f32 and "error" not in r:
            r["latency_vs_float32"] = ratio(r["latency_us"], f32["latency_us"])
            r["size_vs_float32"] = ratio(r["bytes"], f32["bytes"])
            r["accuracy_delta_vs_float32"] = round(r["accuracy"] - f32["accuracy"], 4)
    return rows


def zoo_run_dir(work: Path, name: str) -> str:
    return str(work / "runs" / f"{name}-0")


# --- output ----------------------------------------------------------------------------------
def fmt(value, spec="", none="-"):
    return none if value is None else format(value, spec)


def tables(result: dict) -> str:
    lines = ["## Training (examples/second after warm-up, median of timed windows)", "",
             "| model | data | zoo ex/s | classic ex/s | zoo/classic | zoo acc | classic acc "
             "| zoo GFLOP/s | % of peak | zoo RSS MB | classic RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["models"]:
        t = row.get("training", {})
        if "skipped" in row:
            lines.append(f"| {row['model']} | skipped: {row['skipped']} |" + " |" * 9)
            continue
        source = "real" if row["data"].startswith("real") else "synthetic"
        lines.append(
            f"| {row['model']} | {source} | {fmt(t.get('zoo_examples_per_sec'), ',.0f')} | "
            f"{fmt(t.get('classic_examples_per_sec'), ',.0f')} | "
            f"**{fmt(t.get('ratio'), '.2f')}x** | {fmt(t.get('zoo_accuracy'), '.4f')} | "
            f"{fmt(t.get('classic_accuracy'), '.4f')} | {fmt(t.get('zoo_gflops_per_sec'), '.1f')} "
            f"| {fmt(t.get('zoo_fraction_of_peak') and 100 * t['zoo_fraction_of_peak'], '.1f')} "
            f"| {fmt(t.get('zoo_train_peak_rss_mb'), '.0f')} "
            f"| {fmt(t.get('classic_train_peak_rss_mb'), '.0f')} |")
    skipped = [(r["model"], r["zoo_skipped"]) for r in result["models"] if r.get("zoo_skipped")]
    for model, reason in skipped:
        lines.append(f"\n{model}: zoo side skipped ({reason}); classic side measured.")
    variants = [(r["model"], k, v) for r in result["models"]
                for k, v in r.get("baseline_variants", {}).items()]
    for model, label, v in variants:
        base = next(r for r in result["models"] if r["model"] == model)["training"]
        speedup = ratio(v.get("examples_per_sec"), base.get("classic_examples_per_sec"))
        lines.append(f"\n{model} classic with {label}: {fmt(v.get('examples_per_sec'), ',.1f')}"
                     f" ex/s ({fmt(speedup, '.2f')}x"
                     f" of the classic above), accuracy {fmt(v.get('accuracy'), '.4f')}"
                     + (f", error: {v['error']}" if "error" in v else ""))
    for row in result["models"]:
        if row.get("features"):
            default = row["training"].get("zoo_examples_per_sec")
            lines += ["", f"## Speed features, {row['model']}: each flipped from the defaults",
                      "", "| change from defaults | ex/s | defaults ex/s ("
                      + ("median above" if result["quick"] else "run just before")
                      + ") | vs defaults | accuracy |", "|---|---:|---:|---:|---:|",
                      f"| (defaults, median of the pairs above) | {fmt(default, ',.0f')} | | "
                      f"1.00x | {fmt(row['training'].get('zoo_accuracy'), '.4f')} |"]
            for f in row["features"]:
                lines.append(f"| {f['feature']} | {fmt(f['examples_per_sec'], ',.0f')} | "
                             f"{fmt(f.get('paired_defaults_examples_per_sec'), ',.0f')} | "
                             f"{fmt(f['vs_defaults'], '.2f')}x | {fmt(f['accuracy'], '.4f')} |"
                             + (f" error: {f['error']}" if "error" in f else ""))
        if row.get("inference"):
            lines += ["", f"## Inference, {row['model']}: LiteRT (TFLite), batch 1 latency, "
                      "batch 32 throughput", "",
                      "| variant | bytes | accuracy | vs float32 | latency µs | vs float32 "
                      "| batch-32 ex/s | RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in row["inference"]:
                if "error" in r:
                    lines.append(f"| {r.get('quantization', '?')} | error: {r['error']} |")
                    continue
                lines.append(
                    f"| {r['quantization']} | {r['bytes']:,} | {r['accuracy']:.4f} | "
                    f"{fmt(r.get('accuracy_delta_vs_float32'), '+.4f')} | "
                    f"{r['latency_us']:.1f} | {fmt(r.get('latency_vs_float32'), '.2f')}x | "
                    f"{r['batch32_examples_per_sec']:,.0f} | {r['peak_rss_mb']:.0f} |")
    m = result["machine"]
    lines += ["", f"Peak: {peak_text(m)}: {m['peak_rule']}; % of peak is of the bf16 peak for "
              "mixed_bfloat16 runs. Training FLOPs = 3 x the profiler's forward FLOPs "
              "(backward ~ 2x forward).",
              "", f"oneDNN kernels: TensorFlow's own default on this CPU is "
              f"{'on' if m.get('tensorflow_onednn_default') else 'off'}; zoo runs have them on"
              f" (zoo.environment), classic runs TensorFlow's default."]
    return "\n".join(lines)


def peak_text(m: dict) -> str:
    """'812 GFLOP/s fp32, 1,630 GFLOP/s bf16' (or 'not measured')."""
    parts = [f"{m[key] / 1e9:,.0f} GFLOP/s {name}" for key, name in (
        ("peak_fp32_flops", "fp32"), ("peak_bfloat16_flops", "bf16")) if m.get(key)]
    return ", ".join(parts) or "not measured"


def chart(result: dict, path: Path):
    """bench.png: training throughput per model, the speed features, inference latency."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install -e .[bench]); no chart")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["models"] if "training" in r]
    features = next((r for r in rows if r.get("features")), None)
    infer = next((r for r in rows if r.get("inference")), None)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [1, 1.4, 1]})
    names = [r["model"] for r in rows]
    xs = np.arange(len(names))
    for offset, side in ((-0.2, "classic"), (0.2, "zoo")):
        axes[0].bar(xs + offset, [r["training"].get(f"{side}_examples_per_sec") or 0
                                  for r in rows], 0.4, label=side)
    axes[0].set_xticks(xs, names, rotation=30)
    axes[0].set_yscale("log")
    axes[0].set_title("training examples/s (median window)")
    axes[0].legend()
    if features:
        labels = ["defaults"] + [f["feature"].split(" (")[0].split(":")[0]
                                 for f in features["features"]]
        values = [features["training"].get("zoo_examples_per_sec") or 0] + [
            f["examples_per_sec"] or 0 for f in features["features"]]
        axes[1].barh(labels[::-1], values[::-1])
        axes[1].set_title(f"{features['model']}: one feature flipped, examples/s")
    if infer:
        ok = [r for r in infer["inference"] if "error" not in r]
        axes[2].bar([r["quantization"] for r in ok], [r["latency_us"] for r in ok])
        axes[2].tick_params(axis="x", rotation=30)
        axes[2].set_yscale("log")
        axes[2].set_title(f"{infer['model']}: LiteRT batch-1 latency, µs")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--quick", action="store_true", help="short runs: under 10 minutes "
                        "on 2 CPU cores")
    parser.add_argument("--out", default="runs/bench", help="where bench.json, bench.png go")
    parser.add_argument("--synthetic", action="store_true",
                        help="synthetic data even when ../shared/data is present")
    parser.add_argument("--repeats", type=int, default=0,
                        help="zoo/classic training pairs per model, run alternately (medians "
                        "are reported); 0 = the model's own (3 for mnist_cnn, 1-2 others)")
    parser.add_argument("--features", choices=["all", "none"], default="all",
                        help="measure each speed feature flipped (and baseline variants)")
    parser.add_argument("--quantize", default=",".join(QUANTIZATIONS),
                        help="TFLite variants to time")
    parser.add_argument("--epochs", type=int, default=0, help="override every model's epochs")
    parser.add_argument("--train_examples", type=int, default=0,
                        help="cap training examples (0 = the model's own default)")
    parser.add_argument("--latency_calls", type=int, default=0,
                        help="timed batch-1 LiteRT calls (default 300 quick, 2000 full)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per child process")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.quantize = [q.strip() for q in args.quantize.split(",") if q.strip()]
    unknown = sorted(set(args.models) - set(MODELS)) + sorted(set(args.quantize) - set(
        QUANTIZATIONS))
    if unknown:
        parser.error(f"unknown models or quantizations: {', '.join(unknown)}")
    args.latency_calls = args.latency_calls or (300 if args.quick else 2000)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.job:
        child(args.job)
        return {}
    from zoo import registry

    out = Path(args.out).resolve()
    work = out / "work"
    out.mkdir(parents=True, exist_ok=True)
    jobs = Jobs(work, args.timeout)
    m = machine()
    m.update(measured_peak(jobs, m))
    command = "python -m tools.bench " + " ".join(shlex.quote(a) for a in (
        argv if argv is not None else sys.argv[1:]))
    result = {"command": command, "quick": args.quick, "machine": m,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "models": []}
    started = time.time()
    print(f"{command}\n{m['cores']} cores, {m['cpu']}, peak {peak_text(m)} ({m['peak_rule']})")
    known = registry.names()
    for name in args.models:
        print(f"{name}:")
        ready = name in known
        reason = "" if ready else f"{name} is not in zoo.registry.names() ({', '.join(known)})"
        if name == "bert" and not has_module("keras_hub"):
            result["models"].append({"model": name, "skipped": "keras-hub is not installed "
                                     "(pip install -e .[bench])"})
            print(f"  skipped: {result['models'][-1]['skipped']}")
            continue
        result["models"].append(bench_model(name, MODELS[name], work, jobs, args,
                                            m, ready, reason))
    result["wall_time_s"] = round(time.time() - started, 1)
    result["chart"] = chart(result, out / "bench.png")
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(tables(result))
    print(f"\n{result['wall_time_s']:.0f} s; wrote {out / 'bench.json'}"
          + (f" and {result['chart']}" if result["chart"] else ""))
    return result


def has_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    main()
