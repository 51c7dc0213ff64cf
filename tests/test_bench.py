"""`python -m tools.bench` in a tiny mode: the JSON has every row and column, numbers are sane.
No timing assertions: the machine is shared."""
import json

from conftest import run_cli


def test_bench_tiny_run_writes_json_table_and_chart(tmp_path):
    result = run_cli("tools.bench", "--models=mnist_cnn,textcls", "--quick", "--synthetic",
                     "--repeats=1", "--features=none", "--epochs=2", "--train_examples=1024",
                     "--quantize=float32,int8", "--latency_calls=50", f"--out={tmp_path}",
                     timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["machine"]["peak_fp32_flops"] > 0 and "matmul" in bench["machine"]["peak_rule"]
    rows = {row["model"]: row for row in bench["models"]}
    assert set(rows) == {"mnist_cnn", "textcls"}

    mnist = rows["mnist_cnn"]
    assert mnist["data"] == "synthetic"
    t = mnist["training"]
    assert not t["errors"], t["errors"]
    for key in ("zoo_examples_per_sec", "classic_examples_per_sec", "ratio",
                "zoo_gflops_per_sec", "zoo_train_peak_rss_mb", "classic_train_peak_rss_mb"):
        assert t[key] > 0, key
    assert 0 < t["zoo_fraction_of_peak"] < 1
    # the tutorial network: conv 26x26x32x9 + dense 5408x128 + 128x10 multiply-adds, x2
    assert abs(t["forward_flops_per_example"] - 2 * (26 * 26 * 32 * 9 + 5408 * 128 + 1280)) \
        < 0.05 * t["forward_flops_per_example"]
    assert 0 <= t["zoo_accuracy"] <= 1 and 0 <= t["classic_accuracy"] <= 1
    # zoo turns oneDNN on (x86); the classic recipe keeps TensorFlow's own choice for this CPU
    assert t["zoo_onednn"] is True
    assert t["classic_onednn"] is bench["machine"]["tensorflow_onednn_default"]
    variants = {r["quantization"]: r for r in mnist["inference"]}
    assert set(variants) == {"float32", "int8"}
    for r in variants.values():
        assert "error" not in r, r
        assert r["latency_us"] > 0 and r["batch32_examples_per_sec"] > 0
        assert r["bytes"] > 0 and 0 <= r["accuracy"] <= 1 and r["peak_rss_mb"] > 0
    assert variants["int8"]["bytes"] < variants["float32"]["bytes"]
    assert variants["float32"]["latency_vs_float32"] == 1.0

    text = rows["textcls"]  # the classic side runs even before zoo has the model
    assert text["training"]["classic_examples_per_sec"] > 0
    assert ("zoo_skipped" in text) != (text["training"]["zoo_examples_per_sec"] is not None)
    assert "| mnist_cnn | synthetic |" in result.stdout
    if bench["chart"]:
        assert (tmp_path / "bench.png").stat().st_size > 1000


def test_share_of_peak_is_of_the_measured_peak_of_the_run_s_precision():
    from tools.bench import training_summary
    m = {"peak_fp32_flops": 100e9, "peak_bfloat16_flops": 400e9}
    run = {"examples_per_sec": 1000, "forward_flops_per_example": 10e6}
    fp32 = training_summary([dict(run, mixed_precision="none")], [], m)
    bf16 = training_summary([dict(run, mixed_precision="mixed_bfloat16")], [], m)
    assert fp32["zoo_gflops_per_sec"] == bf16["zoo_gflops_per_sec"] == 30.0
    assert (fp32["zoo_fraction_of_peak"], bf16["zoo_fraction_of_peak"]) == (0.3, 0.075)
    assert "zoo_fraction_of_peak" not in training_summary([run], [], {})  # peak not measured


def test_synthetic_image_folder_is_rewritten_for_other_counts(tmp_path):
    from tools.bench import write_synthetic_folder

    def jpegs(split):
        return sorted((tmp_path / split).rglob("*.jpg"))

    write_synthetic_folder(tmp_path, 6, 2, size=96)
    assert len(jpegs("train")) == 6 and len(jpegs("validation")) == 2
    first = jpegs("train")[0].stat().st_mtime_ns
    write_synthetic_folder(tmp_path, 6, 2, size=96)  # same counts: kept as it is
    assert jpegs("train")[0].stat().st_mtime_ns == first
    write_synthetic_folder(tmp_path, 4, 2, size=96)  # fewer: no images left from before
    assert len(jpegs("train")) == 4 and len(jpegs("validation")) == 2
