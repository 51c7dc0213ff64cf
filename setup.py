"""zoo: a TensorFlow/Keras model zoo. `pip install -e ".[test]"` installs it with pinned
dependencies and the test runner; `tools/` (`python -m tools.bench`) runs from the checkout and
is not installed."""
from setuptools import find_packages, setup

setup(
    name="zoo",
    version="0.1.0",
    description="Train Keras models under any tf.distribute strategy and export them to "
                "TF Serving, TFLite, TPU and Edge TPU",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["zoo", "zoo.*", "export", "export.*"]),
    package_data={
        # the default configs and the sample data (`--dataset=sample`) with its README
        "zoo": ["configs/*.yaml", "data/sample/README.md", "data/sample/*/*.gz"],
        "export": ["tensorflow_text_2_12_1_ops.txt"],
    },
    install_requires=[
        "tensorflow==2.21.0",
        "tf-keras==2.21.0",
        "tensorboard==2.21.0",  # tensorflow 2.21 no longer pulls it in; tf.summary needs it
        "tensorflow-text==2.21.1",
        "tensorflow-datasets==4.9.10",
        "importlib_resources==7.1.0",  # tensorflow-datasets imports it to download, undeclared
        "ai-edge-litert==2.3.0",  # LiteRT runs and evaluates the .tflite files
        # MediaPipe Tasks runs the app files as Android, iOS and Web apps do: the export gates
        # them there, and its wheel carries the TFLite Metadata schema export.metadata writes
        "mediapipe==1.2.3",
        "tensorflow-serving-api==2.21.0",  # PredictionLog protos: warmup records, models.config
        "absl-py==2.5.1",
        "PyYAML==6.0.3",
        "numpy==2.4.6",
        # tensorflow accepts >=0.5.1,<1; 0.7.0's import takes 1.3-1.4 s here against 0.15 s for
        # 0.6.0, paid by every TensorFlow process (each zoo.train / export run, ~50 in the tests)
        "ml_dtypes==0.6.0",
        "protobuf==7.36.2",
        "safetensors==0.8.0",  # reads Hugging Face BERT checkpoints (model.safetensors) as NumPy
        "flatbuffers==25.12.19",  # writes the BERT normalizer model the LiteRT tokenizer reads
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "pytest-xdist==3.8.0",  # the tests on two workers (pytest.ini): most wait on imports
        ],
        # `python -m tools.bench` only: its chart, and keras-hub's BertTextClassifier as the
        # BERT baseline (needs Keras 3, which tensorflow 2.21 brings, and tensorflow-text,
        # pinned above; installing it changes none of the pins above)
        "bench": ["matplotlib==3.11.2", "keras-hub==0.32.0"],
    },
)
