"""The model registry: a model module registers its builder with one decorator.

    @register("mnist_cnn", task="image_classification", config=MnistCnnConfig)
    def build(cfg: MnistCnnConfig) -> tf_keras.Model: ...

A builder returns an uncompiled tf-keras model whose inputs are what a client has (uint8
pixels, raw strings), preprocessing inside. Model modules import TensorFlow only inside their
builders, so listing the registry and checking configs stays fast.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

TASKS = ("image_classification", "text_classification")
MODEL_MODULES = ("zoo.models.mnist_cnn", "zoo.models.imgcls", "zoo.models.textcls",
                 "zoo.models.bert")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered model.

    `prepare(cfg, train_ds, assets_dir) -> cfg` (optional) runs before the first build of a
    training run, e.g. to learn a vocabulary from the training split into `assets_dir`.
    `load_pretrained(model, cfg)` (optional) initialises a freshly built model from a checkpoint.
    """
    name: str
    task: str
    config: type
    build: Callable
    description: str = ""
    prepare: Callable | None = None
    load_pretrained: Callable | None = None


_REGISTRY: dict[str, Entry] = {}


def register(name: str, *, task: str, config: type, description: str = "",
             prepare: Callable | None = None, load_pretrained: Callable | None = None):
    """Decorator that registers `build(cfg)` under `name`."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(TASKS)}")

    def decorator(build):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or (build.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[name] = Entry(name, task, config, build, doc, prepare, load_pretrained)
        return build
    return decorator


def _load_all():
    for module in MODEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # a model module that exists but fails to import is a bug
                raise


def names() -> list[str]:
    """Registered model names, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> Entry:
    """The entry for `name`; an unknown name fails with the list of known ones."""
    from zoo.config import ConfigError

    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **overrides):
    """Builds model `name` from its default config with field `overrides` (timm style)."""
    from zoo.config import load_config

    sets = [f"model.{k}={_yaml_value(v)}" for k, v in overrides.items()]
    cfg = load_config(name, overrides=sets)
    return get(name).build(cfg.model)


def _yaml_value(value) -> str:
    import yaml
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def describe(name: str) -> dict:
    """Name, task, input signature and parameter count of the default-config model."""
    entry = get(name)
    model = create_model(name)
    inputs = [f"{t.name.split(':')[0]}: {t.dtype.name}{list(t.shape)}" for t in model.inputs]
    return {"name": name, "task": entry.task, "inputs": ", ".join(inputs),
            "params": int(model.count_params()), "description": entry.description}
