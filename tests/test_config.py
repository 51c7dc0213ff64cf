"""Registry, config parsing and their error paths (no training)."""
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, cli_env, run_cli
from zoo import registry
from zoo.config import ConfigError, load_config, parse_override
from zoo.data import parse_spec, parse_split, slice_indices


def test_registry_lists_models_and_rejects_unknown_names():
    assert {"mnist_cnn", "imgcls"} <= set(registry.names())
    assert registry.get("mnist_cnn").task == "image_classification"
    with pytest.raises(ConfigError, match=r"unknown model 'resnet'; known models: .*mnist_cnn"):
        registry.get("resnet")


def test_register_refuses_duplicates_and_unknown_tasks():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("mnist_cnn", task="image_classification", config=object)(lambda c: c)
    with pytest.raises(ValueError, match="unknown task"):
        registry.register("x", task="speech", config=object)


def test_defaults_come_from_the_model_yaml():
    cfg = load_config("mnist_cnn")
    on_disk = yaml.safe_load((REPO / "zoo" / "configs" / "mnist_cnn.yaml").read_text())
    assert cfg.data.dataset == on_disk["data"]["dataset"] == "sample"
    assert cfg.train.epochs == on_disk["train"]["epochs"]
    assert cfg.model.conv_filters == [32, 64]  # the config class's, which the YAML keeps


@pytest.mark.parametrize("name", registry.names())
def test_each_model_config_class_defaults_to_its_yaml(name):
    # One source of model defaults, the config class: its YAML names the model and sets none
    # of its fields, so build(ConfigClass()) in Python builds the model the CLI builds.
    written = yaml.safe_load((REPO / "zoo" / "configs" / f"{name}.yaml").read_text())["model"]
    assert written == {"name": name}
    assert load_config(name).model == registry.get(name).config()


def test_overrides_are_typed():
    cfg = load_config("mnist_cnn", overrides=[
        "model.conv_filters=[32]", "model.dense_units=128", "model.dropout=0",
        "model.batch_norm=false", "model.augment=false", "train.epochs=3",
        "train.learning_rate=0.01", "data.dataset=synthetic"])
    assert cfg.model.conv_filters == [32] and cfg.model.batch_norm is False
    assert cfg.model.dropout == 0.0 and isinstance(cfg.model.dropout, float)
    assert cfg.train.epochs == 3 and cfg.train.learning_rate == 0.01


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=-1", r"bad value for train.batch_size: -1; expected an integer >= 1"),
    ("train.batch_size=12.5", r"bad value for train.batch_size: 12.5"),
    ("train.batch_size=many", r"bad value for train.batch_size: 'many'"),
    ("model.dropout=1.5", r"model.dropout: 1.5; expected a number in \[0.0, 1.0\)"),
    ("model.batch_norm=maybe", r"model.batch_norm: 'maybe'; expected true or false"),
    ("train.optimizer=adagrad", r"expected one of adam, lazy_adam, adamw, sgd, rmsprop"),
    ("train.strategy=gpus", r"expected one of auto, cpu, gpu, mirrored, multi_worker, tpu"),
    ("model.conv_filters=[32, -4]", r"model.conv_filters"),
    ("model.conv_filters=[8, 8, 8, 8]", r"too many blocks for model.image_size=28"),
    ("model.bogus=1", r"unknown config key 'model.bogus'; accepted model keys: image_size"),
    ("train.epoch=3", r"unknown config key 'train.epoch'; accepted train keys: epochs"),
    ("epochs=3", r"bad --set key 'epochs'; expected SECTION.KEY"),
    ("train.epochs", r"bad --set 'train.epochs'; expected SECTION.KEY=VALUE"),
    ("data.dataset=mnist", r"bad dataset spec 'mnist'; expected tfds:NAME"),
    ("export.quantize=[int4]", r"bad export.quantize \['int4'\]"),
])
def test_bad_overrides_fail_with_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config("mnist_cnn", overrides=[override])
    assert "\n" not in str(err.value)


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: mnist_cnn}\ntrainn: {epochs: 2}\n")
    with pytest.raises(ConfigError, match="unknown config section 'trainn'"):
        load_config("mnist_cnn", str(bad))
    other = tmp_path / "other.yaml"
    other.write_text("model: {name: imgcls}\n")
    with pytest.raises(ConfigError, match="is for model 'imgcls', not 'mnist_cnn'"):
        load_config("mnist_cnn", str(other))
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config("mnist_cnn", str(broken))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("mnist_cnn", str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("text, message", [
    ('train: {batch_size: "32"}', r"bad value for train.batch_size: '32'; expected an integer"),
    ("train: {batch_size: -8}", r"bad value for train.batch_size: -8; expected an integer >= 1"),
    ("model: {dropout: [0.5]}", r"bad value for model.dropout: \[0.5\]; expected a number"),
    ("data: {cache: 3}", r"bad value for data.cache: 3; expected true or false"),
    ("train: {seed: 1, sede: 2}", r"unknown config key 'train.sede'"),
])
def test_wrong_types_in_a_config_file_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_config("mnist_cnn", str(path))
    assert "\n" not in str(err.value)


def test_config_round_trips_through_yaml():
    from zoo.config import config_from_dict
    cfg = load_config("imgcls", overrides=["model.image_size=64", "train.epochs=2"])
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()), "test")
    assert again == cfg


