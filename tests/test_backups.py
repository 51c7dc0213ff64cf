"""Backups at every epoch's end with step-level backups on (issue: tf-keras takes none there
with an integer save_freq, and a run killed after an epoch resumed mid-way through it)."""
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
    point = resume.find(tmp_path, STEPS, batch_level=True)
    # the backup taken after the last epoch's last step: a rerun starts after it (the old
    # code never reset its count at the epoch: its last backup was the second epoch's 4th
    # step, and a rerun resumed at epoch 1, step 4)
    assert (point.epoch, point.step, point.weights) == (2, 0, None)
