"""Keras model -> the four TFLite variants a bundle carries.

- float32: the reference; float16: weights halved, compute in float;
- dynamic: int8 weights, float activations (no calibration data needed);
- int8: full integer, int8 input and output, calibrated on a representative dataset.
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Iterable

import numpy as np

log = logging.getLogger(__name__)

VARIANTS = ("float32", "float16", "dynamic", "int8")


def representative_dataset(samples: np.ndarray):
    """The generator the converter calls: one float32 example (batch of 1) at a time, in order."""
    def generate():
        for sample in samples:
            yield [sample[np.newaxis].astype(np.float32)]
    return generate


def with_batch_of_one(model):
    """The same layers and weights behind a fixed batch-1 input.

    A Keras model's batch dimension is dynamic (-1); converted as is, the TFLite graph gains
    SHAPE/STRIDED_SLICE/PACK ops around the reshape and the Edge TPU compiler refuses it from the
    first op. Devices run one example at a time, so the exported models take exactly one.
    """
    import keras

    inputs = keras.Input(model.input_shape[1:], batch_size=1, name="input")
    return keras.Model(inputs, model(inputs), name=model.name)


def int8_converter(model, representative: np.ndarray):
    """A converter for the full-integer model, calibrated on `representative` (float in and out;
    `convert` makes the ends int8). The quantization report debugs this same graph."""
    import tensorflow as tf

    if representative is None or len(representative) == 0:
        raise ValueError("full int8 conversion needs a representative dataset")
    converter = tf.lite.TFLiteConverter.from_keras_model(with_batch_of_one(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(representative)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def convert(model, variant: str, representative: np.ndarray | None = None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(with_batch_of_one(model))
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        converter = int8_converter(model, representative)
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif variant != "float32":
        raise ValueError(f"unknown variant {variant!r} (choose {', '.join(VARIANTS)})")
    with contextlib.redirect_stdout(io.StringIO()) as printed:  # Keras prints the traced signature
        model_bytes = bytes(converter.convert())
    log.debug("converter output: %s", printed.getvalue().strip())
    return model_bytes


def convert_all(model, variants: Iterable[str], representative: np.ndarray) -> dict[str, bytes]:
    converted = {}
    for variant in variants:
        log.info("converting %s", variant)
        converted[variant] = convert(model, variant, representative)
    return converted
