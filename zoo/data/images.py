"""Image sources: the packaged sample, TFDS, MNIST IDX files, class folders, synthetic. Each
yields (uint8 HxWxC, int32 label) pairs sized for the model."""
from __future__ import annotations

import gzip

import numpy as np

from zoo import files
from zoo.data.specs import (SAMPLE_DIR, DatasetInfo, DatasetSpec, check_dir, parse_split,
                            slice_indices)
from zoo.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"BM": "BMP", b"GIF8": "GIF"}


def load(spec: DatasetSpec, data_cfg, model_cfg, seed: int):
    """(train, eval, info) with images resized to the model's input."""
    shape = (model_cfg.image_size, model_cfg.image_size, model_cfg.channels)
    if spec.scheme == "synthetic":
        return synthetic(shape, model_cfg.num_classes, data_cfg.synthetic_examples, seed)
    if spec.scheme == "idx":
        return idx(spec.location, data_cfg, shape)
    if spec.scheme == "folder":
        return folder(spec.location, data_cfg, shape, seed)
    if spec.scheme == "sample":
        return sample(data_cfg, shape, model_cfg.num_classes)
    return tfds_images(spec, data_cfg, shape)


def fit_images(ds, shape):
    """Maps images of any size and channel count to `shape`, uint8."""
    import tensorflow as tf

    height, width, channels = shape

    def fit(image, label):
        if image.shape.rank == 2:
            image = image[..., None]
        if image.shape[-1] != channels:
            image = (tf.image.grayscale_to_rgb(image) if channels == 3
                     else tf.image.rgb_to_grayscale(image))
        if image.shape[0] != height or image.shape[1] != width:
            image = tf.image.resize(image, (height, width))
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return tf.ensure_shape(tf.cast(image, tf.uint8), shape), tf.cast(label, tf.int32)

    return ds.map(fit, num_parallel_calls=tf.data.AUTOTUNE)


def synthetic(shape, num_classes: int, n: int, seed: int):
    """A learnable task: each class is a square at its own place and its own brightness band
    on a noisy background (the brightness keeps it learnable after global pooling)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    height, width, channels = shape
    grid = int(np.ceil(np.sqrt(num_classes)))
    cell_h, cell_w = height // grid, width // grid
    side_h, side_w = max(2, cell_h // 2), max(2, cell_w // 2)

    def make(count):
        labels = rng.integers(0, num_classes, count)
        images = rng.integers(0, 80, (count, height, width, channels), dtype=np.uint8)
        for i, k in enumerate(labels):
            top = (k // grid) * cell_h + rng.integers(0, cell_h - side_h + 1)
            left = (k % grid) * cell_w + rng.integers(0, cell_w - side_w + 1)
            band = 135 // num_classes
            images[i, top:top + side_h, left:left + side_w] = rng.integers(
                120 + k * band, 120 + (k + 1) * band)
        return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))

    n_eval = max(16, n // 4)
    info = DatasetInfo(num_classes, [str(k) for k in range(num_classes)], n, n_eval, "synthetic")
    return make(n), make(n_eval), info


def _idx_file(directory: str, prefix: str, kind: str) -> str:
    for name in (f"{prefix}-{kind}", f"{prefix}-{kind}.gz"):
        if files.isfile(files.join(directory, name)):
            return files.join(directory, name)
    found = ", ".join(files.listdir(directory)) or "nothing"
    raise DataError(f"idx:{directory}: no {prefix}-{kind}[.gz] (found: {found}); "
                    "choose the files with data.train_split / data.eval_split, e.g. t10k[:8000]")


def read_idx(path: str) -> np.ndarray:
    """An IDX file (MNIST's format, gzip or raw; a path or a URL) as a NumPy array."""
    try:
        data = files.read_bytes(path)
        if str(path).endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: can't read ({e})")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated: header says {dims}, found {body.size} bytes")
    return body.reshape(dims)


def _idx_split(directory: str, split: str):
    name, start, stop = parse_split(split)
    prefix = {"test": "t10k"}.get(name, name)
    images = read_idx(_idx_file(directory, prefix, "images-idx3-ubyte"))
    labels = read_idx(_idx_file(directory, prefix, "labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise DataError(f"idx:{directory}: {len(images)} images but {len(labels)} labels "
                        f"for split {name!r}")
    keep = slice_indices(len(images), start, stop)
    return images[keep.start:keep.stop:keep.step], labels[keep.start:keep.stop:keep.step]


def idx(location: str, data_cfg, shape):
    """MNIST IDX files in a directory: `train-*` and `t10k-*` (gzip or raw)."""
    import tensorflow as tf

    directory = check_dir(location, "idx")
    (x_train, y_train), (x_eval, y_eval) = (_idx_split(directory, s) for s in
                                            (data_cfg.train_split, data_cfg.eval_split))
    num_classes = int(max(y_train.max(), y_eval.max())) + 1
    info = DatasetInfo(num_classes, [str(k) for k in range(num_classes)], len(x_train),
                       len(x_eval), f"idx:{directory}")
    make = lambda x, y: fit_images(tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32))),
                                   shape)
    return make(x_train, y_train), make(x_eval, y_eval), info


