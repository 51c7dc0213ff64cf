"""Fault injection: kills, preemption, corrupt checkpoints, full disks, bad data, determinism."""
import json
import re
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, cli_env, free_port, run_cli
from zoo.config import load_config
from zoo.data import DataError, load
from zoo.train import run

TINY = ["--model=mnist_cnn", "--dataset=synthetic", "--batch_size=16",
        "--set=data.synthetic_examples=1024", "--set=model.conv_filters=[8]",
        "--set=model.dense_units=16", "--set=train.log_every_steps=10",
        "--set=train.deterministic=true",
        "--set=train.steps_per_execution=1"]  # step-level logs, backups and kills


def train_cli(model_dir, *extra, **kw):
    return run_cli("zoo.train", f"--model_dir={model_dir}", *TINY, *extra, **kw)


def start_cli(model_dir, *extra, **popen):
    return subprocess.Popen([sys.executable, "-m", "zoo.train", f"--model_dir={model_dir}",
                             *TINY, *extra], stderr=subprocess.PIPE, text=True, env=cli_env(),
                            cwd=REPO, **popen)


def wait_for(proc, text):
    """Reads the process's log until `text` appears; returns everything read."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen[-20:])}")


def digest(model_dir):
    return json.loads((model_dir / "metrics.json").read_text())["weights_sha256"]


def test_sigkill_then_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    """Killed mid-epoch, the rerun resumes from the last backup (not epoch 1), ends with the
    uninterrupted run's weights, and a third run of the finished run only evaluates."""
    def extra(steps_per_execution):
        return ["--epochs=3", "--set=train.checkpoint_every_steps=16",
                f"--set=train.steps_per_execution={steps_per_execution}",
                "--set=train.log_every_steps=8"]

    # one uninterrupted run: steps_per_execution changes how steps are grouped, not the steps
    assert train_cli(tmp_path / "whole", *extra(8)).returncode == 0
    for steps_per_execution in (1, 8):  # 8: backups fall between calls
        killed = tmp_path / f"killed{steps_per_execution}"
        proc = start_cli(killed, *extra(steps_per_execution))
        wait_for(proc, "epoch 2/3 step 48/64")
        proc.kill()
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL and not (killed / "metrics.json").exists()
        result = train_cli(killed, *extra(steps_per_execution))
        assert result.returncode == 0, result.stderr
        resumed = re.search(r"resumed from epoch 2, step (32|48) of (\S+)", result.stderr)
        assert resumed and resumed[2] == str(killed), result.stderr
        assert "epoch 1/3 step" not in result.stderr  # the first epoch is not trained again
        metrics = json.loads((killed / "metrics.json").read_text())
        assert metrics["resumed_from"] == {"epoch": 2, "step": int(resumed[1])}
        # same seed, deterministic ops, data and random-layer state restored: tolerance 0
        assert digest(killed) == digest(tmp_path / "whole"), steps_per_execution

    again = train_cli(killed, *extra(8))  # finished: nothing trained, its final weights evaluated
    assert f"{killed} holds a finished run (3 epochs)" in again.stderr, again.stderr
    assert "epoch 3/3 step" not in again.stderr
    kept = json.loads((killed / "metrics.json").read_text())
    for key in ("accuracy", "weights_sha256", "resumed_from", "examples_per_sec"):
        assert kept[key] == metrics[key], key


def test_same_seed_and_config_train_to_identical_weights(tmp_path):
    overrides = ["data.dataset=synthetic", "data.synthetic_examples=512", "train.epochs=2",
                 "model.conv_filters=[8]", "model.dense_units=16", "train.deterministic=true",
                 "train.batch_size=32"]
    first = run(load_config("mnist_cnn", overrides=overrides), tmp_path / "a")
    second = run(load_config("mnist_cnn", overrides=overrides), tmp_path / "b")
    assert first["weights_sha256"] == second["weights_sha256"]
    other_seed = run(load_config("mnist_cnn", overrides=overrides + ["train.seed=7"]),
                     tmp_path / "c")
    assert other_seed["weights_sha256"] != first["weights_sha256"]


