"""`python -m tools.study [--model=textcls|mnist_cnn] [--quick] [--out=DIR]`: cross-validates a
model's default recipe against its classic Keras recipe on the real data in ../shared.

textcls: disjoint slices of SST-2's train.tsv per training-set size (3 slices of 2,000, 8,000
and 15,000 sentences, 2 of 30,000, the full 67,349 once), each trained with every seed and
evaluated on all of dev.tsv (872). The slices start at row 0 and follow each other:
train[0:2000], train[2000:4000], ...; train[0:8000], train[8000:16000], ...; train[0:30000],
train[30000:60000]. The last 8,000 rows, train[59349:], are in no 2k or 8k slice: the slow
test trains on them.

mnist_cnn: 5 folds of the 10,000 real test digits; fold k evaluates on digits
[2000k:2000(k+1)] and trains on the other 8,000. Its classic recipe is the Keras examples'
convnet (tools/baselines/mnist_convnet.py); `classic@30` runs it at the default's 30 epochs.

Each slice or fold is written once under DIR/data as the files both recipes read (train.tsv +
dev.tsv; or one t10k IDX pair ordered train part, then eval part), so the zoo side runs the
headline command, `python -m zoo.train --model=M --dataset=tsv:SLICE` (or `idx:FOLD` with
`t10k[:8000]` / `t10k[8000:]`), and the classic side its `run()` on the same files. Runs go
in subprocesses, `--jobs` at a time, each with one TensorFlow thread per pool; a run whose
result is already in DIR (same data, seed and resolved configuration) is not rerun; delete DIR
after changing a model's code. DIR gets `study.json` (every run) and `study.md` (the
table: per size and recipe, mean, standard deviation, min and max over slices x seeds, and
the worst slice's gap to the classic recipe, seeds averaged per slice).

Recipes: `default` (the YAML defaults), `classic` (the classic recipe at its own epochs: 3
for textcls, 15 for mnist_cnn), `classic@E` (at E epochs), and variants
`NAME:KEY=VALUE,KEY=VALUE` of the default (`--set` overrides, e.g.
`mean8:model.pooling=mean,train.epochs=8` or `wide:model.conv_filters=[64,128]`).
"""
from __future__ import annotations

import argparse
import gzip
import concurrent.futures
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SST2_ROWS = 67_349
TEXT_SIZES = (2000, 8000, 15000, 30000, SST2_ROWS)
MAX_SLICES = 3
HELD_OUT = (SST2_ROWS - 8000, SST2_ROWS)  # the slow test's slice; in no 2k/8k slice
MNIST_FOLDS = 5
CLASSIC = {"textcls": "tools.baselines.textcls_classic",
           "mnist_cnn": "tools.baselines.mnist_convnet"}
THREAD_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "TF_CPP_MIN_LOG_LEVEL": "2"}


