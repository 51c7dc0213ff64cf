"""A run's model_dir can be moved or copied: config.yaml names the run's own files relative to
model_dir, and training (resume) and export find them there."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from zoo.config import load_config

TEXTCLS = ["data.dataset=synthetic", "data.synthetic_examples=256", "train.epochs=1",
           "train.batch_size=32", "model.vocab_size=300", "model.embedding_dim=8",
           "model.ngrams=1", "model.max_length=16", "train.strategy=cpu"]
BERT = ["data.dataset=synthetic", "data.synthetic_examples=128", "train.batch_size=32",
        "train.epochs=1", "model.max_length=16", "model.vocab_size=200", "model.dropout=0",
        "train.strategy=cpu"]


def test_a_moved_textcls_run_exports_and_resumes(tmp_path):
    from export import pipeline, source
    from export.pipeline import Options
    from zoo.train import run

    first = tmp_path / "first"
    metrics = run(load_config("textcls", overrides=TEXTCLS), first)
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["model"]["vocab_file"] == "assets/vocab.txt"

    moved = tmp_path / "moved"
    shutil.move(first, moved)
    src = source.load(moved)
    assert [Path(p).name for p in src.assets] == ["vocab.txt"]
    manifest = pipeline.run(src, tmp_path / "export", Options(["saved_model"], [],
                                                              eval_examples=16))
    assert manifest["version"] == 1
    # the same command rerun in the moved run: a finished run, its weights evaluated again
    again = run(load_config("textcls", overrides=TEXTCLS), moved)
    assert again["weights_sha256"] == metrics["weights_sha256"]


def test_a_bert_run_written_from_another_working_directory_loads_after_a_move(
        tmp_path, monkeypatch):
    from export import source
    from zoo.train import run

    monkeypatch.chdir(tmp_path)
    run(load_config("bert", overrides=BERT), "runs/bert")  # a relative --model_dir
    saved = yaml.safe_load((tmp_path / "runs" / "bert" / "config.yaml").read_text())
    assert saved["model"]["vocab_file"] == "assets/vocab.txt"
    shutil.move(tmp_path / "runs" / "bert", tmp_path / "moved")
    monkeypatch.chdir("/")
    src = source.load(tmp_path / "moved")
    assert src.parts().preprocessor is not None
