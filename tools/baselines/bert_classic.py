"""The classic keras-hub BERT fine-tuning: `BertTextClassifier` with its preprocessor,
`classifier.fit(x=sentences, y=labels, batch_size=32)` on raw strings.

The backbone has the MiniLM shape (6 layers, hidden 384, 12 heads, intermediate 1536,
sequence 64), built from that config with random weights, so nothing is downloaded (a user
would call `from_preset`; the work per step is the same). keras-hub is an optional
dependency: `pip install -e .[bench]`. `data_dir` holds GLUE-style `train.tsv`/`dev.tsv`;
`vocab_file` is a WordPiece vocabulary (uncased).
"""
from __future__ import annotations

import os
from pathlib import Path


def run(data_dir, epochs: int = 3, batch_size: int = 32, max_train: int = 0,
        vocab_file: str = "", sequence_length: int = 64, mixed_precision: str = "none",
        max_eval: int = 256) -> dict:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import keras_hub

    from tools.baselines.common import meter, result
    from tools.baselines.textcls_classic import read_tsv

    if mixed_precision != "none":
        keras.mixed_precision.set_global_policy(mixed_precision)
    train_text, train_labels = read_tsv(Path(data_dir) / "train.tsv")
    test_text, test_labels = read_tsv(Path(data_dir) / "dev.tsv")
    if max_train:
        train_text, train_labels = train_text[:max_train], train_labels[:max_train]
    test_text, test_labels = test_text[:max_eval], test_labels[:max_eval]

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=str(vocab_file), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=6, num_heads=12,
        hidden_dim=384, intermediate_dim=1536, max_sequence_length=512)
    classifier = keras_hub.models.BertTextClassifier(backbone, num_classes=2,
                                                     preprocessor=preprocessor)
    classifier.compile(optimizer=keras.optimizers.AdamW(5e-5),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    timer = meter(keras, batch_size)
    classifier.fit(x=train_text, y=train_labels, batch_size=batch_size, epochs=epochs,
                   validation_data=(test_text, test_labels), callbacks=[timer])
    _, accuracy = classifier.evaluate(x=test_text, y=test_labels, batch_size=batch_size,
                                      verbose=0)
    return result(timer, accuracy, epochs, batch_size, len(train_text))


if __name__ == "__main__":
    from tools.baselines.common import main
    main(run, __doc__)
