"""`python -m tools.int8_study --model_dir=DIR [--out=DIR]`: int8 recipes for a text core.

Converts the token-ids core of a trained text model (bert) with each recipe below, runs every
file in LiteRT on the whole evaluation split, and prints (recipe, accuracy, delta against
Keras, bytes, median batch-1 latency in microseconds). Also prints the quantization
debugger's worst layers of today's full int8 file, which point at what to keep in float.
Writes OUT/<recipe>.tflite, OUT/int8_study.json and OUT/layer_errors.csv.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import statistics
import time
from pathlib import Path

import numpy as np

LN_OPS = ("MEAN", "SQUARED_DIFFERENCE", "RSQRT")


def _plain_converter(function, model, representative, ops, per_channel=False,
                     uint8_output=True):
    """The converter `export.tflite.convert` builds for int8, with the op sets and weight
    granularity as parameters."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = ops
    converter._experimental_disable_per_channel = not per_channel
    if uint8_output:
        converter.inference_output_type = tf.uint8
    return converter


def recipes(source, function, model, representative, calibration):
    """{recipe name: () -> .tflite bytes}, in table order."""
    import tensorflow as tf

    from export import int8_recipes, tflite

    int8 = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    fallback = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    int16x8_fallback = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                        tf.lite.OpsSet.TFLITE_BUILTINS]
    by_type = lambda ops: lambda: int8_recipes.selective_int8(
        function, model, representative, (), float_op_types=ops)
    return {
        "float32": lambda: tflite.convert(source, "float32", calibration, tokens=True),
        "dynamic": lambda: tflite.convert(source, "dynamic", calibration, tokens=True),
        "int8 (today: per-tensor; uint8 out)":
            lambda: tflite.convert(source, "int8", calibration, tokens=True),
        "int8 per-channel": lambda: _plain_converter(
            function, model, representative, int8, per_channel=True).convert(),
        "int8 + float fallback": lambda: _plain_converter(
            function, model, representative, fallback).convert(),
        "int16x8": lambda: tflite.convert(source, "int16x8", calibration, tokens=True),
        "int16x8 + float fallback": lambda: _plain_converter(
            function, model, representative, int16x8_fallback, uint8_output=False).convert(),
        "float ops: SOFTMAX": by_type(("SOFTMAX",)),
        "float ops: SUB+MUL+SOFTMAX": by_type(("SUB", "MUL", "SOFTMAX")),
        "float ops: LN+GELU+TANH+SOFTMAX": by_type(LN_OPS + ("GELU", "TANH", "SOFTMAX")),
        "float ops: LN+GELU+TANH+SOFTMAX+BATCH_MATMUL":
            by_type(LN_OPS + ("GELU", "TANH", "SOFTMAX", "BATCH_MATMUL")),
        "mask chain float (selective_int8, float_op_types=())":
            lambda: int8_recipes.selective_int8(function, model, representative,
                                                float_op_types=()),
        "mask chain + BATCH_MATMUL float": lambda: int8_recipes.selective_int8(
            function, model, representative, float_op_types=("BATCH_MATMUL",)),
        "selective_int8 default (mask chain + LN+GELU+TANH+BATCH_MATMUL float)":
            lambda: int8_recipes.selective_int8(function, model, representative),
        "selective_int8 default; per-channel": lambda: int8_recipes.selective_int8(
            function, model, representative, per_channel=True),
    }


def layer_errors(function, model, representative, calibration, count=100) -> list[dict]:
    """The debugger's per-tensor error of full int8 (per-tensor weights), worst first by
    RMSE in units of the tensor's quantization step."""
    import tensorflow as tf

    converter = _plain_converter(function, model, representative,
                                 [tf.lite.OpsSet.TFLITE_BUILTINS_INT8], uint8_output=False)
    order = []  # the debugger feeds inputs in the interpreter's order, filled in below

    def debug_dataset():
        for i in range(count):
            yield [calibration[name][i:i + 1] for name in order]

    from ai_edge_litert.interpreter import Interpreter

    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                         debug_dataset=debug_dataset)
    inputs = Interpreter(model_content=debugger.calibrated_model).get_input_details()
    order.extend(d["name"].removeprefix("serving_default_").split(":")[0] for d in inputs)
    debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    for row in rows:
        scale = float(row["scale"])
        row["rmse_over_scale"] = (float(row["mean_squared_error"]) ** 0.5 / scale
                                  if scale else 0.0)
    return sorted(rows, key=lambda r: -r["rmse_over_scale"])