# the packaged sample: MNIST's official test set, split in two
SAMPLE_SPLITS = {"train": (0, 8000), "test": (8000, 10_000)}
SAMPLE_SIZES = (28, 40, 64)  # a two-class sample's images, in turn


def _sample_split(split: str) -> str:
    """A split of the sample as the slice of the t10k files it is: train[:100] -> t10k[0:100]."""
    name, start, stop = parse_split(split)
    name = {"validation": "test", "dev": "test"}.get(name, name)
    if name not in SAMPLE_SPLITS:
        raise DataError(f"sample: no split {name!r}; the sample has train (MNIST test digits "
                        "0-7,999) and test (8,000-9,999), e.g. train[:1000]")
    low, high = SAMPLE_SPLITS[name]
    keep = slice_indices(high - low, start, stop)
    return f"t10k[{low + keep.start}:{low + max(keep.start, keep.stop)}]"


def sample(data_cfg, shape, num_classes: int):
    """The packaged digits: ten classes, or for a two-class model the 0s and 1s as RGB images
    of three sizes (28, 40, 64 pixels) that `fit_images` resizes to the model's input."""
    import tensorflow as tf

    directory = str(SAMPLE_DIR / "mnist")
    splits = [_idx_split(directory, _sample_split(s))
              for s in (data_cfg.train_split, data_cfg.eval_split)]
    if num_classes == 2:
        splits = [(x[y <= 1], y[y <= 1]) for x, y in splits]

    def make(x, y):
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
        if num_classes == 2:
            sizes = tf.constant(SAMPLE_SIZES)

            def vary(i, pair):
                size = sizes[i % len(SAMPLE_SIZES)]
                image = tf.image.resize(pair[0][..., None], (size, size))
                image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
                return tf.image.grayscale_to_rgb(image), pair[1]
            ds = ds.enumerate().map(vary, num_parallel_calls=tf.data.AUTOTUNE)
        return fit_images(ds, shape)

    (x_train, y_train), (x_eval, y_eval) = splits
    classes = 2 if num_classes == 2 else 10
    what = "MNIST test set's 0s and 1s" if classes == 2 else "MNIST test set"
    info = DatasetInfo(classes, [str(k) for k in range(classes)], len(x_train), len(x_eval),
                       f"sample: the {what}, {data_cfg.train_split} / {data_cfg.eval_split}")
    return make(x_train, y_train), make(x_eval, y_eval), info


