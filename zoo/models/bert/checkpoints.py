"""Pretrained BERT weights from the checkpoints users have on disk.

- Hugging Face layout: `config.json`, `model.safetensors`, `vocab.txt` (and optionally
  `tokenizer_config.json`). `pytorch_model.bin` is a pickle: it is refused with the command
  that converts it (this project loads no pickles).
- Google's original TF BERT: `bert_config.json`, `bert_model.ckpt.{index,data-*}`, `vocab.txt`.

Every tensor goes through one explicit name map onto `encoder.checkpoint_variables` (Google
names); a missing, unexpected or wrongly shaped tensor is a `CheckpointError` naming it.
Nothing here imports TensorFlow at module level: `find`/`read_config` run at config time.
"""
from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import numpy as np

from zoo import files
from zoo.errors import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint that doesn't match the encoder: names the tensor and what was expected."""


# --- which files ---------------------------------------------------------------------------

def find(directory: str | Path) -> dict:
    """{'format': 'huggingface'|'google', 'config', 'weights', 'vocab', 'dir'} (paths, or URLs
    for a checkpoint at a URL); a directory that lacks a file is a ConfigError naming it."""
    root = os.fspath(directory)
    root = root.rstrip("/") if files.is_url(root) else os.path.expanduser(root)
    if not files.isdir(root):
        raise ConfigError(f"model.checkpoint: directory not found: {root}")
    names = files.listdir(root)
    vocab = files.join(root, "vocab.txt")
    index = [files.join(root, n) for n in fnmatch.filter(names, "*.ckpt*.index")]
    if "bert_config.json" in names or index:
        weights = google_weights(root, index)
        found = {"format": "google", "config": files.join(root, "bert_config.json"),
                 "weights": weights}
        required = [found["config"], weights + ".index", vocab]
        layout = "a Google BERT checkpoint has bert_config.json, bert_model.ckpt.* and vocab.txt"
    else:
        weights = files.join(root, "model.safetensors")
        if not files.isfile(weights) and files.isfile(files.join(root, "pytorch_model.bin")):
            raise ConfigError(
                f"model.checkpoint: {root} has pytorch_model.bin, a pickle this project won't "
                "load; convert it once where PyTorch is installed: python -c \"import torch, "
                "safetensors.torch as s; s.save_file(torch.load('pytorch_model.bin'), "
                "'model.safetensors')\"")
        found = {"format": "huggingface", "config": files.join(root, "config.json"),
                 "weights": weights}
        required = [found["config"], weights, vocab]
        layout = "a Hugging Face BERT has config.json, model.safetensors and vocab.txt"
    for path in required:
        if not files.isfile(path):
            raise ConfigError(f"model.checkpoint: {root} lacks {files.name(path)} ({layout})")
    return {**found, "vocab": vocab, "dir": root}


def google_weights(root: str, index: list[str]) -> str:
    """The checkpoint prefix of a Google layout: the latest one its `checkpoint` state file
    names (a fine-tuning run's output), else its only one (the release's bert_model.ckpt)."""
    if files.isfile(files.join(root, "checkpoint")):
        import tensorflow as tf
        latest = tf.train.latest_checkpoint(root)
        if latest:
            return latest
    if len(index) > 1:
        names = ", ".join(files.name(p).removesuffix(".index") for p in index)
        raise ConfigError(f"model.checkpoint: {root} has several checkpoints ({names}) and no "
                          "`checkpoint` file naming the latest; keep one")
    return index[0].removesuffix(".index") if index else files.join(root, "bert_model.ckpt")


