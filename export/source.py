"""What an export starts from: a trained model with its labels, assets and data."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from zoo import files
from zoo.errors import ConfigError
from zoo.parts import Parts, split_preprocessing
from zoo.run_dir import RunDir


class ExportError(ValueError):
    """Bad export request (missing model_dir, no checkpoint, version taken); one line."""


@dataclasses.dataclass
class Source:
    """A trained end-to-end model plus what its artifacts need.

    `train_ds`/`eval_ds` are unbatched `(input, label)` datasets; `assets` are files shipped
    beside the TFLite models (vocabularies), `labels` the class names.
    """
    name: str
    task: str
    model: object
    labels: list[str]
    train_ds: object
    eval_ds: object
    assets: list[str] = dataclasses.field(default_factory=list)  # paths or URLs
    export_cfg: object = None

    @property
    def is_text(self) -> bool:
        return self.task == "text_classification"

    def parts(self) -> Parts:
        """(preprocessor or None, core): the core maps what the preprocessor yields to probs."""
        return split_preprocessing(self.model)


def load(model_dir: str | Path, dataset: str | None = None) -> Source:
    """Rebuilds the model in `model_dir` from its config.yaml and latest checkpoint."""
    from zoo import registry
    from zoo.config import config_from_dict, read_yaml, set_field, validate

    run_dir = RunDir(model_dir)
    if not files.isfile(run_dir.config):
        raise ExportError(f"{run_dir} is not a trained model_dir (no config.yaml)")
    cfg = config_from_dict(read_yaml(run_dir.config), run_dir.config)
    for key in files.run_file_keys(cfg.model):  # stored relative to model_dir
        setattr(cfg.model, key, files.resolved_path(getattr(cfg.model, key), run_dir))
    if dataset:
        set_field(cfg.data, "data", "dataset", dataset)
        validate(cfg)

    from zoo import data
    no_checkpoint = f"no checkpoint in {run_dir.checkpoints}; train the model first"
    if not files.isfile(run_dir.checkpoint_state):  # before TensorFlow loads a local run
        raise ExportError(no_checkpoint)
    data.check_local(cfg.data.dataset)

    import tensorflow as tf

    checkpoint = tf.train.latest_checkpoint(run_dir.checkpoints)
    if not checkpoint:
        raise ExportError(no_checkpoint)
    entry = registry.get(cfg.model_name)
    model = entry.build(cfg.model)
    _, trainable = split_preprocessing(model)
    trainable.load_weights(checkpoint).expect_partial()

    if not files.isfile(run_dir.labels):
        raise ExportError(f"no {run_dir.labels}; the training run writes it")
    labels = files.read_text(run_dir.labels).splitlines()
    train_ds, eval_ds, info = data.load(cfg, entry.task)
    if info.num_classes != len(labels):
        raise ConfigError(f"{cfg.data.dataset} has {info.num_classes} classes but the model was "
                          f"trained on {len(labels)} ({run_dir.labels})")
    assets = [files.join(run_dir.assets, name) for name in files.listdir(run_dir.assets)
              if name != files.name(run_dir.labels)
              and files.isfile(files.join(run_dir.assets, name))]
    return Source(cfg.model_name, entry.task, model, labels, train_ds, eval_ds, assets,
                  cfg.export)
