"""The model registry: a model module registers its builder with one decorator.

    @register("mnist_cnn", task="image_classification", config=MnistCnnConfig)
    def build(cfg: MnistCnnConfig) -> tf_keras.Model: ...

A builder returns an uncompiled tf-keras model whose inputs are what a client has (uint8
pixels, raw strings), preprocessing inside. The registry imports every module and package
of `zoo.models` when it is first asked (a model's registers it; a shared helper such as
`blocks` registers nothing), so a new model is its module alone; zoo/configs/<name>.yaml,
optional, adds defaults beyond its config class. These modules import TensorFlow only inside
functions, so listing the registry and checking configs stays fast.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Callable

from zoo import schema
from zoo.errors import ConfigError

TASKS = ("image_classification", "text_classification")
MODELS_DIR = Path(__file__).resolve().parent / "models"


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


def model_modules() -> list[str]:
    """The model modules: every module and package in zoo/models but `__main__`."""
    return [f"zoo.models.{m.name}" for m in pkgutil.iter_modules([str(MODELS_DIR)])
            if not m.name.startswith("_")]


def _load_all():
    for module in model_modules():
        importlib.import_module(module)


def names() -> list[str]:
    """Registered model names, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> Entry:
    """The entry for `name`; an unknown name fails with the list of known ones."""
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **overrides):
    """Builds model `name` from its default config with field `overrides` (timm style)."""
    sets = [f"model.{k}={_yaml_value(v)}" for k, v in overrides.items()]
    cfg = schema.experiment(name, get(name).config, overrides=sets)
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
