"""Text sources: TFDS, TSV/CSV files, synthetic. Each yields (tf.string sentence, int32 label)."""
from __future__ import annotations

import csv
import gzip

import numpy as np

from zoo import files
from zoo.data.specs import (SAMPLE_DIR, DatasetInfo, DatasetSpec, check_dir, parse_split,
                            slice_indices)
from zoo.errors import DataError

TEXT_COLUMNS = ("sentence", "text", "review", "description", "content", "document")
LABEL_COLUMNS = ("label", "labels", "class", "category", "sentiment")


def load(spec: DatasetSpec, data_cfg, num_classes: int, seed: int):
    """(train, eval, info) of raw sentences and integer labels."""
    if spec.scheme == "synthetic":
        return synthetic(num_classes, data_cfg.synthetic_examples, seed)
    if spec.scheme in ("tsv", "csv"):
        return delimited(spec, data_cfg)
    if spec.scheme == "sample":
        train, evaluation, info = delimited(DatasetSpec("tsv", str(SAMPLE_DIR / "sst2")), data_cfg)
        info.source = "sample: SST-2 (GLUE's train.tsv and dev.tsv)"
        return train, evaluation, info
    return tfds_text(spec, data_cfg)


def _pick(columns, candidates, what: str, origin: str) -> str:
    for name in candidates:
        if name in columns:
            return name
    raise DataError(f"{origin}: no {what} column in header {list(columns)}; expected one of "
                    f"{', '.join(candidates)}")


def _split_file(root: str, split: str, suffix: str) -> tuple[str, str, str]:
    name, start, stop = parse_split(split)
    candidates = [name] + {"test": ["dev", "validation"], "validation": ["dev", "test"],
                           "dev": ["validation", "test"]}.get(name, [])
    for candidate in candidates:
        for name in (f"{candidate}.{suffix}", f"{candidate}.{suffix}.gz"):
            if files.isfile(files.join(root, name)):
                return files.join(root, name), start, stop
    raise DataError(f"{suffix}:{root}: no {' or '.join(c + '.' + suffix for c in candidates)}")


def read_delimited(path: str, delimiter: str) -> tuple[list[str], list[str]]:
    """(sentences, raw labels) of a header-first TSV/CSV (gzip when named *.gz); bad rows are
    errors naming the line."""
    try:
        raw = files.read_bytes(path)
        raw = gzip.decompress(raw) if str(path).endswith(".gz") else raw
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: can't read ({e})")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start})")
    if not lines:
        raise DataError(f"{path}: empty file; expected a header with text and label columns")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    header = [h.strip().lower() for h in next(rows)]
    kind = "tab" if delimiter == "\t" else "comma"
    if len(header) < 2:
        raise DataError(f"{path}:1: header {header} has one column; expected {kind}-separated "
                        "text and label columns")
    text_col = header.index(_pick(header, TEXT_COLUMNS, "text", str(path)))
    label_col = header.index(_pick(header, LABEL_COLUMNS, "label", str(path)))
    sentences, labels = [], []
    for number, row in enumerate(rows, start=2):
        if not row or row == [""]:
            continue
        if len(row) <= max(text_col, label_col) or not row[label_col].strip():
            raise DataError(f"{path}:{number}: missing label (expected {len(header)} "
                            f"{kind}-separated columns, got {len(row)})")
        sentences.append(row[text_col])
        labels.append(row[label_col].strip())
    if not sentences:
        raise DataError(f"{path}: no data rows after the header")
    return sentences, labels


def delimited(spec: DatasetSpec, data_cfg):
    """`tsv:DIR` / `csv:DIR`: train.tsv plus dev.tsv or validation.tsv (GLUE layout works),
    each possibly gzip-compressed (train.tsv.gz)."""
    import tensorflow as tf

    root = check_dir(spec.location, spec.scheme)
    delimiter = "\t" if spec.scheme == "tsv" else ","
    splits = []
    for split in (data_cfg.train_split, data_cfg.eval_split):
        path, start, stop = _split_file(root, split, spec.scheme)
        sentences, labels = read_delimited(path, delimiter)
        keep = slice_indices(len(sentences), start, stop)
        splits.append((path, sentences[keep.start:keep.stop], labels[keep.start:keep.stop]))
    (train_path, _, train_labels), (eval_path, _, eval_labels) = splits
    names = sorted(set(train_labels))
    if all(name.isdigit() for name in names):  # integer labels: class k is "k"
        names = [str(k) for k in range(max(int(name) for name in names) + 1)]
    index = {name: k for k, name in enumerate(names)}
    for path, labels in ((train_path, train_labels), (eval_path, eval_labels)):
        for number, label in enumerate(labels):
            if label not in index:
                raise DataError(f"{path}: label {label!r} (data row {number + 1}) is not among "
                                f"the training labels {names}")

    def make(sentences, labels):
        ids = np.array([index[label] for label in labels], np.int32)
        return tf.data.Dataset.from_tensor_slices((sentences, ids))

    info = DatasetInfo(len(names), names, len(splits[0][1]), len(splits[1][1]),
                       f"{spec.scheme}:{root}")
    return make(*splits[0][1:]), make(*splits[1][1:]), info


SYNTHETIC_WORDS = 400


def synthetic(num_classes: int, n: int, seed: int):
    """A learnable text task: each class has its own keywords hidden among common words."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    words = [f"w{k}" for k in range(SYNTHETIC_WORDS)]
    keywords = [[f"class{c}kw{k}" for k in range(5)] for c in range(num_classes)]

    def make(count):
        labels = rng.integers(0, num_classes, count).astype(np.int32)
        sentences = []
        for label in labels:
            tokens = list(rng.choice(words, rng.integers(4, 20)))
            for _ in range(rng.integers(1, 3)):
                tokens.insert(rng.integers(0, len(tokens) + 1), rng.choice(keywords[label]))
            sentences.append(" ".join(tokens))
        return tf.data.Dataset.from_tensor_slices((sentences, labels))

    n_eval = max(16, n // 4)
    info = DatasetInfo(num_classes, [str(c) for c in range(num_classes)], n, n_eval, "synthetic")
    return make(n), make(n_eval), info


def tfds_text(spec: DatasetSpec, data_cfg):
    """A TFDS text classification dataset (imdb_reviews, glue/sst2, ag_news_subset, ...)."""
    import tensorflow as tf
    from zoo.data import tfds_source

    eval_split = data_cfg.eval_split
    if spec.location.startswith("glue/") and eval_split == "test":
        eval_split = "validation"  # GLUE's test labels are hidden (-1)
    train, evaluation, info, (n_train, n_eval) = tfds_source.load(
        spec.location, spec.split or data_cfg.train_split, eval_split, data_cfg.data_dir,
        "text_classification", supervised=False)
    keys = list(info.features.keys())
    text_key = _pick(keys, TEXT_COLUMNS, "text", f"tfds:{spec.location}")
    label_key = _pick(keys, LABEL_COLUMNS, "label", f"tfds:{spec.location}")
    pairs = lambda ex: (ex[text_key], tf.cast(ex[label_key], tf.int32))
    label = info.features[label_key]
    dinfo = DatasetInfo(label.num_classes, list(label.names), n_train, n_eval,
                        f"tfds:{spec.location}")
    return train.map(pairs), evaluation.map(pairs), dinfo