def test_config_errors_come_before_tensorflow_is_imported(tmp_path):
    code = ("import sys\nfrom zoo.config import load_config, ConfigError\n"
            "from zoo.data import DataError\nfrom zoo.train import run\n"
            "for change in ('train.batch_size=0', 'data.dataset=idx:/nonexistent',\n"
            "               'train.strategy=multi_worker', 'train.strategy=tpu'):\n"
            "    try:\n"
            f"        run(load_config('mnist_cnn', overrides=[change]), {str(tmp_path)!r})\n"
            "    except (ConfigError, DataError) as e:\n"
            "        print(str(e).split(';')[0])\n"
            "print('tensorflow' in sys.modules)\n")
    env = cli_env()
    env.pop("TPU_NAME", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=60)
    assert out.stdout.splitlines() == [
        "bad value for train.batch_size: 0", "idx: directory not found: /nonexistent",
        "--strategy=multi_worker needs TF_CONFIG naming the cluster (see docs/distributed.md)",
        "--strategy=tpu needs --tpu=ADDRESS (or TPU_NAME)", "False"], out.stderr[-2000:]


@pytest.mark.parametrize("args, message", [
    (["--model=resnet"], "error: unknown model 'resnet'; known models: "),
    (["--model=mnist_cnn", "--batch_size=-3"], "error: bad value for train.batch_size: -3"),
    (["--model=mnist_cnn", "--set", "train.epochz=1"], "error: unknown config key 'train.epochz'"),
    (["--model=mnist_cnn", "--dataset=idx:/nonexistent", "--strategy=cpu"],
     "error: idx: directory not found: /nonexistent"),
    (["--model=mnist_cnn", "--strategy=multi_worker"],
     "error: --strategy=multi_worker needs TF_CONFIG"),
])
def test_cli_errors_are_one_line(args, message, tmp_path):
    result = run_cli("zoo.train", *args, f"--model_dir={tmp_path / 'run'}", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_spec_and_split_parsing():
    assert parse_spec("tfds:mnist") == parse_spec("tfds:mnist").__class__("tfds", "mnist", "")
    assert parse_spec("tfds:glue/sst2:train").split == "train"
    assert parse_spec("tfds:mnist:3.*").location == "mnist:3.*"
    assert parse_spec("idx:/data/mnist").location == "/data/mnist"
    assert parse_split("t10k[:8000]") == ("t10k", "", "8000")
    assert parse_split("train[80%:]") == ("train", "80%", "")
    assert list(slice_indices(10, "80%", "")) == [8, 9]
    assert list(slice_indices(10, "", "-7")) == [0, 1, 2]
    with pytest.raises(ConfigError, match="bad split"):
        parse_split("train[a:b]")


def test_parse_override_reads_yaml_values():
    assert parse_override("model.conv_filters=[32, 64]") == ("model", "conv_filters", [32, 64])
    assert parse_override("train.jit_compile=true") == ("train", "jit_compile", True)
