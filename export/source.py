"""What an export starts from: a trained model with its labels, assets and data."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from zoo.errors import ConfigError
from zoo.parts import Parts, split_preprocessing


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
    assets: list[Path] = dataclasses.field(default_factory=list)
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

    model_dir = Path(model_dir)
    config_path = model_dir / "config.yaml"
    if not config_path.is_file():
        raise ExportError(f"{model_dir} is not a trained model_dir (no config.yaml)")
    cfg = config_from_dict(read_yaml(config_path), str(config_path))
    from zoo.files import resolved_path, run_file_keys
    for key in run_file_keys(cfg.model):  # stored relative to model_dir
        setattr(cfg.model, key, resolved_path(getattr(cfg.model, key), model_dir))
    if dataset:
        set_field(cfg.data, "data", "dataset", dataset)
        validate(cfg)

    from zoo import data
    no_checkpoint = f"no checkpoint in {model_dir / 'checkpoints'}; train the model first"
    if not (model_dir / "checkpoints" / "checkpoint").is_file():  # before TensorFlow loads
        raise ExportError(no_checkpoint)
    data.check_local(cfg.data.dataset)

    import tensorflow as tf

    checkpoint = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    if not checkpoint:
        raise ExportError(no_checkpoint)
    entry = registry.get(cfg.model_name)
    model = entry.build(cfg.model)
    _, trainable = split_preprocessing(model)
    trainable.load_weights(checkpoint).expect_partial()

    assets_dir = model_dir / "assets"
    labels_path = assets_dir / "labels.txt"
    if not labels_path.is_file():
        raise ExportError(f"no {labels_path}; the training run writes it")
    labels = labels_path.read_text().splitlines()
    train_ds, eval_ds, info = data.load(cfg, entry.task)
    if info.num_classes != len(labels):
        raise ConfigError(f"{cfg.data.dataset} has {info.num_classes} classes but the model was "
                          f"trained on {len(labels)} ({labels_path})")
    assets = sorted(p for p in assets_dir.iterdir() if p.is_file() and p != labels_path)
    return Source(cfg.model_name, entry.task, model, labels, train_ds, eval_ds, assets,
                  cfg.export)