def read_config(directory: str | Path) -> dict:
    """The encoder sizes of a checkpoint: {layers, hidden, heads, intermediate, vocab_size,
    max_position, type_vocab_size, lower_case}."""
    found = find(directory)
    path = found["config"]
    try:
        raw = json.loads(files.read_text(path))
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}")
    keys = {"layers": "num_hidden_layers", "hidden": "hidden_size",
            "heads": "num_attention_heads", "intermediate": "intermediate_size",
            "vocab_size": "vocab_size", "max_position": "max_position_embeddings",
            "type_vocab_size": "type_vocab_size"}
    missing = [key for key in keys.values() if key not in raw]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}")
    out = {ours: int(raw[theirs]) for ours, theirs in keys.items()}
    act = raw.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConfigError(f"{path}: hidden_act={act!r}; this encoder has BERT's exact GELU")
    eps = float(raw.get("layer_norm_eps", 1e-12))
    if abs(eps - 1e-12) > 1e-15:
        raise ConfigError(f"{path}: layer_norm_eps={eps}; this encoder has BERT's 1e-12")
    out["lower_case"] = lower_case(found, raw)
    return out


def lower_case(found: dict, config: dict) -> bool:
    """Whether the checkpoint's tokenizer lower-cases: `do_lower_case` of
    tokenizer_config.json, else of the model config (config.json / bert_config.json), else
    what its vocabulary says (a cased one holds upper-case words; an uncased one none). Never
    the directory's name: Hub snapshots are named by hash."""
    tokenizer_config = files.join(found["dir"], "tokenizer_config.json")
    if files.isfile(tokenizer_config):
        try:
            value = json.loads(files.read_text(tokenizer_config)).get("do_lower_case")
        except ValueError as e:
            raise ConfigError(f"{tokenizer_config} is not valid JSON: {e}")
        if value is not None:
            return bool(value)
    if config.get("do_lower_case") is not None:
        return bool(config["do_lower_case"])
    tokens = files.read_text(found["vocab"]).split()
    return not any(t.lower() != t for t in tokens if not (t.startswith("[") and t.endswith("]")))


# --- safetensors ---------------------------------------------------------------------------

def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as NumPy arrays (the `safetensors` library);
    bfloat16 ones widened to float32, which holds every bfloat16 value exactly."""
    from safetensors import SafetensorError
    from safetensors.numpy import load, load_file

    try:
        tensors = load(files.read_bytes(path)) if files.is_url(path) else load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None
    return {name: array.astype(np.float32) if array.dtype.name == "bfloat16" else array
            for name, array in tensors.items()}


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray]):
    """Writes `tensors` as a .safetensors file (the `safetensors` library)."""
    from safetensors.numpy import save_file
    save_file({name: np.ascontiguousarray(array) for name, array in tensors.items()}, str(path))


# --- name maps -----------------------------------------------------------------------------

def huggingface_names(layers: int) -> list[tuple[str, str, bool]]:
    """(Google name, Hugging Face name, transpose): every tensor of a BERT encoder. HF's
    dense weights are [out, in] (PyTorch), Keras' and Google's kernels [in, out]."""
    rows = [("embeddings/word_embeddings", "embeddings.word_embeddings.weight", False),
            ("embeddings/position_embeddings", "embeddings.position_embeddings.weight", False),
            ("embeddings/token_type_embeddings", "embeddings.token_type_embeddings.weight",
             False),
            ("embeddings/LayerNorm/gamma", "embeddings.LayerNorm.weight", False),
            ("embeddings/LayerNorm/beta", "embeddings.LayerNorm.bias", False),
            ("pooler/dense/kernel", "pooler.dense.weight", True),
            ("pooler/dense/bias", "pooler.dense.bias", False)]
    for i in range(layers):
        g, h = f"encoder/layer_{i}/", f"encoder.layer.{i}."
        for part in ("attention/self/query", "attention/self/key", "attention/self/value",
                     "attention/output/dense", "intermediate/dense", "output/dense"):
            hf = h + part.replace("/", ".")
            rows += [(g + part + "/kernel", hf + ".weight", True),
                     (g + part + "/bias", hf + ".bias", False)]
        for part in ("attention/output/LayerNorm", "output/LayerNorm"):
            hf = h + part.replace("/", ".")
            rows += [(g + part + "/gamma", hf + ".weight", False),
                     (g + part + "/beta", hf + ".bias", False)]
    return rows


# Tensors a checkpoint may hold beside the encoder, left alone on purpose: HF's position-id
# buffer, the pre-training heads (masked LM, next sentence), a fine-tuned classifier head,
# Google's optimizer slots and step counter.
HF_IGNORED_PREFIXES = ("cls.", "classifier.", "qa_outputs.")
HF_IGNORED = ("embeddings.position_ids",)
GOOGLE_IGNORED_PREFIXES = ("cls/", "output_weights", "output_bias", "global_step")
GOOGLE_IGNORED_SUFFIXES = ("/adam_m", "/adam_v")


def legacy_layer_norm_names(raw: dict[str, np.ndarray], path) -> dict[str, np.ndarray]:
    """Renames LayerNorm `gamma`/`beta` (checkpoints converted from TF, still on the Hub) to
    `weight`/`bias`, as Hugging Face's loader does."""
    out = {}
    for name, array in raw.items():
        for old, new in ((".LayerNorm.gamma", ".LayerNorm.weight"),
                         (".LayerNorm.beta", ".LayerNorm.bias")):
            if name.endswith(old):
                name = name.removesuffix(old) + new
                if name in raw:
                    raise CheckpointError(f"{path}: holds both {name} and its legacy name "
                                          f"{name.removesuffix(new) + old}")
        out[name] = array
    return out