def text_slices(size: int, count: int = MAX_SLICES) -> list[tuple[int, int]]:
    """Disjoint [start, stop) row ranges of train.tsv with `size` rows each."""
    n = min(count, SST2_ROWS // size)
    return [(i * size, (i + 1) * size) for i in range(n)]


def write_text_slice(out: Path, start: int, stop: int) -> Path:
    """DIR/data/sst2_START_STOP holding train.tsv (those rows, verbatim) and dev.tsv."""
    src = SHARED / "sst2"
    directory = out / "data" / f"sst2_{start}_{stop}"
    if not (directory / "dev.tsv").is_file():
        directory.mkdir(parents=True, exist_ok=True)
        lines = (src / "train.tsv").read_bytes().decode("utf-8").splitlines(keepends=True)
        header, rows = lines[0], lines[1:]
        (directory / "train.tsv").write_text(header + "".join(rows[start:stop]),
                                             encoding="utf-8")
        (directory / "dev.tsv").write_bytes((src / "dev.tsv").read_bytes())
    return directory


def write_idx(path: Path, array):
    import numpy as np
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    body = header + np.ascontiguousarray(array, np.uint8).tobytes()
    path.write_bytes(gzip.compress(body, 1) if path.suffix == ".gz" else body)


def write_mnist_fold(out: Path, fold: int) -> Path:
    """DIR/data/mnist_foldK: a t10k IDX pair of the 10,000 digits reordered so that the first
    8,000 are fold K's training digits (the others, in order) and the last 2,000 its eval
    block [2000K:2000(K+1)]."""
    import numpy as np
    from zoo.data.images import read_idx
    directory = out / "data" / f"mnist_fold{fold}"
    if not (directory / "t10k-labels-idx1-ubyte.gz").is_file():
        directory.mkdir(parents=True, exist_ok=True)
        src = SHARED / "mnist"
        images = read_idx(src / "t10k-images-idx3-ubyte.gz")
        labels = read_idx(src / "t10k-labels-idx1-ubyte.gz")
        held = np.arange(2000 * fold, 2000 * (fold + 1))
        order = np.concatenate([np.setdiff1d(np.arange(len(labels)), held), held])
        # gzip, as the shared files: the classic recipe reads only those names
        write_idx(directory / "t10k-images-idx3-ubyte.gz", images[order])
        write_idx(directory / "t10k-labels-idx1-ubyte.gz", labels[order])
    return directory


def parse_recipe(text: str) -> dict:
    """'default' | 'classic' | 'classic@E' | 'NAME:KEY=VALUE,...' -> a recipe."""
    if text == "default":
        return {"name": "default", "side": "zoo", "set": []}
    if text.startswith("classic"):
        epochs = text.partition("@")[2]  # none: the recipe's own
        return {"name": text, "side": "classic", "epochs": int(epochs) if epochs else None}
    name, sep, sets = text.partition(":")
    if not sep:
        raise SystemExit(f"bad recipe {text!r}: default, classic[@E] or NAME:KEY=VALUE,...")
    # split at the commas that start a KEY=: a list value keeps its own ("KEY=[32,64]")
    return {"name": name, "side": "zoo",
            "set": [s for s in re.split(r",(?=[\w.]+=)", sets) if s]}


def jobs_for(model: str, recipes: list[dict], sizes, seeds, out: Path, slices: int) -> list:
    jobs = []
    if model == "textcls":
        for size in sizes:
            for start, stop in text_slices(size, slices):
                data = write_text_slice(out, start, stop)
                jobs += [dict(model=model, recipe=r, size=size, slice=f"train[{start}:{stop}]",
                              data=str(data), seed=s) for r in recipes for s in seeds]
    else:
        for fold in range(slices):
            data = write_mnist_fold(out, fold)
            jobs += [dict(model=model, recipe=r, size=8000,
                          slice=f"fold{fold}: eval t10k[{2000 * fold}:{2000 * (fold + 1)}]",
                          data=str(data), seed=s) for r in recipes for s in seeds]
    return jobs


def run_dir(out: Path, job: dict) -> Path:
    r = job["recipe"]
    if r["side"] == "zoo":  # keyed by the resolved recipe: a changed default is a new one
        from zoo.config import load_config
        # (the dataset is the run directory's; a fixed one here keeps the key per recipe)
        what = load_config(job["model"], overrides=["data.dataset=tfds:imdb_reviews",
                                                    *r["set"]]).to_yaml()
    else:
        what = json.dumps(r["epochs"])
    digest = hashlib.sha256(what.encode()).hexdigest()[:8]
    return (out / "runs" / f"{r['name']}-{digest}" / Path(job["data"]).name
            / f"seed{job['seed']}")


def run_job(out: Path, job: dict) -> dict:
    """One training run in a subprocess; its result (cached in its run directory)."""
    directory = run_dir(out, job)
    done = directory / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    directory.mkdir(parents=True, exist_ok=True)
    r = job["recipe"]
    if r["side"] == "zoo":
        cmd = [sys.executable, "-m", "zoo.train", f"--model={job['model']}",
               f"--model_dir={directory / 'model'}", f"--set=train.seed={job['seed']}"]
        if job["model"] == "textcls":
            cmd.append(f"--dataset=tsv:{job['data']}")
        else:
            cmd += [f"--dataset=idx:{job['data']}", "--set=data.train_split=t10k[:8000]",
                    "--set=data.eval_split=t10k[8000:]"]
        cmd += [f"--set={s}" for s in r["set"]]
    else:
        cmd = [sys.executable, "-m", "tools.study", "--classic_worker", job["model"],
               job["data"], str(r["epochs"] or 0), str(job["seed"]),
               str(directory / "classic.json")]
    started = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **THREAD_ENV},
                          capture_output=True, text=True)
    wall = time.time() - started
    (directory / "log.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    metrics_file = (directory / "model" / "metrics.json" if r["side"] == "zoo"
                    else directory / "classic.json")
    metrics = json.loads(metrics_file.read_text())
    result = {"model": job["model"], "recipe": r["name"], "set": r.get("set"),
              "epochs": metrics.get("epochs"), "size": job["size"], "slice": job["slice"],
              "seed": job["seed"], "accuracy": metrics["accuracy"],
              "fit_s": metrics.get("wall_time_s"), "process_s": round(wall, 1),
              "command": " ".join(cmd)}
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def classic_worker(model: str, data: str, epochs: int, seed: int, path: str):
    """The classic recipe's `run()` on one slice, with Keras' global seed set first."""
    import importlib
    started = time.time()
    if model == "textcls":
        import tf_keras as keras
    else:
        import keras
    keras.utils.set_random_seed(seed)
    recipe = importlib.import_module(CLASSIC[model]).run
    result = recipe(data, epochs=epochs) if epochs else recipe(data)
    result["wall_time_s"] = round(time.time() - started, 3)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")


