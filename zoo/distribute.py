"""Choosing the tf.distribute strategy for the hardware, and saying why."""
from __future__ import annotations

import json
import os

from zoo.errors import ConfigError


def cluster_size(tf_config: str | None = None) -> int:
    """Number of chief + worker tasks named by TF_CONFIG (0 when unset)."""
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError):
        raise ConfigError(f"TF_CONFIG is not valid JSON with a 'cluster' key: {raw[:80]!r}")
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def check_request(name: str, tpu: str = ""):
    """The strategy errors that need no TensorFlow, raised before it loads: a TPU without an
    address, multi-worker without TF_CONFIG."""
    tpu = tpu or os.environ.get("TPU_NAME", "")
    if name == "tpu" and not tpu:
        raise ConfigError("--strategy=tpu needs --tpu=ADDRESS (or TPU_NAME); none was given")
    if name == "multi_worker" and cluster_size() < 1:
        raise ConfigError("--strategy=multi_worker needs TF_CONFIG naming the cluster "
                          "(see docs/distributed.md); TF_CONFIG is unset")


def split_cpu(n: int):
    """Splits the CPU into `n` logical devices (must run before TensorFlow initialises)."""
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def describe(strategy) -> str:
    """The strategy's class name; the default (single-device) strategy says which device."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    name = type(strategy).__name__
    if name.startswith("_Default"):
        return "OneDevice(GPU)" if tf.config.list_logical_devices("GPU") else "OneDevice(CPU)"
    return name


def choose(name: str = "auto", tpu: str = ""):
    """(strategy, reason). `auto` picks TPU > multi-worker (TF_CONFIG) > mirrored GPUs >
    one GPU > CPU; an explicit name fails clearly when its hardware is missing.

    One device runs under TensorFlow's default strategy, which Keras' BackupAndRestore
    supports (OneDeviceStrategy it does not)."""
    check_request(name, tpu)
    import tensorflow as tf

    tpu = tpu or os.environ.get("TPU_NAME", "")
    if name == "cpu":
        tf.config.set_visible_devices([], "GPU")
    workers = cluster_size()
    gpus = tf.config.list_physical_devices("GPU")  # physical: the runtime stays uninitialised

    if name == "auto":
        if tpu:
            name, why = "tpu", f"a TPU was named ({tpu})"
        elif workers > 1:
            name, why = "multi_worker", f"TF_CONFIG names {workers} workers"
        elif len(gpus) > 1:
            name, why = "mirrored", f"{len(gpus)} GPUs are visible"
        elif gpus:
            name, why = "gpu", "one GPU is visible"
        else:
            name, why = "cpu", "no GPU or TPU is visible"
    else:
        why = "asked for with --strategy"

    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise ConfigError(f"--tpu={tpu}: can't reach the TPU ({str(e).splitlines()[0]})")
        return tf.distribute.TPUStrategy(resolver), why
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy(), why  # before any device is used
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        cpus = tf.config.list_logical_devices("CPU")
        devices = [d.name for d in gpus] or [d.name for d in cpus]
        if len(devices) < 2:
            raise ConfigError("--strategy=mirrored needs at least 2 devices; found "
                              f"{len(gpus)} GPUs and {len(cpus)} CPU devices "
                              "(set train.cpu_devices=2 to split the CPU)")
        kind = "GPUs" if gpus else "logical CPU devices"
        return tf.distribute.MirroredStrategy(devices), f"{why}; {len(devices)} {kind}"
    if name == "gpu":
        if not gpus:
            raise ConfigError("--strategy=gpu: no GPU is visible to TensorFlow")
    return tf.distribute.get_strategy(), why