def huggingface_tensors(path: str | Path, layers: int) -> dict[str, np.ndarray]:
    """{Google name: array in Keras layout} from a Hugging Face model.safetensors."""
    raw = read_safetensors(path)
    # BertForSequenceClassification & co. put the encoder under `bert.`
    if any(name.startswith("bert.") for name in raw):
        raw = {name.removeprefix("bert."): array for name, array in raw.items()}
    raw = legacy_layer_norm_names(raw, path)
    out = {name: array for name, array in raw.items()  # unknown ones: `assign` names them
           if name not in HF_IGNORED and not name.startswith(HF_IGNORED_PREFIXES)}
    for google, hf, transpose in huggingface_names(layers):
        if hf not in out:
            raise CheckpointError(f"{path}: missing tensor {hf} (for {google})")
        array = out.pop(hf)
        out[google] = array.T if transpose else array
    return out


def google_tensors(prefix: str | Path) -> dict[str, np.ndarray]:
    """{Google name without `bert/`: array} from a TF BERT checkpoint (name-based, TF1)."""
    reader = files.checkpoint_reader(prefix)
    out = {}
    for name in reader.get_variable_to_shape_map():
        if name.endswith(GOOGLE_IGNORED_SUFFIXES) or name.startswith(GOOGLE_IGNORED_PREFIXES):
            continue
        out[name.removeprefix("bert/")] = reader.get_tensor(name)
    return out


def read_tensors(directory: str | Path, layers: int) -> dict[str, np.ndarray]:
    """The encoder tensors of a checkpoint directory, named and laid out as Google's."""
    found = find(directory)
    if found["format"] == "google":
        return google_tensors(found["weights"])
    return huggingface_tensors(found["weights"], layers)


def assign(variables: dict, tensors: dict[str, np.ndarray], origin: str):
    """Assigns `tensors` to `variables` (both keyed by Google name) after checking that every
    variable has a tensor of its shape and every tensor a variable: all or nothing."""
    for what, names in (("missing", set(variables) - set(tensors)),
                        ("unexpected", set(tensors) - set(variables))):
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise CheckpointError(f"{origin}: {what} tensor {min(names)}{more}")
    for name, variable in variables.items():
        if tuple(tensors[name].shape) != tuple(variable.shape):
            raise CheckpointError(f"{origin}: tensor {name} has shape {list(tensors[name].shape)}"
                                  f"; the encoder expects {list(variable.shape)}")
    for name, variable in variables.items():
        variable.assign(tensors[name].astype(variable.dtype.as_numpy_dtype))


def load_into(encoder, directory: str | Path):
    """Loads a checkpoint directory's weights into a `build_encoder` model."""
    from zoo.models.bert.encoder import checkpoint_variables

    variables = checkpoint_variables(encoder)
    layers = sum(name.endswith("attention/self/query/kernel") for name in variables)
    assign(variables, read_tensors(directory, layers), str(directory))
