"""Experiment configs by model name: the registered model's config class in the schema of
`zoo.schema`, its YAML defaults and `--set key=value` overrides.

This is the module users import; it re-exports the schema's public names.
"""
from __future__ import annotations

from pathlib import Path

from zoo import registry, schema
from zoo.errors import ConfigError
from zoo.schema import (DataConfig, ExperimentConfig, ExportConfig, TrainConfig, parse_override,
                        read_yaml, set_field, validate)

__all__ = ["ConfigError", "DataConfig", "ExperimentConfig", "ExportConfig", "TrainConfig",
           "config_from_dict", "load_config", "parse_override", "read_yaml", "set_field",
           "validate"]


def load_config(model_name: str, config_path: str | Path | None = None,
                overrides: list[str] = ()) -> ExperimentConfig:
    """Defaults of the model's config class <- zoo/configs/<model>.yaml (or `config_path`) <-
    overrides; an unknown model fails with the list of known ones."""
    return schema.experiment(model_name, registry.get(model_name).config, config_path,
                             overrides)


def config_from_dict(values: dict, origin: str) -> ExperimentConfig:
    """Rebuilds a config from a saved `config.yaml` dict (as written by `to_dict`)."""
    name = schema.saved_model_name(values, origin)
    return schema.from_dict(values, origin, registry.get(name).config)