def test_sigterm_writes_a_backup_and_the_rerun_resumes_there(tmp_path):
    extra = ["--epochs=2", "--set=train.checkpoint_every_steps=1000"]  # no periodic backup
    proc = start_cli(tmp_path, *extra)
    wait_for(proc, "epoch 1/2 step 30/64")
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM, log
    stopped = re.search(r"stopped by SIGTERM at epoch 1, step (\d+): backup written to", log)
    assert stopped, log
    step = int(stopped[1])
    assert 30 <= step < 64
    # no epoch checkpoint for the cut epoch: a fallback to it would skip the rest of epoch 1
    assert not list((tmp_path / "checkpoints").glob("ckpt-0001*")), log
    result = train_cli(tmp_path, *extra)
    assert result.returncode == 0, result.stderr
    assert f"resumed from epoch 1, step {step} of {tmp_path}" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_with_epoch_backups_only_and_it_resumes(tmp_path, signum):
    # the old code installed the handlers but read them only with mid-epoch backups on:
    # the run ignored the signal and trained to its end
    extra = ["--epochs=2", "--set=train.checkpoint_every_steps=0"]
    proc = start_cli(tmp_path, *extra)
    wait_for(proc, "epoch 1/2 step 30/64")
    proc.send_signal(signum)
    log = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signum, log
    name = signal.Signals(signum).name
    stopped = re.search(rf"stopped by {name} at epoch 1, step (\d+): backup written to", log)
    assert stopped, log
    result = train_cli(tmp_path, *extra)
    assert result.returncode == 0, result.stderr
    assert f"resumed from epoch 1, step {stopped[1]} of {tmp_path}" in result.stderr


def test_corrupt_latest_backup_falls_back_to_the_last_epoch_checkpoint(tmp_path):
    assert train_cli(tmp_path, "--epochs=2").returncode == 0
    for data_file in (tmp_path / "backup" / "chief").glob("*.data-*"):
        data_file.write_bytes(data_file.read_bytes()[:100])  # truncated
    result = train_cli(tmp_path, "--epochs=3")
    assert result.returncode == 0, result.stderr
    assert re.search(r"backup \S+ is unreadable \(.+\); moved it to \S+chief.unreadable-",
                     result.stderr), result.stderr
    assert "resuming from the epoch checkpoint" in result.stderr
    assert "resumed from epoch 3, step 0" in result.stderr
    assert "epoch 1/3 step" not in result.stderr

    for data_file in (tmp_path / "checkpoints").glob("*.data-*"):
        data_file.write_bytes(b"\0" * data_file.stat().st_size)  # checksums fail
    for data_file in (tmp_path / "backup" / "chief").glob("*.data-*"):
        data_file.write_bytes(b"\0" * data_file.stat().st_size)
    result = train_cli(tmp_path, "--epochs=4")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path} holds a run but no intact checkpoint to resume from; "
        "move it away to start over")


def test_full_disk_while_checkpointing_is_a_clear_error_and_keeps_the_last_checkpoint(
        tmp_path):
    assert train_cli(tmp_path, "--epochs=1").returncode == 0
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    size = (tmp_path / "checkpoints" / "ckpt-0001.data-00000-of-00001").stat().st_size

    def limit_file_size():  # a file larger than this fails with EFBIG, like a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))

    result = subprocess.run([sys.executable, "-m", "zoo.train", f"--model_dir={tmp_path}",
                             *TINY, "--epochs=2"], capture_output=True, text=True,
                            env=cli_env(), cwd=REPO, timeout=300, preexec_fn=limit_file_size)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: can't write to {tmp_path}") and "File too large" in last
    assert "Traceback" not in result.stderr
    # the epoch-1 checkpoint is intact, and an unlimited rerun continues from the run
    assert set(before) <= {p.name for p in (tmp_path / "checkpoints").iterdir()}
    from zoo.resume import unreadable
    assert unreadable(str(tmp_path / "checkpoints" / "ckpt-0001")) is None
    again = train_cli(tmp_path, "--epochs=2")
    assert again.returncode == 0 and "resumed from epoch" in again.stderr