def _split_dir(root: str, split: str) -> tuple[str, str, str]:
    name, start, stop = parse_split(split)
    candidates = [name] + {"test": ["validation", "val"], "validation": ["val", "test"]}.get(
        name, [])
    for candidate in candidates:
        if files.isdir(files.join(root, candidate)):
            return files.join(root, candidate), start, stop
    raise DataError(f"folder:{root}: no {' or '.join(candidates)}/ directory of class folders")


def _check_image(path: str):
    """Refuses a file that is not an image, or that TensorFlow's decoder can't decode (cut
    short, corrupt): found while listing, naming the file, not hours into training. A JPEG
    with data after its end (phones' motion photos) decodes, so it passes; JPEGs decode at
    1/8 scale, which reads every scan at a fraction of the cost."""
    data = files.read_bytes(path)
    kind = next((k for magic, k in _MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        raise DataError(f"{path}: not a JPEG, PNG, BMP or GIF image")
    import tensorflow as tf
    try:
        if kind == "JPEG":
            tf.io.decode_jpeg(data, ratio=8)
        else:
            tf.io.decode_image(data, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise DataError(f"{path}: can't decode: a truncated or corrupt {kind} file "
                        f"({len(data)} bytes)") from None


def list_images(directory: str, class_names: list[str] | None = None):
    """Sorted (paths, labels, class_names) of `directory/<class>/<image>`."""
    classes = [n for n in files.listdir(directory) if files.isdir(files.join(directory, n))]
    if not classes:
        raise DataError(f"{directory}: no class folders (expected {directory}/<class>/<image>)")
    if class_names is not None:
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise DataError(f"{directory}: class folders {unknown} are not among the training "
                            f"classes {class_names}")
    else:
        class_names = classes
    paths, labels = [], []
    for name in classes:
        folder = files.join(directory, name)
        images = [files.join(folder, n) for n in files.listdir(folder)
                  if n.lower().endswith(IMAGE_SUFFIXES)]
        if not images:
            raise DataError(f"{folder}: empty class folder (no {'/'.join(IMAGE_SUFFIXES)} files)")
        for path in images:
            _check_image(path)
        paths += images
        labels += [class_names.index(name)] * len(images)
    return paths, labels, class_names


def folder(location: str, data_cfg, shape, seed: int):
    """Class sub-folders of images under `train/` and `validation/` (or `test/`)."""
    import tensorflow as tf

    root = check_dir(location, "folder")
    splits = []
    class_names = None
    for split in (data_cfg.train_split, data_cfg.eval_split):
        directory, start, stop = _split_dir(root, split)
        paths, labels, class_names = list_images(directory, class_names)
        order = np.random.default_rng(seed).permutation(len(paths))
        keep = order[slice_indices(len(paths), start, stop)]
        splits.append(([paths[i] for i in keep], [labels[i] for i in keep]))

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=shape[2],
                                   expand_animations=False)
        return image, label

    def make(paths, labels):
        ds = tf.data.Dataset.from_tensor_slices((paths, np.array(labels, np.int32)))
        return fit_images(ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE), shape)

    (train_paths, train_labels), (eval_paths, eval_labels) = splits
    info = DatasetInfo(len(class_names), class_names, len(train_paths), len(eval_paths),
                       f"folder:{root}")
    return make(train_paths, train_labels), make(eval_paths, eval_labels), info


def tfds_images(spec: DatasetSpec, data_cfg, shape):
    """A TFDS image classification dataset (e.g. mnist, cats_vs_dogs)."""
    from zoo.data import tfds_source

    train, evaluation, info, (n_train, n_eval) = tfds_source.load(
        spec.location, spec.split or data_cfg.train_split, data_cfg.eval_split,
        data_cfg.data_dir, "image_classification")
    label = info.features[info.supervised_keys[1]]
    names = list(getattr(label, "names", None) or [str(k) for k in range(label.num_classes)])
    dinfo = DatasetInfo(label.num_classes, names, n_train, n_eval, f"tfds:{spec.location}")
    return fit_images(train, shape), fit_images(evaluation, shape), dinfo
