"""Backups at every epoch's end with step-level backups on (issue: tf-keras takes none there
with an integer save_freq, and a run killed after an epoch resumed mid-way through it)."""
import pytest

from zoo import resume
from zoo.config import load_config
from zoo.train import run

STEPS = 10  # per epoch; a backup every 7 steps falls mid-epoch, never on an epoch's last step


def test_an_epoch_ends_with_a_backup_when_backups_are_taken_every_n_steps(tmp_path):
    cfg = load_config("mnist_cnn", overrides=[
        "data.dataset=synthetic", "data.synthetic_examples=320", "train.strategy=cpu",
        "train.batch_size=32", f"train.steps_per_epoch={STEPS}", "train.epochs=2",
        "train.checkpoint_every_steps=7", "train.steps_per_execution=1",
        "model.conv_filters=[4]", "model.dense_units=8", "model.augment=false"])
    run(cfg, tmp_path)
    point = resume.find(tmp_path, STEPS)
    # the backup taken after the last epoch's last step: a rerun starts after it (the old
    # code never reset its count at the epoch: its last backup was the second epoch's 4th
    # step, and a rerun resumed at epoch 1, step 4)
    assert (point.epoch, point.step, point.weights) == (2, 0, None)


def _unreadable_backup(model_dir):
    backup = model_dir / "backup" / "chief"
    backup.mkdir(parents=True)
    (backup / "ckpt-1.index").write_bytes(b"not a checkpoint")  # and no checkpoint state file
    return backup


def test_only_the_chief_moves_an_unreadable_backup_aside(tmp_path):
    import tensorflow as tf
    backup = _unreadable_backup(tmp_path)
    prefix = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "checkpoints/ckpt-0001"))
    # a non-chief worker on shared storage resumes from the epoch checkpoint, touching nothing
    point = resume.find(tmp_path, STEPS, chief=False)
    assert (point.epoch, point.weights) == (1, prefix)
    assert sorted(p.name for p in backup.parent.iterdir()) == ["chief"]


def test_two_asides_in_the_same_second_do_not_collide(tmp_path, monkeypatch):
    monkeypatch.setattr(resume.time, "time", lambda: 1_700_000_000.0)
    for _ in range(2):  # the old aside name was chief.unreadable-<seconds>: the second failed
        _unreadable_backup(tmp_path)
        with pytest.raises(resume.ResumeError):
            resume.find(tmp_path, STEPS)
    asides = [p.name for p in (tmp_path / "backup").iterdir()]
    assert len(asides) == 2 and all(a.startswith("chief.unreadable-1700000000") for a in asides)
