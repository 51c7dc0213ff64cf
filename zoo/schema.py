"""The experiment config schema: dataclasses, YAML files and `--set key=value` overrides.

The schema takes the model's config class from its caller (`zoo.config` looks it up in the
registry). Nothing here imports TensorFlow, so a bad config fails in milliseconds with one
line that names the key and what it accepts.
"""
from __future__ import annotations

import dataclasses
import logging
import typing
from pathlib import Path
from typing import Any

import yaml

from zoo.data.specs import parse_spec
from zoo.errors import ConfigError

# package data: a model's optional defaults beyond its config class, found by the model's name
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# the export's formats and TFLite quantizations: the one list of each
FORMATS = ("saved_model", "tflite", "xla", "edgetpu_audit")
FORMAT_ALIASES = {"tpu": "xla", "edgetpu": "edgetpu_audit"}  # the names before 0.2
KEY_ALIASES = {"export.tpu_batch_size": "export.xla_batch_size"}  # the key before 0.2
QUANTIZATIONS = ("float32", "dynamic", "float16", "int8", "int16x8")


def choice(default, choices, doc=""):
    """A string field restricted to `choices`."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices), "doc": doc})


def bounded(default, low=None, high=None, doc="", high_open=False):
    """A numeric field with inclusive bounds (`high_open` excludes the upper one)."""
    return dataclasses.field(
        default=default, metadata={"low": low, "high": high, "high_open": high_open, "doc": doc})


def listed(default, low=None, doc="", choices=None, canonical=None):
    """A list field; `low` bounds each element, `choices` restricts them, `canonical` (a
    function of the list) replaces old names first."""
    meta = {"low": low, "doc": doc, "canonical": canonical,
            **({"choices": tuple(choices)} if choices else {})}
    return dataclasses.field(default_factory=lambda: list(default), metadata=meta)


def canonical_formats(formats) -> list[str]:
    """`formats` with the names before 0.2 (`tpu`, `edgetpu`) replaced by today's, each
    replacement noted in one log line."""
    for old in dict.fromkeys(f for f in formats if f in FORMAT_ALIASES):
        logging.getLogger("zoo").warning("note: export format %r is now called %r", old,
                                         FORMAT_ALIASES[old])
    return [FORMAT_ALIASES.get(f, f) for f in formats]


def layer_sizes(default, doc=""):
    """Hidden layer widths: a list with one layer per entry, or an integer for one layer
    (0 = none), kept as written."""
    value = (lambda: list(default)) if isinstance(default, list) else (lambda: default)
    return dataclasses.field(default_factory=value, metadata={"layer_sizes": True, "doc": doc})


def layer_list(value) -> list[int]:
    """A `layer_sizes` field's value as a list: 128 -> [128], 0 -> []."""
    return list(value) if isinstance(value, list) else [value] if value else []


@dataclasses.dataclass
class DataConfig:
    dataset: str = "synthetic"
    train_split: str = "train"
    eval_split: str = "test"
    data_dir: str = ""            # TFDS data_dir; empty = TFDS default (~/tensorflow_datasets)
    shuffle_buffer: int = bounded(10_000, low=0)
    cache: bool = True
    prefetch: bool = True         # prefetch batches (AUTOTUNE) while a step runs
    synthetic_examples: int = bounded(2048, low=16)
    max_examples: int = bounded(0, low=0, doc="cap on training examples; 0 = all")
    max_eval_examples: int = bounded(0, low=0, doc="cap on evaluation examples; 0 = all")