def two_worker_cluster(model_dir, *extra):
    """A function starting worker 0 or 1 of a localhost MultiWorkerMirrored cluster that
    trains TINY for 2 epochs of 100 steps into `model_dir`."""
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    args = [f"--model_dir={model_dir}", *TINY, "--epochs=2", "--steps_per_epoch=100",
            "--set=train.deterministic=false", *extra]

    def start(index):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        return subprocess.Popen([sys.executable, "-m", "zoo.train", *args],
                                stderr=subprocess.PIPE, text=True, cwd=REPO,
                                env=cli_env(TF_CONFIG=tf_config))
    return start


def test_killed_multi_worker_peer_fails_the_job_fast_and_a_restart_resumes(tmp_path):
    start = two_worker_cluster(tmp_path, "--set=train.checkpoint_every_steps=20")
    chief, other = start(0), start(1)
    wait_for(chief, "epoch 1/2 step 60/100")
    other.kill()
    other.wait(timeout=30)
    killed_at = time.monotonic()
    log = chief.communicate(timeout=240)[1]
    print(f"surviving worker failed {time.monotonic() - killed_at:.1f} s after its peer died")
    assert chief.returncode == 2, log
    last = log.strip().splitlines()[-1]
    assert last.startswith("error: a worker of the multi-worker cluster stopped answering"), last

    chief, other = start(0), start(1)
    logs = [p.communicate(timeout=300)[1] for p in (chief, other)]
    assert chief.returncode == 0 and other.returncode == 0, logs[0][-2000:]
    assert re.search(r"resumed from epoch 1, step \d+ of", logs[0]), logs[0][-2000:]


@pytest.mark.parametrize("signalled, signum", [(1, signal.SIGTERM), (0, signal.SIGINT)])
def test_a_signal_to_one_worker_stops_the_whole_cluster_at_one_step_and_it_resumes(
        tmp_path, signalled, signum):
    # the old code installed no handler under MultiWorkerMirrored: SIGTERM killed the one
    # worker without a backup (the others failed on the lost peer) and SIGINT was a
    # KeyboardInterrupt there; with epoch backups only, the work since the last epoch was lost
    start = two_worker_cluster(tmp_path, "--set=train.checkpoint_every_steps=0")
    workers = [start(0), start(1)]
    wait_for(workers[0], "epoch 1/2 step 30/100")
    workers[signalled].send_signal(signum)
    sent = time.monotonic()
    logs = [w.communicate(timeout=120)[1] for w in workers]
    print(f"both workers stopped {time.monotonic() - sent:.1f} s after the signal")
    name = signal.Signals(signum).name
    steps = []
    for index, (worker, log) in enumerate(zip(workers, logs)):
        why = f"by {name}" if index == signalled else "because another worker was signalled"
        stopped = re.search(rf"stopped {why} at epoch 1, step (\d+): backup written to", log)
        assert stopped, log[-3000:]
        assert worker.returncode == 128 + (signum if index == signalled else signal.SIGTERM)
        steps.append(int(stopped[1]))
    assert steps[0] == steps[1] and 30 <= steps[0] < 100, steps

    workers = [start(0), start(1)]
    logs = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs[0][-3000:]
    assert f"resumed from epoch 1, step {steps[0]} of {tmp_path}" in logs[0], logs[0][-3000:]


@pytest.mark.parametrize("content, message", [
    (b"sentence\tlabel\ngood movie\t1\nbad \xff movie\t0\n", r"train.tsv:3: not UTF-8 text"),
    (b"sentence\tlabel\ngood movie\t1\nbad movie\n", r"train.tsv:3: missing label"),
    (b"", r"train.tsv: empty file"),
    (b"sentence,label\ngood movie,1\n", r"train.tsv:1: header \['sentence,label'\] has one "
                                        r"column; expected tab-separated"),
])
def test_bad_text_files_are_named_with_their_line(tmp_path, content, message):
    (tmp_path / "train.tsv").write_bytes(content)
    (tmp_path / "dev.tsv").write_bytes(b"sentence\tlabel\nok\t1\n")
    from zoo.data import parse_spec, text
    from zoo.config import DataConfig
    with pytest.raises(DataError, match=message):
        text.load(parse_spec(f"tsv:{tmp_path}"), DataConfig(dataset=f"tsv:{tmp_path}"), 2, 0)


