"""BERT checkpoints as they are on the Hub and out of fine-tuning runs: legacy LayerNorm names,
the latest of several TF checkpoints, casing from the files (never the directory's name), and
safetensors read by the `safetensors` library."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zoo.config import ConfigError
from zoo.models.bert import checkpoints
from zoo.models.bert.encoder import checkpoint_variables

from test_bert import VOCAB, assert_same_encoder, google_config, tiny_encoder, write_google, \
    write_huggingface

HUB_SNAPSHOT = "3f2a9c0d1b7e4d5a8c6b2e1f0a9d8c7b6a5e4f3d"  # how the Hub cache names a revision


def hf_tensors(source, layers=2) -> dict:
    variables = {name: v.numpy() for name, v in checkpoint_variables(source).items()}
    return {hf: variables[google].T if transpose else variables[google]
            for google, hf, transpose in checkpoints.huggingface_names(layers)}


def test_layer_norm_gamma_and_beta_load_as_hugging_face_loads_them(tmp_path):
    source = tiny_encoder(2)
    legacy = {name.replace("LayerNorm.weight", "LayerNorm.gamma")
                  .replace("LayerNorm.bias", "LayerNorm.beta"): array
              for name, array in hf_tensors(source).items()}
    assert any(name.endswith("LayerNorm.gamma") for name in legacy)
    write_huggingface(tmp_path / HUB_SNAPSHOT, {"bert." + k: v for k, v in legacy.items()})
    assert_same_encoder(tmp_path / HUB_SNAPSHOT, source)


def test_the_latest_of_several_google_checkpoints_is_loaded(tmp_path):
    older, latest = tiny_encoder(3), tiny_encoder(4)
    root = tmp_path / "finetuned"
    for step, encoder in ((1000, latest), (200, older)):  # ckpt-1000 sorts before ckpt-200
        write_google(root, {"bert/" + k: v.numpy()
                            for k, v in checkpoint_variables(encoder).items()})
        for suffix in (".index", ".data-00000-of-00001"):
            (root / f"bert_model.ckpt{suffix}").rename(root / f"model.ckpt-{step}{suffix}")
    (root / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1000"\n'
                                     'all_model_checkpoint_paths: "model.ckpt-200"\n'
                                     'all_model_checkpoint_paths: "model.ckpt-1000"\n')
    assert checkpoints.find(root)["weights"] == str(root / "model.ckpt-1000")
    assert_same_encoder(root, latest)

    (root / "checkpoint").unlink()
    with pytest.raises(ConfigError, match=r"several checkpoints \(model.ckpt-1000, "
                                          r"model.ckpt-200\) and no `checkpoint` file"):
        checkpoints.find(root)


def test_casing_comes_from_the_files_never_the_directory_name(tmp_path):
    source = tiny_encoder()
    tensors = {"bert/" + k: v.numpy() for k, v in checkpoint_variables(source).items()}
    # a cased checkpoint in a directory whose name says nothing (a Hub snapshot)
    cased = tmp_path / HUB_SNAPSHOT
    write_google(cased, tensors)
    (cased / "bert_config.json").write_text(json.dumps({**google_config(),
                                                        "do_lower_case": False}))
    assert checkpoints.read_config(cased)["lower_case"] is False
    # an uncased one whose name holds "cased"
    uncased = tmp_path / "my_cased_experiment"
    write_google(uncased, tensors)
    assert checkpoints.read_config(uncased)["lower_case"] is True
    # with no casing in any file, the vocabulary tells: a cased one holds upper-case words
    upper = tmp_path / "uncased_by_name"
    write_google(upper, tensors)
    (upper / "vocab.txt").write_text("\n".join(VOCAB[:-2] + ["The", "Movie"]) + "\n")
    assert checkpoints.read_config(upper)["lower_case"] is False
    # tokenizer_config.json first
    (upper / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    assert checkpoints.read_config(upper)["lower_case"] is True


def test_safetensors_are_read_with_the_library(tmp_path):
    from safetensors.numpy import save_file

    values = {"f16": np.array([1.5, -2.0], np.float16), "i64": np.arange(3, dtype=np.int64)}
    path = tmp_path / "x.safetensors"
    save_file(values, str(path), metadata={"format": "pt"})  # as Hugging Face saves them
    read = checkpoints.read_safetensors(path)
    for name, array in values.items():
        assert read[name].dtype == array.dtype and np.array_equal(read[name], array)
    path.write_bytes(path.read_bytes()[:-3])  # cut short
    with pytest.raises(checkpoints.CheckpointError, match=r"x.safetensors: not a readable "
                                                          r"safetensors file"):
        checkpoints.read_safetensors(path)
    import zoo.models.bert.checkpoints as module
    source = open(module.__file__).read()
    assert "import struct" not in source and "safetensors.numpy" in source