@dataclasses.dataclass
class TrainConfig:
    epochs: int = bounded(10, low=1)
    batch_size: int = bounded(128, low=1, doc="global batch size, split over replicas")
    batch_scaling_examples: int = bounded(
        0, low=0, doc="0 = batch_size at any training-set size; N = batch_size is the batch "
        "for N training examples, and n examples train with batch_size * sqrt(n / N), rounded "
        "to a multiple of 8 (see `scaled_batch_size`)")
    steps_per_epoch: int = bounded(0, low=0, doc="0 = one pass over the training split")
    optimizer: str = choice("adam", ["adam", "lazy_adam", "adamw", "sgd", "rmsprop"],
                            doc="lazy_adam: Adam with sparse embedding updates")
    fused_adam: bool = True       # adam/adamw on TensorFlow's fused kernel (same formula)
    learning_rate: float = bounded(1e-3, low=0.0, high=10.0)
    lr_schedule: str = choice("constant", ["constant", "cosine", "linear"])
    warmup_fraction: float = bounded(0.0, low=0.0, high=1.0, high_open=True)
    weight_decay: float = bounded(0.0, low=0.0)
    strategy: str = choice("auto", ["auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu"])
    tpu: str = ""
    cpu_devices: int = bounded(0, low=0, doc="split the CPU into N logical devices (0 = as is)")
    mixed_precision: str = choice("none", ["none", "mixed_bfloat16", "mixed_float16", "auto"],
                                  doc="auto: mixed_bfloat16 on TPUs and CPUs with bfloat16 "
                                      "instructions, mixed_float16 on GPUs, else none")
    jit_compile: bool = False
    steps_per_execution: int = bounded(1, low=1)
    intra_op_threads: int = bounded(0, low=0, doc="threads inside one op; 0 = TensorFlow's "
                                    "default (all cores)")
    inter_op_threads: int = bounded(0, low=0, doc="ops run at once; 0 = TensorFlow's default")
    seed: int = 42
    deterministic: bool = False
    checkpoint_every_steps: int = bounded(500, low=0, doc="mid-epoch backup period; 0 = per epoch")
    log_every_steps: int = bounded(100, low=1, doc="progress line period when not on a TTY")


@dataclasses.dataclass
class ExportConfig:
    formats: list[str] = listed(["saved_model", "tflite"], choices=FORMATS,
                                  canonical=canonical_formats)
    quantize: list[str] = listed(list(QUANTIZATIONS), choices=QUANTIZATIONS)
    max_accuracy_drop: float = bounded(0.01, low=0.0, high=1.0)
    calibration_examples: int = bounded(200, low=1)
    xla_batch_size: int = bounded(8, low=1, doc="the fixed batch of the `xla` SavedModel")


@dataclasses.dataclass
class ExperimentConfig:
    """The whole run: `model` is the registered model's own config dataclass."""
    model_name: str
    model: Any
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def to_dict(self) -> dict:
        """Plain dict in the YAML layout (`model.name` carries the model name)."""
        return {
            "model": {"name": self.model_name, **dataclasses.asdict(self.model)},
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "export": dataclasses.asdict(self.export),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS = ("model", "data", "train", "export")


def _describe(f: dataclasses.Field) -> str:
    meta = f.metadata
    if "choices" in meta:
        return "one of " + ", ".join(meta["choices"])
    if meta.get("layer_sizes"):
        return "an integer >= 0 or a list of integers >= 1, e.g. 128 or [256, 128]"
    kind = _type_name(f.type)
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        return f"{kind} in [{low}, {high}{')' if meta.get('high_open') else ']'}"
    if low is not None:
        return f"{kind} >= {low}"
    return kind


def _type_name(tp) -> str:
    tp = _resolve(tp)
    origin = typing.get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, str(tp))


def _resolve(tp):
    if isinstance(tp, str):
        return eval(tp, {"list": list, "int": int, "float": float, "bool": bool, "str": str})
    return tp


def _coerce(key: str, value, f: dataclasses.Field):
    """Checks `value` against the field's type and bounds; returns the typed value."""
    tp = _resolve(f.type)
    expected = _describe(f)
    bad = ConfigError(f"bad value for {key}: {value!r}; expected {expected}")
    if f.metadata.get("layer_sizes"):
        sizes = value if isinstance(value, list) else None
        out = (_scalar(value, int) if sizes is None
               else [_scalar(v, int) for v in sizes])
        if out is None or (sizes is None and out < 0) or (
                sizes is not None and any(v is None or v < 1 for v in out)):
            raise bad
        return out
    if typing.get_origin(tp) is list:
        (elem,) = typing.get_args(tp)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise bad
        out = [_scalar(v, elem) for v in value]
        if any(v is None for v in out):
            raise bad
        if f.metadata.get("canonical"):
            out = f.metadata["canonical"](out)
        if "choices" in f.metadata and set(out) - set(f.metadata["choices"]):
            bad_items = sorted(set(out) - set(f.metadata["choices"]))
            raise ConfigError(f"bad {key} {bad_items}; accepted: "
                              + ", ".join(f.metadata["choices"]))
        low = f.metadata.get("low")
        if low is not None and any(v < low for v in out):
            raise bad
        return out
    out = _scalar(value, tp)
    if out is None:
        raise bad
    meta = f.metadata
    if "choices" in meta and out not in meta["choices"]:
        raise bad
    low, high = meta.get("low"), meta.get("high")
    if low is not None and out < low:
        raise bad
    if high is not None and (out > high or (meta.get("high_open") and out >= high)):
        raise bad
    return out


