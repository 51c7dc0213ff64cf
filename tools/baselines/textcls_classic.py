"""The classic Keras sentiment classifier: `Tokenizer` + `pad_sequences` into NumPy arrays,
Embedding(16) + GlobalAveragePooling1D + Dense(16, relu) + Dense(1, sigmoid),
`model.fit(x, y, batch_size=32)`.

`Tokenizer` is gone from Keras 3, so the recipe runs as it still can today: on tf-keras (the
Keras 2 that `TF_USE_LEGACY_KERAS=1` selects). `data_dir` holds GLUE-style `train.tsv` and
`dev.tsv` (header `sentence<TAB>label`), e.g. SST-2.
"""
from __future__ import annotations

import csv
from pathlib import Path


def read_tsv(path) -> tuple[list[str], list[int]]:
    """(sentences, labels) of a GLUE-style TSV file."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def run(data_dir, epochs: int = 3, batch_size: int = 32, max_train: int = 0,
        vocab_size: int = 10_000, sequence_length: int = 64, embedding_dim: int = 16) -> dict:
    import numpy as np
    import tf_keras as keras
    from tf_keras import layers
    from tf_keras.preprocessing.sequence import pad_sequences
    from tf_keras.preprocessing.text import Tokenizer

    from tools.baselines.common import fit_and_score

    train_text, train_labels = read_tsv(Path(data_dir) / "train.tsv")
    test_text, test_labels = read_tsv(Path(data_dir) / "dev.tsv")
    if max_train:
        train_text, train_labels = train_text[:max_train], train_labels[:max_train]

    tokenizer = Tokenizer(num_words=vocab_size, oov_token="<OOV>")
    tokenizer.fit_on_texts(train_text)
    pad = lambda texts: pad_sequences(tokenizer.texts_to_sequences(texts),
                                      maxlen=sequence_length, padding="post", truncating="post")
    x_train, x_test = pad(train_text), pad(test_text)
    y_train, y_test = np.array(train_labels), np.array(test_labels)

    model = keras.Sequential([
        layers.Embedding(vocab_size, embedding_dim, input_length=sequence_length),
        layers.GlobalAveragePooling1D(),
        layers.Dense(16, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ])
    return fit_and_score(keras, model, (x_train, y_train), (x_test, y_test),
                         "binary_crossentropy", epochs, batch_size, verbose=2)


if __name__ == "__main__":
    from tools.baselines.common import main
    main(run, __doc__)