@pytest.mark.parametrize("spec, message", [
    ("tsv:{root}/missing", r"tsv: directory not found: .+/missing$"),
    ("csv:{root}", r"csv:.+: no train.csv$"),
], ids=["missing directory", "missing file"])
def test_a_missing_text_directory_or_file_is_named(tmp_path, spec, message):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\t1\n")
    cfg = load_config("textcls", overrides=[f"data.dataset={spec.format(root=tmp_path)}"])
    with pytest.raises(DataError, match=message):
        load(cfg, "text_classification")


def test_an_eval_label_outside_the_training_classes_is_refused(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood\tpos\nbad\tneg\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nmeh\tneutral\n")
    from zoo.data import parse_spec, text
    from zoo.config import DataConfig
    with pytest.raises(DataError, match=r"dev.tsv: label 'neutral' \(data row 1\) is not among "
                                        r"the training labels \['neg', 'pos'\]"):
        text.load(parse_spec(f"tsv:{tmp_path}"), DataConfig(dataset=f"tsv:{tmp_path}"), 2, 0)


def test_corrupt_image_inside_a_valid_header_is_named(tmp_path):
    from conftest import write_png
    for split in ("train", "validation"):
        for label in ("a", "b"):
            write_png(tmp_path / split / label / "0.png", np.zeros((8, 8, 3), np.uint8))
    path = tmp_path / "train" / "b" / "0.png"
    path.write_bytes(path.read_bytes()[:20])  # PNG magic, then nothing
    cfg = load_config("imgcls", overrides=[f"data.dataset=folder:{tmp_path}",
                                           "model.image_size=32", "model.conv_filters=[8]"])
    with pytest.raises(DataError, match=r"train/b/0.png: can't decode"):
        train, _, _ = load(cfg, "image_classification")
        list(train)


def test_zoo_models_have_no_lambda_layers_and_the_code_loads_no_pickles():
    from zoo import registry
    for name in registry.names():
        model = registry.create_model(name)
        kinds = {type(layer).__name__ for layer in model.submodules}
        assert "Lambda" not in kinds, name
    sources = "\n".join(p.read_text() for p in (REPO / "zoo").rglob("*.py"))
    assert "import pickle" not in sources and "safe_mode=False" not in sources


SMALL = {"mnist_cnn": dict(conv_filters=[8], dense_units=16),
         "imgcls": dict(image_size=32, conv_filters=[8], dense_units=8),
         "bert": dict(layers=1, hidden=16, heads=2, intermediate=32, max_position=16,
                      max_length=8)}


@pytest.mark.parametrize("name", sorted(SMALL))  # textcls: tests/test_textcls.py
def test_zoo_models_round_trip_through_keras_files_in_safe_mode(name, tmp_path):
    import tensorflow as tf
    import tf_keras as keras
    from zoo import registry
    model = registry.create_model(name, **SMALL[name])
    spec = model.inputs[0]
    if spec.dtype == tf.string:
        inputs = tf.constant(["the movie was good", "", "a b c d e f g h i j k"])
    else:
        inputs = np.random.default_rng(0).integers(0, 255, (2, *spec.shape[1:]), np.uint8)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(inputs, training=False), model(inputs, training=False),
                               atol=1e-6)


def test_a_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    """The zoo rebuilds models from config.yaml and loads weights only; a `.keras` file that
    carries code is refused by Keras's default safe mode."""
    import tf_keras as keras
    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "l.keras")
    with pytest.raises(ValueError, match="deserialization of a Lambda layer"):
        keras.models.load_model(tmp_path / "l.keras")


def test_a_config_yaml_with_python_tags_is_refused_and_runs_nothing(tmp_path):
    from export import source as export_source
    from zoo.config import ConfigError
    marker = tmp_path / "pwned"
    (tmp_path / "config.yaml").write_text(
        f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    message = r"config.yaml is not valid YAML: could not determine a constructor for the tag"
    with pytest.raises(ConfigError, match=message):
        run(load_config("mnist_cnn", overrides=["data.dataset=synthetic"]), tmp_path)
    with pytest.raises(ConfigError, match=message):
        export_source.load(tmp_path)
    assert not marker.exists()

