"""Where training runs: every visible GPU (MirroredStrategy), one GPU, or the CPU."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def distribution_strategy():
    """The tf.distribute strategy for the GPUs TensorFlow sees; the default (CPU) strategy without one."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if len(gpus) > 1:
        log.info("training on %d GPUs with MirroredStrategy", len(gpus))
        return tf.distribute.MirroredStrategy()
    if gpus:
        log.info("training on GPU %s", gpus[0].name)
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    log.info("training on CPU (no GPU visible to TensorFlow)")
    return tf.distribute.get_strategy()