def summarize(results: list[dict], recipes: list[str]) -> dict:
    """Per size and recipe: mean/sd/min/max over runs; per slice, the seed mean; and against
    the first classic recipe, the mean gap and the worst slice's gap (points)."""
    table = {}
    sizes = sorted({r["size"] for r in results})
    baseline = next((n for n in recipes if n.startswith("classic")), None)
    for size in sizes:
        rows = {}
        for name in recipes:
            acc = [r["accuracy"] for r in results if r["size"] == size and r["recipe"] == name]
            if not acc:
                continue
            per_slice = {}
            for r in results:
                if r["size"] == size and r["recipe"] == name:
                    per_slice.setdefault(r["slice"], []).append(r["accuracy"])
            fit = [r["process_s"] for r in results
                   if r["size"] == size and r["recipe"] == name]
            rows[name] = {"runs": len(acc), "mean": statistics.mean(acc),
                          "sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                          "min": min(acc), "max": max(acc),
                          "slices": {k: statistics.mean(v) for k, v in per_slice.items()},
                          "mean_s": statistics.mean(fit)}
        if baseline in rows:
            base = rows[baseline]["slices"]
            for row in rows.values():
                gaps = [100 * (row["slices"][k] - base[k]) for k in row["slices"] if k in base]
                row["gap_pt"] = statistics.mean(gaps) if gaps else None
                row["worst_slice_gap_pt"] = min(gaps) if gaps else None
        table[size] = rows
    return {"baseline": baseline, "table": table}


def markdown(model: str, summary: dict, seeds, command: str) -> str:
    lines = [f"`{command}` — {model}, seeds {', '.join(map(str, seeds))}; accuracy in %, "
             f"gaps in points against `{summary['baseline']}` (per slice, seeds averaged).", "",
             "| train size | recipe | runs | mean | sd | min | max | gap | worst slice gap "
             "| wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:+.2f}"
    for size, rows in summary["table"].items():
        for name, row in rows.items():
            lines.append(f"| {size:,} | {name} | {row['runs']} | {100 * row['mean']:.2f} | "
                         f"{100 * row['sd']:.2f} | {100 * row['min']:.2f} | "
                         f"{100 * row['max']:.2f} | {fmt(row.get('gap_pt'))} | "
                         f"{fmt(row.get('worst_slice_gap_pt'))} | {row['mean_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--classic_worker"]:
        model, data, epochs, seed, path = argv[1:6]
        return classic_worker(model, data, int(epochs), int(seed), path)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="textcls", choices=sorted(CLASSIC))
    parser.add_argument("--sizes", default=",".join(map(str, TEXT_SIZES)),
                        help="textcls training-set sizes")
    parser.add_argument("--slices", type=int, default=0,
                        help="slices per size (textcls, default 3) or folds (mnist_cnn, 5)")
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--recipe", action="append", default=[],
                        help="default | classic | classic@E | NAME:KEY=VALUE,...; repeatable "
                             "(default: default and classic)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--quick", action="store_true",
                        help="one slice (fold) per size, seed 42, sizes 2000 and 8000")
    parser.add_argument("--out", default="runs/study")
    args = parser.parse_args(argv)

    recipes = [parse_recipe(r) for r in (args.recipe or ["default", "classic"])]
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    slices = args.slices or (MAX_SLICES if args.model == "textcls" else MNIST_FOLDS)
    if args.quick:
        seeds, slices = seeds[:1], 1
        sizes = [s for s in sizes if s <= 8000] or sizes[:1]
    out = Path(args.out) / args.model
    jobs = jobs_for(args.model, recipes, sizes, seeds, out, slices)
    print(f"{len(jobs)} runs, {args.jobs} at a time, into {out}", flush=True)
    results = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda j: run_job(out, j), jobs):
            print(f"{result['recipe']:>12} {result['size']:>6} {result['slice']:<24} "
                  f"seed {result['seed']:<3} {result['accuracy']:.4f} "
                  f"({result['process_s']:.0f} s)", flush=True)
            results.append(result)
    summary = summarize(results, [r["name"] for r in recipes])
    command = "python -m tools.study " + " ".join(argv)
    (out / "study.json").write_text(json.dumps(
        {"command": command, "seeds": seeds, "recipes": recipes, **summary,
         "runs": results}, indent=2, default=str) + "\n")
    text = markdown(args.model, summary, seeds, command.strip())
    (out / "study.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