def measure(path: Path, inputs: dict, labels: np.ndarray, latency_examples: int) -> dict:
    """Accuracy on all `inputs` and the median batch-1 latency in LiteRT."""
    from export import evaluate, tflite

    runner = tflite.Runner(path)
    probabilities = runner(inputs)
    one = lambda i: {k: v[i:i + 1] for k, v in inputs.items()}
    runner(one(0))
    times = []
    for i in range(latency_examples):
        start = time.perf_counter()
        runner(one(i % len(labels)))
        times.append(time.perf_counter() - start)
    return {"accuracy": evaluate.accuracy(probabilities, labels),
            "latency_us": statistics.median(times) * 1e6,
            "output": runner.output["dtype"].__name__}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--out", default="runs/int8_study")
    parser.add_argument("--calibration", type=int, default=300,
                        help="training sentences that calibrate the integer recipes")
    parser.add_argument("--latency_examples", type=int, default=300)
    parser.add_argument("--only", default="", help="comma-separated recipe names")
    args = parser.parse_args(argv)

    from export import evaluate, serving, source as sources, tflite

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = sources.load(args.model_dir)
    _, core = source.parts()
    dev = list(source.eval_ds.as_numpy_iterator())
    texts, labels = np.array([t for t, _ in dev]), np.array([y for _, y in dev])
    train = np.array([t for t, _ in source.train_ds.take(args.calibration).as_numpy_iterator()])
    inputs = serving.token_inputs(source, texts)
    calibration = serving.token_inputs(source, train)
    keras_accuracy = evaluate.accuracy(core.predict(inputs, batch_size=64, verbose=0), labels)

    function, model, specs = tflite.graph(source, "int8", tokens=True)

    def representative():
        for i in range(len(train)):
            yield [calibration[spec.name][i:i + 1] for spec in specs]

    rows = []
    table = recipes(source, function, model, representative, calibration)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or list(table)
    unknown = [n for n in wanted if n not in table]
    if unknown:
        parser.error(f"unknown recipes {unknown}; recipes: {', '.join(table)}")
    for name in wanted:
        start = time.perf_counter()
        try:
            content = table[name]()
        except Exception as e:  # a recipe the converter refuses is a row, not the end
            line = next((l for l in str(e).splitlines() if l.strip()), type(e).__name__)
            rows.append({"recipe": name, "error": f"does not convert: {line[:160]}"})
            print(f"{name:70} does not convert: {line[:160]}", flush=True)
            continue
        seconds = time.perf_counter() - start
        path = out / (re.sub(r"[^A-Za-z0-9]+", "_", name.split(" (")[0]).strip("_") + ".tflite")
        path.write_bytes(content)
        try:
            measured = measure(path, inputs, labels, args.latency_examples)
        except RuntimeError as e:  # converted, but LiteRT has no kernel for one of its ops
            line = str(e).splitlines()[0][:160]
            rows.append({"recipe": name, "error": f"LiteRT fails: {line}"})
            print(f"{name:70} LiteRT fails: {line}", flush=True)
            continue
        row = {"recipe": name, **measured,
               "bytes": len(content), "convert_s": round(seconds, 1), "file": str(path)}
        row["delta"] = row["accuracy"] - keras_accuracy
        rows.append(row)
        print(f"{name:70} {row['accuracy']:.4f} {row['delta']:+.4f} {row['bytes']:>9} "
              f"{row['latency_us']:>8.0f}  {row['output']}", flush=True)

    errors = layer_errors(function, model, representative, calibration)
    with open(out / "layer_errors.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(errors[0]))
        writer.writeheader()
        writer.writerows(errors)

    lines = [f"Keras accuracy {keras_accuracy:.4f} on {len(labels)} examples; calibration "
             f"{len(train)} training sentences", "",
             "| recipe | accuracy | delta vs Keras | bytes | batch-1 latency (µs) | output |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['recipe']} | {r['accuracy']:.4f} | {r['delta']:+.4f} | {r['bytes']:,} | "
              f"{r['latency_us']:.0f} | {r['output']} |" if "error" not in r else
              f"| {r['recipe']} | {r['error']} | | | | |" for r in rows]
    lines += ["", "Full int8: worst tensors (RMSE / quantization step, the debugger's stats)", ""]
    lines += [f"  {r['op_name']:18} {r['rmse_over_scale']:10.3g}  scale {float(r['scale']):.3g}"
              f"  {r['tensor_name'][:80]}" for r in errors[:10]]
    print("\n".join(lines))
    (out / "int8_study.json").write_text(json.dumps(
        {"keras_accuracy": keras_accuracy, "examples": len(labels),
         "calibration": len(train), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
