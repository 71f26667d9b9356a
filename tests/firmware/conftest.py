"""A tiny full-int8 model converted in a few seconds, for tests that need a .tflite but no bundle."""
from __future__ import annotations

import numpy as np
import pytest


def convert_tiny_int8(seed: int = 0, shape: tuple[int, ...] = (12, 12, 1), scale: float = 255.0) -> tuple[bytes, np.ndarray]:
    """Conv + pool + dense on `shape` inputs in [0, scale], converted to full int8; returns (model bytes, float inputs)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape),
        keras.layers.Rescaling(1 / scale),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(5, activation="softmax"),
    ])
    inputs = (np.random.default_rng(seed).random((40, *shape)) * scale).astype(np.float32)

    def representative():
        for i in range(20):
            yield [inputs[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert(), inputs


@pytest.fixture(scope="session")
def tiny_int8():
    """(model bytes, float inputs) of a tiny int8 classifier."""
    return convert_tiny_int8()


@pytest.fixture(scope="session")
def tiny_kws_int8():
    """(model bytes, float inputs) of a tiny int8 classifier over 98x40 front-end features (0..26)."""
    return convert_tiny_int8(shape=(98, 40, 1), scale=26.0)