def _scalar(value, tp):
    """`value` as `tp`, or None when it is not one (no silent truncation of 1.5 to 1)."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        return None
    if tp is int:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        return None
    return None


def set_field(obj, section: str, key: str, value):
    """Sets `section.key` of `obj` to `value` after checking it; a key's name before 0.2 is
    replaced by today's, noted in one log line."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    full = f"{section}.{key}"
    if full in KEY_ALIASES:
        logging.getLogger("zoo").warning("note: config key %r is now called %r", full,
                                         KEY_ALIASES[full])
        full = KEY_ALIASES[full]
        key = full.split(".", 1)[1]
    if key not in fields:
        raise ConfigError(
            f"unknown config key {full!r}; accepted {section} keys: " + ", ".join(fields))
    setattr(obj, key, _coerce(full, value, fields[key]))


def apply_dict(cfg: ExperimentConfig, values: dict, origin: str = "config"):
    """Applies a nested {section: {key: value}} dict (a YAML file's contents) to `cfg`."""
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections {SECTIONS}, got {values!r}")
    for section, entries in values.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{origin}: unknown config section {section!r}; accepted: {', '.join(SECTIONS)}")
        if not isinstance(entries, dict):
            raise ConfigError(f"{origin}: section {section!r} must be a mapping, got {entries!r}")
        for key, value in entries.items():
            if section == "model" and key == "name":
                if value != cfg.model_name:
                    raise ConfigError(
                        f"{origin} is for model {value!r}, not {cfg.model_name!r}")
                continue
            set_field(getattr(cfg, section), section, key, value)


def parse_override(text: str) -> tuple[str, str, Any]:
    """'train.epochs=3' -> ('train', 'epochs', 3); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"bad --set {text!r}; expected SECTION.KEY=VALUE, e.g. train.epochs=3")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS or not parts[1]:
        raise ConfigError(
            f"bad --set key {path!r}; expected SECTION.KEY with SECTION one of "
            f"{', '.join(SECTIONS)}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts[0], parts[1], value


def read_yaml(path: str | Path) -> dict:
    """Reads a YAML config file (a path or a URL); a missing or malformed file is a
    ConfigError."""
    from zoo import files
    if not files.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(files.read_text(path)) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}")
    return values


def experiment(model_name: str, model_config: type, config_path: str | Path | None = None,
               overrides: list[str] = ()) -> ExperimentConfig:
    """Defaults of `model_config` <- zoo/configs/<model_name>.yaml when there is one (or
    `config_path`) <- overrides."""
    cfg = ExperimentConfig(model_name=model_name, model=model_config())
    path = Path(config_path) if config_path else CONFIG_DIR / f"{model_name}.yaml"
    if config_path or path.is_file():
        values = read_yaml(path)
        name = (values.get("model") or {}).get("name") if isinstance(values, dict) else None
        if name is not None and name != model_name:
            raise ConfigError(f"config file {path} is for model {name!r}, not {model_name!r}")
        apply_dict(cfg, values, origin=str(path))
    for text in overrides:
        section, key, value = parse_override(text)
        set_field(getattr(cfg, section), section, key, value)
    validate(cfg)
    return cfg


def saved_model_name(values: dict, origin: str) -> str:
    """The model name of a saved `config.yaml` dict (as written by `to_dict`)."""
    name = (values.get("model") or {}).get("name") if isinstance(values, dict) else None
    if not name:
        raise ConfigError(f"{origin}: no model.name")
    return name


def from_dict(values: dict, origin: str, model_config: type) -> ExperimentConfig:
    """Rebuilds a config from a saved `config.yaml` dict of a model configured by
    `model_config`."""
    cfg = ExperimentConfig(model_name=saved_model_name(values, origin), model=model_config())
    apply_dict(cfg, values, origin=origin)
    validate(cfg)
    return cfg


def validate(cfg: ExperimentConfig):
    """Cross-field checks; each field's own type and range were checked when it was set."""
    if cfg.train.strategy == "tpu" and cfg.train.mixed_precision == "mixed_float16":
        raise ConfigError("train.mixed_precision=mixed_float16 is for GPUs; "
                          "use mixed_bfloat16 on TPU")
    check = getattr(cfg.model, "validate", None)
    if check:
        check()
    parse_spec(cfg.data.dataset)
